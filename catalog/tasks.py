"""django-q2 tasks of the catalog: each takes ids, calls one service and returns a summary.

A task's outcome is its run's outcome (backoffice.core.runs.task_result): a failed run raises
after it is recorded, so django-q2 lists the task as failed.
"""

from django.conf import settings

from backoffice.core.runs import task_result

from .services.feed import reprice_and_publish, run_feed_build
from .services.sync import run_catalog_sync, run_stock_sync

NOT_CONFIGURED = "skipped: ALSTYLE_TOKEN is not set"


def sync_catalog_task(run_id: int | None = None) -> str:
    """Full Al-Style catalog sync (scheduled every 30 minutes, or queued by staff)."""
    if run_id is None and not settings.ALSTYLE_TOKEN:
        return NOT_CONFIGURED  # a schedule without a token: nothing to do, nothing failed
    return task_result(run_catalog_sync(run_id=run_id, triggered_by="schedule"))


def sync_stock_task(run_id: int | None = None) -> str:
    """Stock and price refresh of known products."""
    if run_id is None and not settings.ALSTYLE_TOKEN:
        return NOT_CONFIGURED
    return task_result(run_stock_sync(run_id=run_id, triggered_by="schedule"))


def sync_supplier_task(run_id: int | None = None, code: str | None = None) -> str:
    """One supplier's sync (a price file, or Al-Style's catalog): queued by staff
    («Синхронизировать») with its run, or scheduled with the supplier's code."""
    from backoffice.models import SyncRun

    from .services.supplier_sync import run_supplier_sync

    if run_id is not None:
        code = SyncRun.objects.get(pk=run_id).params.get("supplier") or code
    return task_result(run_supplier_sync(code, run_id=run_id, triggered_by="schedule"))


def sync_due_suppliers_task() -> str:
    """The price-file suppliers whose interval (full_sync_minutes) has passed, one by one."""
    from .services.supplier_sync import run_due_supplier_syncs

    runs = run_due_supplier_syncs(triggered_by="schedule")
    if not runs:
        return "no supplier due"
    return "; ".join(task_result(run) for run in runs)


def build_feed_task(run_id: int | None = None) -> str:
    """Build, validate and publish the Kaspi price list."""
    return task_result(run_feed_build(run_id=run_id, triggered_by="schedule"))


def reprice_task() -> dict:
    """Recompute stored Kaspi prices after price rules changed, then rebuild the price list."""
    return reprice_and_publish(triggered_by="reprice")


def push_cards_task(run_id, user_id=None) -> str:
    """Validate and upload the cards of the products staff ticked («Загрузить карточки в
    Kaspi»), as its run. A task queued before card uploads were runs (product ids and the
    user's id) is turned into such a run first, so a deploy drops no queued upload."""
    from .services.cards import run_card_upload, run_for_legacy_upload

    if isinstance(run_id, list | tuple):
        run_id = run_for_legacy_upload(run_id, user_id).pk
    return task_result(run_card_upload(run_id=run_id))


def refresh_classification_task() -> dict:
    """Kaspi's categories, mapped categories' attributes and the import schema (the admin's
    «Load categories from Kaspi» button)."""
    from .services.cards import refresh_classification

    return refresh_classification()


def poll_card_imports_task() -> int:
    """Check Kaspi card imports still being processed (scheduled every few minutes)."""
    from .services.cards import poll_card_imports

    return poll_card_imports()


def read_market_task(run_id: int | None = None) -> str:
    """Read the due (card, city) pairs of linked Kaspi cards (scheduled, or queued by staff)."""
    from .services.market import run_market_read

    return task_result(run_market_read(run_id=run_id, triggered_by="schedule"))


def reprice_kaspi_task(run_id: int | None = None) -> str:
    """Compute repricer proposals from the stored market (applied in REPRICER_MODE=auto)."""
    from .services.repricer import run_reprice

    return task_result(run_reprice(run_id=run_id, triggered_by="schedule"))


def import_pricelist_task(path: str, source: str, user_id: int | None = None) -> dict:
    """Apply an old Kaspi price list saved by the admin's preview; the file is removed after."""
    from pathlib import Path

    from django.contrib.auth import get_user_model

    from .services.pricelist_import import import_pricelist

    user = get_user_model().objects.filter(pk=user_id).first() if user_id else None
    try:
        result = import_pricelist(path=path, source=source, user=user)
    finally:
        Path(path).unlink(missing_ok=True)
    return result.counts


def card_data_task(run_id: int) -> str:
    """Supplier card data (images, description) of the products staff ticked."""
    from .services.cards import run_card_data

    return task_result(run_card_data(run_id=run_id))
