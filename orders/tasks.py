"""django-q2 tasks of the orders app."""

from django.conf import settings

from backoffice.alerts import send_alert
from backoffice.models import SyncRun

from .services.fulfilment import daily_summary, process_new_orders
from .services.imports import run_order_import


def import_orders_task(run_id: int | None = None) -> str:
    """Incremental Kaspi order import (every 30 minutes, or queued by staff), then the
    new-order flow: stock check, staff alert, optional auto-accept, reminders."""
    if run_id is None and not settings.KASPI_SHOP_TOKEN:
        return "skipped: KASPI_SHOP_TOKEN is not set"  # a schedule without a token
    run = run_order_import(run_id=run_id, triggered_by="schedule")
    if run.status in (SyncRun.Status.OK, SyncRun.Status.PARTIAL):
        counts = process_new_orders()
        return f"{run.summary()}; new orders: {counts}"
    return run.summary()


def daily_summary_task() -> str:
    """The owner's morning message: orders by step, money waiting, problems."""
    from django.utils import timezone

    text = daily_summary()
    send_alert(key=f"summary:{timezone.localdate()}", text=text, cooldown_minutes=60 * 20)
    return text
