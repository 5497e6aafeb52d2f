"""Sync of any supplier (`sync_supplier CODE`): Al-Style's API sync, or a price file.

A price-file sync reads the whole file as a stream through its adapter
(catalog/suppliers/pricefile/) and writes it page by page through the one offer upsert
(catalog/services/offers.py: hash-skip, bulk writes, product snapshots, matching of new
offers). The same guarantees as Al-Style's sync: bad rows are counted and listed by
number on the run, never stop it; a file that cannot be read to its end fails the run
and marks nothing vanished (the offers read before the break are saved and counted); a
complete file that lacks more than CATALOG_VANISH_LIMIT of the listed offers is held for
staff (nothing taken off sale) until confirmed.
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext

from backoffice.core.exceptions import ExternalServiceError
from backoffice.core.runs import enqueue_job, heartbeat, run_job
from backoffice.models import SyncRun

from ..models import Supplier, SupplierOffer
from ..suppliers import get_adapter
from ..suppliers.pricefile.parsers import PriceFileError
from . import matching, offers
from .sync import (
    SupplierSyncError,
    _note_error,
    confirm_held_vanish,
    record_confirmed_vanish,
    run_catalog_sync,
    vanish_exceeds_limit,
)

logger = logging.getLogger(__name__)

COUNTERS = ("fetched", "created", "updated", "unchanged", "vanished", "errors")


def supplier_lock(supplier: Supplier) -> str:
    """One sync per price-file supplier at a time; two suppliers run side by side."""
    return f"pf:{supplier.pk}"


def run_supplier_sync(
    supplier: Supplier | str,
    *,
    triggered_by: str = "command",
    user=None,
    dry_run: bool = False,
    run_id: int | None = None,
    adapter=None,
) -> SyncRun:
    """Sync one supplier under its lock and record the run (Al-Style: its catalog sync)."""
    if isinstance(supplier, str):
        supplier = Supplier.objects.get(code=supplier)
    if supplier.code == Supplier.ALSTYLE:
        return run_catalog_sync(
            triggered_by=triggered_by, user=user, dry_run=dry_run, run_id=run_id
        )

    def job(run: SyncRun) -> None:
        if not supplier.enabled:
            run.status = SyncRun.Status.SKIPPED
            with translation.override(settings.LANGUAGE_CODE):
                run.error = gettext("The supplier %(code)s is switched off.") % {
                    "code": supplier.code
                }
            return
        sync_pricefile(
            supplier=supplier, run=run, dry_run=dry_run, adapter=adapter or get_adapter(supplier)
        )

    result = run_job(
        kind=SyncRun.Kind.SUPPLIER,
        run=SyncRun.objects.get(pk=run_id) if run_id else None,
        triggered_by=triggered_by,
        user=user,
        params={"supplier": supplier.code, "dry_run": dry_run},
        lock=supplier_lock(supplier),
        job=job,
    )
    if not dry_run and result.status in (SyncRun.Status.OK, SyncRun.Status.PARTIAL):
        from .feed import request_feed_build

        request_feed_build(triggered_by="chain")
    return result


def due_suppliers(now=None) -> list[Supplier]:
    """Enabled price-file suppliers with an interval whose last real run started longer
    ago than it (or that never ran)."""
    now = now or timezone.now()
    due = []
    suppliers = Supplier.objects.filter(
        kind=Supplier.Kind.PRICEFILE, enabled=True, full_sync_minutes__gt=0
    )
    for supplier in suppliers.order_by("priority", "code"):
        last = (
            SyncRun.objects.filter(kind=SyncRun.Kind.SUPPLIER, params__supplier=supplier.code)
            .exclude(params__dry_run=True)
            .exclude(status=SyncRun.Status.SKIPPED)
            .order_by("-created_at")
            .values_list("created_at", flat=True)
            .first()
        )
        if last is None or now - last >= timedelta(minutes=supplier.full_sync_minutes):
            due.append(supplier)
    return due


def run_due_supplier_syncs(*, triggered_by: str = "schedule") -> list[SyncRun]:
    """Sync every due price-file supplier (`sync_supplier --due`, the schedule)."""
    return [run_supplier_sync(s, triggered_by=triggered_by) for s in due_suppliers()]


def request_supplier_sync(*, supplier: Supplier, user=None, triggered_by: str = "user"):
    """Queue a supplier's sync (admin action «Синхронизировать»); returns (run, started)."""
    if supplier.code == Supplier.ALSTYLE:
        from .sync import request_catalog_sync

        return request_catalog_sync(user=user, triggered_by=triggered_by)
    return enqueue_job(
        kind=SyncRun.Kind.SUPPLIER,
        task="catalog.tasks.sync_supplier_task",
        triggered_by=triggered_by,
        user=user,
        params={"supplier": supplier.code, "dry_run": False},
        lock=supplier_lock(supplier),
    )


