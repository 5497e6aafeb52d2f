"""Health check of the Kaspi order import."""

from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from backoffice.models import SyncRun


def check_order_import():
    if not settings.KASPI_SHOP_TOKEN:
        return True, {"configured": False, "note": "KASPI_SHOP_TOKEN is not set: import is off"}
    last_ok = (
        SyncRun.objects.filter(
            kind=SyncRun.Kind.ORDERS, status__in=[SyncRun.Status.OK, SyncRun.Status.PARTIAL]
        )
        .order_by("-finished_at")
        .first()
    )
    if last_ok is None or last_ok.finished_at is None:
        return False, {"error": "no successful order import yet"}
    age = timezone.now() - last_ok.finished_at
    return age <= timedelta(minutes=settings.ORDERS_IMPORT_MAX_AGE_MINUTES), {
        "last_ok_age_min": round(age.total_seconds() / 60)
    }
