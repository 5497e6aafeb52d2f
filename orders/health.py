"""Health check of the Kaspi order import."""

from django.conf import settings

from backoffice.core.health import check_last_good_run
from backoffice.models import SyncRun


def check_order_import():
    return check_last_good_run(
        kind=SyncRun.Kind.ORDERS,
        configured=bool(settings.KASPI_SHOP_TOKEN),
        setting="KASPI_SHOP_TOKEN",
        max_age_minutes=settings.ORDERS_IMPORT_MAX_AGE_MINUTES,
    )
