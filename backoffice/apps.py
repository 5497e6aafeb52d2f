from axes.apps import AppConfig as AxesAppConfig
from django.apps import AppConfig
from django.contrib.admin.apps import AdminConfig
from django.utils.translation import gettext_lazy as _


class BackofficeConfig(AppConfig):
    name = "backoffice"
    default = True
    verbose_name = _("Operations")

    def ready(self):
        from django.db.backends.signals import connection_created

        from backoffice.core.sqlite import install_like

        connection_created.connect(install_like, dispatch_uid="backoffice-sqlite-like")
        _russian_groups_and_permissions()


def _russian_groups_and_permissions():
    """The staff groups and Django's permissions are rows named in English ("Order
    manager", "Can change order"); the admin shows them in the staff's language."""
    from django.contrib.auth.models import Group, Permission
    from django.utils.translation import gettext

    def group_str(group):
        return gettext(group.name)

    verbs = {
        "add": _("Can add"),
        "change": _("Can change"),
        "delete": _("Can delete"),
        "view": _("Can view"),
    }

    def permission_str(permission):
        verb, _sep, _rest = permission.codename.partition("_")
        model = permission.content_type.model_class()
        if (
            verb in verbs
            and model is not None
            and permission.codename == (f"{verb}_{model._meta.model_name}")
        ):
            name = f"{verbs[verb]}: {model._meta.verbose_name}"
        else:
            name = gettext(permission.name)
        app = model._meta.app_config.verbose_name if model is not None else ""
        return f"{app} | {name}" if app else name

    Group.__str__ = group_str
    Permission.__str__ = permission_str


class BackofficeAdminConfig(AdminConfig):
    default = False
    default_site = "backoffice.admin_site.BackofficeAdminSite"


class LoginLocksConfig(AxesAppConfig):
    """django-axes under a name staff understand (its admin is ours: backoffice/admin.py)."""

    default = False
    verbose_name = _("Login security")
