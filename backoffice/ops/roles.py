"""Staff roles: three groups with exactly the permissions each job needs.

Applied by a data migration (and again by `manage.py setup_roles` after new models land).
Superusers keep every permission; everyone else gets a role.
"""

from django.contrib.auth.models import Group, Permission
from django.utils.translation import gettext_noop

# Stored in English; the admin shows them translated (backoffice.apps).
CATALOG_MANAGER = gettext_noop("Catalog manager")
ORDER_MANAGER = gettext_noop("Order manager")
ACCOUNTANT = gettext_noop("Accountant")

ROLES = {
    CATALOG_MANAGER: {
        "catalog": {
            "product": ["view", "change"],
            "category": ["view"],
            "brand": ["view", "change"],
            "pricerule": ["view", "add", "change", "delete"],
            "feedbuild": ["view", "change"],
            "feedfetch": ["view"],
            "kaspicategory": ["view", "change"],
            "kaspiattribute": ["view"],
            "cardmapping": ["view", "add", "change", "delete"],
            "attributesource": ["view", "add", "change", "delete"],
            "cardimport": ["view"],
        },
        "backoffice": {"syncrun": ["view"], "alert": ["view"]},
    },
    ORDER_MANAGER: {
        "orders": {
            "order": ["view", "change"],
            "orderentry": ["view"],
            "orderaction": ["view"],
            "fulfilmentevent": ["view"],
            "supplierpurchase": ["view"],
        },
        "catalog": {"product": ["view"]},
        "backoffice": {"syncrun": ["view"], "alert": ["view"]},
    },
    ACCOUNTANT: {
        "payments": {
            "payment": ["view", "add", "change"],
            "paymentevent": ["view"],
            "webhookdelivery": ["view", "change"],
            "kaspiqrdevice": ["view"],
        },
        "orders": {"order": ["view"], "orderentry": ["view"]},
        "backoffice": {"syncrun": ["view"], "auditentry": ["view"]},
    },
}


def setup_roles(group_model=Group, permission_model=Permission) -> dict[str, int]:
    """Create or reset each role's permissions to exactly the table above."""
    result = {}
    for role, apps in ROLES.items():
        group, _created = group_model.objects.get_or_create(name=role)
        wanted = []
        for app_label, models in apps.items():
            for model, actions in models.items():
                codenames = [f"{action}_{model}" for action in actions]
                found = list(
                    permission_model.objects.filter(
                        content_type__app_label=app_label, codename__in=codenames
                    )
                )
                missing = set(codenames) - {p.codename for p in found}
                if missing:
                    raise LookupError(f"{role}: missing permissions {sorted(missing)}")
                wanted.extend(found)
        group.permissions.set(wanted)
        result[role] = len(wanted)
    return result
