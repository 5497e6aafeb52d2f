"""The audit log of staff actions that change money or what Kaspi shows."""

import json

from django.core.serializers.json import DjangoJSONEncoder

from backoffice.models import AuditEntry


def snapshot(obj, fields) -> dict:
    """The named fields of `obj` as JSON-safe values (for before/after)."""
    return json.loads(json.dumps({f: getattr(obj, f, None) for f in fields}, cls=DjangoJSONEncoder))


def audit(*, user, action: str, obj=None, before=None, after=None, note: str = "") -> AuditEntry:
    return AuditEntry.objects.create(
        user=user if getattr(user, "pk", None) else None,
        action=action[:60],
        object_type=obj._meta.label if obj is not None else "",
        object_id=str(obj.pk)[:64] if obj is not None else "",
        object_repr=str(obj)[:255] if obj is not None else "",
        before=before or {},
        after=after or {},
        note=note[:500],
    )
