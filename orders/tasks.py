"""django-q2 tasks of the orders app: each takes ids and calls the service its command
calls (pull_kaspi_orders, orders_daily_summary, poll_alstyle_purchases)."""

from django.conf import settings

from backoffice.core.runs import task_result

from .services.batches import run_purchase, run_stock_check
from .services.fulfilment import poll_supplier_purchases, send_daily_summary
from .services.imports import run_order_import


def import_orders_task(run_id: int | None = None) -> str:
    """Incremental Kaspi order import (every 30 minutes, or queued by staff), then the
    new-order flow: stock check, staff alert, optional auto-accept, reminders."""
    if run_id is None and not settings.KASPI_SHOP_TOKEN:
        return "skipped: KASPI_SHOP_TOKEN is not set"  # a schedule without a token
    return task_result(run_order_import(run_id=run_id, triggered_by="schedule"))


def daily_summary_task() -> str:
    """The owner's morning message: orders by step, money waiting, problems."""
    return send_daily_summary()


def poll_supplier_purchases_task() -> str:
    """The Al-Style status of open purchases (and a new look-up of unknown ones), from the
    supplier's order list; read-only at Al-Style, never a new submit."""
    if not settings.ALSTYLE_TOKEN:
        return "skipped: ALSTYLE_TOKEN is not set"
    counts = poll_supplier_purchases()
    return (
        f"open {counts['open']}, changed {counts['changed']}, not in the list "
        f"{counts['missing']}; unknown {counts['unknown']}, found {counts['found']}"
    )


def stock_check_task(run_id: int) -> str:
    """The supplier stock of the orders staff ticked (queued by the admin action)."""
    return task_result(run_stock_check(run_id=run_id))


def purchase_task(run_id: int) -> str:
    """Buy (or, dry run, plan buying) the orders staff ticked from Al-Style."""
    return task_result(run_purchase(run_id=run_id))