def sync_pricefile(*, supplier: Supplier, run: SyncRun, dry_run: bool, adapter) -> None:
    """Read the whole file page by page, upsert what changed, then unlist the offers the
    file no longer has (vanish guard)."""
    for key in COUNTERS:
        run.counts.setdefault(key, 0)
    lookups = offers.Lookups()
    seen: set[str] = set()
    # Bad-row reasons and failure texts are written in the staff language.
    with translation.override(settings.LANGUAGE_CODE), matching.one_index_per_run(supplier):
        try:
            for page in adapter.iter_offer_pages():
                run.count("fetched", page.raw_rows)
                for _where, reason in page.bad:
                    run.count("errors")
                    _note_error(run, reason)
                    logger.warning("%s: row skipped: %s", supplier.code, reason)
                seen.update(record.article for record, _raw in page.records)
                offers.upsert_offers(
                    supplier, page.records, run=run, dry_run=dry_run, lookups=lookups
                )
                heartbeat(run, done=run.counts["fetched"])
        except (PriceFileError, ExternalServiceError) as exc:
            run.status = SyncRun.Status.FAILED
            reasons = [str(exc)]
            if seen:
                reasons.append(
                    gettext(
                        "The %(count)d offers read before the break were saved; nothing was "
                        "taken off sale."
                    )
                    % {"count": len(seen)}
                    if not dry_run
                    else gettext(
                        "%(count)d offers were read before the break (dry run: nothing saved)."
                    )
                    % {"count": len(seen)}
                )
            run.error = "\n".join(filter(None, [*reasons, run.error]))
            logger.warning("%s: sync failed, nothing marked vanished: %s", supplier.code, exc)
            return
        finally:
            reader = getattr(adapter, "reader", None)
            if reader is not None and reader.header_row:
                run.params["header_row"] = reader.header_row
            _note_control_characters(run, reader)
        if not seen:
            raise SupplierSyncError(
                gettext(
                    "The price file of %(code)s has no usable offers (%(errors)d bad rows); "
                    "nothing was changed. Check the file and the column mapping."
                )
                % {"code": supplier.code, "errors": run.counts["errors"]}
            )
        listed_before = offers.listed_articles(supplier)
        vanished = sorted(listed_before - seen)
        if vanish_exceeds_limit(len(vanished), len(listed_before)):
            _hold(run, supplier, vanished, listed_before=len(listed_before), dry_run=dry_run)
            return
        if dry_run:
            run.count("vanished", len(vanished))
        elif vanished:
            run.count("vanished", offers.mark_offers_vanished(supplier, seen, lookups=lookups))
    run.counts["match_queue"] = SupplierOffer.objects.filter(
        supplier=supplier, product=None, listed=True
    ).count()
    if run.counts["errors"]:
        run.status = SyncRun.Status.PARTIAL


def _note_control_characters(run: SyncRun, reader) -> None:
    """A YML file with control characters XML forbids was read with them as spaces: count
    it and say so on the run, so staff can ask the supplier for a clean export."""
    replaced = getattr(reader, "control_characters", 0) if reader is not None else 0
    if not replaced:
        return
    run.counts["control_characters_replaced"] = replaced
    _note_error(
        run,
        gettext(
            "The file holds %(count)d control characters that XML does not allow (1C exports "
            "often do); they were read as spaces. Nothing was lost; the supplier may fix "
            "their export."
        )
        % {"count": replaced},
    )


def _hold(run: SyncRun, supplier: Supplier, vanished: list[str], *, listed_before, dry_run):
    """Mark nothing vanished; hold the run for staff with a plain reason and an alert."""
    run.status = SyncRun.Status.HELD
    run.counts["vanished"] = 0
    run.counts["would_vanish"] = len(vanished)
    run.params["held_vanish"] = vanished
    reason = gettext(
        "The price file of %(supplier)s lists only %(seen)d of the %(before)d offers we had: "
        "%(gone)d (%(share)d%%) are missing, more than the %(limit)d%% limit "
        "(CATALOG_VANISH_LIMIT). Nothing was taken off sale. This is usually a cut-off or "
        "wrong file: run the sync again later. If the offers really left the file, confirm "
        "this run in the admin (Run history, action «Confirm: take the missing products off "
        "sale»)."
    ) % {
        "supplier": supplier.name or supplier.code,
        "seen": listed_before - len(vanished),
        "before": listed_before,
        "gone": len(vanished),
        "share": round(100 * len(vanished) / listed_before),
        "limit": round(100 * settings.CATALOG_VANISH_LIMIT),
    }
    run.error = "\n".join(filter(None, [reason, run.error]))
    logger.warning(
        "%s sync held: %d of %d offers missing", supplier.code, len(vanished), listed_before
    )
    if dry_run:
        return
    from backoffice.core.alerts import send_alert

    text = gettext("Supplier sync #%(run)s is held for staff.") % {"run": run.pk}
    link = f"{settings.SITE_URL}" + reverse("admin:backoffice_syncrun_change", args=[run.pk])
    send_alert(key=f"supplier-vanish-held:{run.pk}", text=f"{text}\n{reason}\n{link}")


def confirm_held_run(*, run: SyncRun, user=None) -> int:
    """Staff confirm a held run from the run history: Al-Style's catalog sync or a
    price-file supplier's sync (one action for both)."""
    if run.kind == SyncRun.Kind.SUPPLIER and run.status == SyncRun.Status.HELD:
        return confirm_held_supplier_vanish(run=run, user=user)
    return confirm_held_vanish(run=run, user=user)


def confirm_held_supplier_vanish(*, run: SyncRun, user=None) -> int:
    """Staff confirm a held price-file sync: the offers it did not see are unlisted now
    (only the latest finished run of that supplier may be confirmed)."""
    supplier = Supplier.objects.get(code=run.params.get("supplier"))
    newer = (
        SyncRun.objects.filter(
            kind=SyncRun.Kind.SUPPLIER,
            params__supplier=supplier.code,
            created_at__gt=run.created_at,
            status__in=[SyncRun.Status.OK, SyncRun.Status.PARTIAL, SyncRun.Status.HELD],
        )
        .exclude(params__dry_run=True)
        .exists()
    )
    if newer:
        raise SupplierSyncError(
            gettext(
                "A newer sync of this supplier has finished since run #%(run)s; its result "
                "stands. Confirm the newest held run instead."
            )
            % {"run": run.pk}
        )
    gone = offers.mark_offers_vanished(supplier, articles=run.params.get("held_vanish") or [])
    return record_confirmed_vanish(run, gone, user=user)
