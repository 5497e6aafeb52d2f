"""django-q2 tasks of the orders app."""

from .services.imports import run_order_import


def import_orders_task(run_id: int | None = None) -> str:
    """Incremental Kaspi order import (scheduled every 30 minutes, or queued by staff)."""
    return run_order_import(run_id=run_id, triggered_by="schedule").summary()
