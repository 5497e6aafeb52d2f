"""Supplier catalog sync: Al-Style → Category/Brand/SupplierOffer (→ Product snapshot).

Pages are processed as they arrive (memory stays flat) and written through the one offer
upsert (catalog/services/offers.py): each page's stored hashes are loaded in one query,
and only new or changed offers are written (bulk insert / bulk update), with the snapshot
of the products they supply. A complete run marks offers the supplier no longer returns as
unlisted (never deleted: orders reference the products); a run that fails mid-way is
recorded as partial/failed and marks nothing vanished.
"""

import logging
import time
from collections.abc import Callable, Iterable

from django.conf import settings
from django.db import transaction
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext

from backoffice.core.exceptions import BackofficeError, ExternalServiceError
from backoffice.core.runs import enqueue_job, heartbeat, run_job
from backoffice.models import SyncRun

from ..clients.alstyle import AlStyleClient
from ..clients.records import (
    BadRecord,
    OfferRecord,
    parse_element,
    parse_money,
    parse_quantity,
    parse_warehouse_stock,
)
from ..models import (
    Brand,
    CatalogListing,
    Category,
    Product,
    Supplier,
    SupplierCheck,
    SupplierOffer,
)
from ..suppliers.alstyle import alstyle_client
from ..suppliers.base import StockPrice
from . import matching, offers
from .budget import CallBudget, plan_run, record_checks, stock_articles
from .pricing import Pricer

logger = logging.getLogger(__name__)


class SupplierSyncError(BackofficeError):
    pass


# --- Entry points -------------------------------------------------------------------------


def run_catalog_sync(
    *,
    triggered_by: str = "command",
    user=None,
    dry_run: bool = False,
    run_id: int | None = None,
    full: bool = False,
    client: AlStyleClient | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> SyncRun:
    """Run (a part of) the full catalog sync under the catalog lock, within the supplier
    budget (`full`: the whole listing now, ignoring the budget; then rebuild the price list)."""
    return _run_supplier_job(
        SyncRun.Kind.CATALOG, sync_catalog, triggered_by, user, dry_run, run_id, full, client, clock
    )


def run_stock_sync(
    *,
    triggered_by: str = "command",
    user=None,
    dry_run: bool = False,
    run_id: int | None = None,
    full: bool = False,
    client: AlStyleClient | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> SyncRun:
    """Refresh stock and prices under the stock lock: what matters first, within the
    supplier budget (`full`: every listed product now)."""
    return _run_supplier_job(
        SyncRun.Kind.STOCK, sync_stock, triggered_by, user, dry_run, run_id, full, client, clock
    )


def _run_supplier_job(
    kind, service, triggered_by, user, dry_run, run_id, full, client, clock
) -> SyncRun:
    def job(run: SyncRun) -> None:
        budget = None
        if not (dry_run or full):
            # Planned under the lock: one run of a kind at a time reads the ledger.
            budget, _plan = plan_run(kind, clock=clock)
            run.params["budget"] = budget.reason
        service(run=run, client=client, dry_run=dry_run, budget=budget)

    result = run_job(
        kind=kind,
        run=SyncRun.objects.get(pk=run_id) if run_id else None,
        triggered_by=triggered_by,
        user=user,
        params={"dry_run": dry_run, **({"full": True} if full else {})},
        job=job,
    )
    _after_sync(result, dry_run=dry_run)
    return result


def request_catalog_sync(*, user=None, triggered_by: str = "user", stock_only: bool = False):
    """Queue a sync unless one is queued or running; returns (run, started)."""
    kind = SyncRun.Kind.STOCK if stock_only else SyncRun.Kind.CATALOG
    task = "catalog.tasks.sync_stock_task" if stock_only else "catalog.tasks.sync_catalog_task"
    return enqueue_job(kind=kind, task=task, triggered_by=triggered_by, user=user)


def _after_sync(run: SyncRun, *, dry_run: bool) -> None:
    """A sync that wrote anything is followed by a price-list rebuild (chained task)."""
    if dry_run or run.status not in (SyncRun.Status.OK, SyncRun.Status.PARTIAL):
        return
    from .feed import request_feed_build

    request_feed_build(triggered_by="chain")


# --- Full catalog ---------------------------------------------------------------------------


def sync_catalog(
    *,
    run: SyncRun,
    client: AlStyleClient | None = None,
    dry_run: bool = False,
    budget: CallBudget | None = None,
):
    """Continue (or start) the full listing: categories and brands when it starts, then
    pages from the saved offset while the budget allows; upsert what changed. After the
    last page, products the listing did not return are marked vanished (vanish guard)."""
    client = client or alstyle_client()
    if dry_run:
        return _dry_run_catalog(run=run, client=client)
    budget = budget or CallBudget()
    budget.used(client)  # counts from here
    for key in ("fetched", "created", "updated", "unchanged", "vanished", "errors"):
        run.counts.setdefault(key, 0)
    try:
        with matching.one_index_per_run(Supplier.alstyle()):
            _continue_listing(run, client, budget)
    except ExternalServiceError as exc:
        _note_error(run, str(exc))
        run.status = SyncRun.Status.PARTIAL if run.counts["fetched"] else SyncRun.Status.FAILED
        run.error = str(exc)
        logger.warning("catalog sync stopped early: %s (nothing marked vanished)", exc)
    finally:
        run.counts["calls"] = budget.used(client)


def _continue_listing(run: SyncRun, client: AlStyleClient, budget: CallBudget) -> None:
    listing = CatalogListing.objects.filter(finished_at__isnull=True).first()
    if listing is None:
        # Categories, brands and at least one page, or the listing does not start.
        if not budget.allows(client, 3):
            _skip_for_budget(run, budget)
            return
        # The listing exists only once categories and brands are in: one that failed on
        # them would go on with pages next run and leave its products without a category.
        started_at = timezone.now()
        sync_categories(client.categories())
        heartbeat(run)
        sync_brands(client.brands())
        heartbeat(run)
        listing = CatalogListing.objects.create(started_at=started_at)
    listing.runs += 1
    listing.save(update_fields=["runs"])
    run.params["listing"] = listing.pk
    category_map = dict(Category.objects.values_list("supplier_id", "pk"))
    brand_map = dict(Brand.objects.values_list("name", "pk"))
    if linked := link_missing_categories(category_map):
        run.count("categories_linked", linked)
    pricer = Pricer()
    pages = 0
    while listing.phase == CatalogListing.Phase.PAGES:
        if pages >= settings.ALSTYLE_MAX_PAGES or listing.pages >= settings.ALSTYLE_MAX_PAGES:
            raise ExternalServiceError(
                "Al-Style",
                f"pagination did not end after {settings.ALSTYLE_MAX_PAGES} pages "
                "(ALSTYLE_MAX_PAGES); the run stops to avoid an endless loop",
            )
        if not budget.allows(client):
            break
        elements, next_offset, total = client.product_page(offset=listing.next_offset)
        pages += 1
        records = _parse_page(elements, run=run)
        upsert_products(
            records,
            run=run,
            category_map=category_map,
            brand_map=brand_map,
            pricer=pricer,
        )
        record_checks((record.article for record, _raw in records), now=timezone.now(), listed=True)
        listing.pages += 1
        listing.elements += len(elements)
        listing.total = total if total is not None else listing.total
        if next_offset is None:
            listing.phase = CatalogListing.Phase.CONFIRM
        else:
            listing.next_offset = next_offset
        listing.save()
        heartbeat(run, done=listing.elements, total=listing.total)
    run.counts["pages"] = pages
    if listing.phase == CatalogListing.Phase.PAGES:
        run.params["listing_left_at"] = listing.next_offset
        logger.info(
            "catalog listing #%s continues next run at offset %s (%s)",
            listing.pk,
            listing.next_offset,
            budget.stopped,
        )
        return
    if not listing.elements:
        listing.phase, listing.finished_at = CatalogListing.Phase.DONE, timezone.now()
        listing.save()
        raise SupplierSyncError(
            "Al-Style returned no products at all; nothing was changed. "
            "Check the token's access or try again later."
        )
    if not _confirm_missing(listing, run, client, budget):
        return
    listed_before = _listed_offers().count()
    vanished = _not_listed_since(listing.started_at)
    listing.phase, listing.finished_at = CatalogListing.Phase.DONE, timezone.now()
    listing.save()
    if vanish_exceeds_limit(len(vanished), listed_before):
        hold_vanish(run, vanished, listed_before=listed_before, dry_run=False)
        return
    run.count("vanished", _unlist(vanished))
    if vanished:
        logger.info("%d products no longer listed by Al-Style", len(vanished))
    if run.counts["errors"]:
        run.status = SyncRun.Status.PARTIAL


def link_missing_categories(category_map: dict[int, int]) -> int:
    """Products without a category whose chosen Al-Style offer names one we now have (its
    category was unknown when the offer was written, e.g. the categories call had failed):
    linked now, since an unchanged offer is never rewritten. Returns how many."""
    rows = (
        Product.objects.filter(category=None, offer__supplier__code=Supplier.ALSTYLE)
        .exclude(offer__supplier_category_id="")
        .values_list("pk", "offer__supplier_category_id")
    )
    by_category: dict[int, list[int]] = {}
    for pk, code in rows:
        if code.isdigit() and int(code) in category_map:
            by_category.setdefault(category_map[int(code)], []).append(pk)
    linked = 0
    for category_id, ids in by_category.items():
        for start in range(0, len(ids), 500):  # bounded IN lists (SQLite's variable limit)
            linked += Product.objects.filter(pk__in=ids[start : start + 500], category=None).update(
                category_id=category_id
            )
    if linked:
        logger.info("%d products without a category linked to their Al-Style category", linked)
    return linked


def _listed_offers():
    return SupplierOffer.unordered.filter(supplier=Supplier.alstyle(), listed=True)


def _not_listed_since(started_at) -> list[str]:
    """Listed Al-Style offers the listing that started at `started_at` did not return."""
    seen = SupplierCheck.objects.filter(listed_at__gt=started_at).values("article")
    return sorted(_listed_offers().exclude(article__in=seen).values_list("article", flat=True))


def _confirm_missing(listing, run, client, budget) -> bool:
    """A listing that spanned several runs read its pages minutes apart; products that moved
    between pages meanwhile may have been skipped. Before anything is marked vanished, ask
    quantity-price about the missing ones: those it returns are kept (and their stock
    refreshed). Returns False when the budget ran out first (the next run continues).
    A single-run listing is taken as it is (as before); so is one whose missing share is
    over the vanish limit anyway (the guard holds it for staff)."""
    missing = _not_listed_since(listing.started_at)
    listed = _listed_offers().count()
    if listing.runs <= 1 or not missing or vanish_exceeds_limit(len(missing), listed):
        return True
    todo = [a for a in missing if a > listing.confirm_after]
    pricer = Pricer()
    chunk_size = max(1, settings.ALSTYLE_STOCK_CHUNK)
    for start in range(0, len(todo), chunk_size):
        if not budget.allows(client):
            return False
        chunk = todo[start : start + chunk_size]
        answer = client.quantity_price(chunk)
        present = [a for a in chunk if a in answer]
        _apply_stock(present, answer, run=run, pricer=pricer, dry_run=False)
        record_checks(present, now=timezone.now(), listed=True)
        run.count("confirmed_listed", len(present))
        listing.confirm_after = chunk[-1]
        listing.save(update_fields=["confirm_after"])
    return True


def _skip_for_budget(run: SyncRun, budget: CallBudget) -> None:
    run.status = SyncRun.Status.SKIPPED
    with translation.override(settings.LANGUAGE_CODE):
        run.error = gettext(
            "Supplier budget: no calls left for this run (%(reason)s); the next run continues."
        ) % {"reason": budget.reason}


def _parse_page(elements, *, run: SyncRun) -> list:
    """Parse one page of supplier elements into (record, raw) pairs; bad records are
    counted, noted on the run and logged, never stop the run."""
    records = []
    for raw in elements:
        run.count("fetched")
        try:
            records.append((parse_element(raw), raw))
        except BadRecord as exc:
            run.count("errors")
            _note_error(run, str(exc))
            logger.warning("Al-Style record skipped: %s", exc)
    return records


def _dry_run_catalog(*, run: SyncRun, client: AlStyleClient) -> None:
    """Fetch the whole listing and count what a sync would change; write nothing."""
    for key in ("fetched", "created", "updated", "unchanged", "vanished", "errors"):
        run.counts.setdefault(key, 0)
    category_map = sync_categories(client.categories(), dry_run=True)
    brand_map = sync_brands(client.brands(), dry_run=True)
    pricer = Pricer()
    seen: set[str] = set()
    try:
        for page in client.iter_product_pages():
            records = _parse_page(page, run=run)
            seen.update(record.article for record, _raw in records)
            upsert_products(
                records,
                run=run,
                category_map=category_map,
                brand_map=brand_map,
                pricer=pricer,
                dry_run=True,
            )
            heartbeat(run, done=run.counts["fetched"])
    except ExternalServiceError as exc:
        run.status = SyncRun.Status.PARTIAL if run.counts["fetched"] else SyncRun.Status.FAILED
        run.error = str(exc)
        return
    if not seen:
        raise SupplierSyncError(
            "Al-Style returned no products at all; nothing was changed. "
            "Check the token's access or try again later."
        )
    listed_before = offers.listed_articles(Supplier.alstyle())
    vanished = sorted(listed_before - seen)
    if vanish_exceeds_limit(len(vanished), len(listed_before)):
        hold_vanish(run, vanished, listed_before=len(listed_before), dry_run=True)
        return
    run.count("vanished", len(vanished))


def _note_error(run: SyncRun, message: str, limit: int = 20) -> None:
    lines = run.error.splitlines() if run.error else []
    if len(lines) < limit:
        run.error = "\n".join([*lines, message])


def sync_categories(rows: Iterable[dict], *, dry_run: bool = False) -> dict[int, int]:
    """Upsert the category tree from nested sets; return {supplier id: our id}."""
    parsed = []
    for row in rows:
        try:
            parsed.append(
                {
                    "supplier_id": int(row["id"]),
                    "name": str(row.get("name") or "").replace("\x00", "").strip()[:255]
                    or str(row["id"]),
                    "level": int(row.get("level") or 1),
                    "left": int(row.get("left") or 0),
                    "right": int(row.get("right") or 0),
                    "product_count": max(int(row.get("elements") or 0), 0),
                }
            )
        except (KeyError, TypeError, ValueError):
            logger.warning("Al-Style category skipped: %r", row)
    parsed.sort(key=lambda item: item["left"])
    # Nested sets: a category's parent is the nearest enclosing interval.
    stack: list[dict] = []
    for item in parsed:
        while stack and not (
            stack[-1]["left"] < item["left"] and item["right"] < stack[-1]["right"]
        ):
            stack.pop()
        item["parent_supplier_id"] = stack[-1]["supplier_id"] if stack else None
        if item["right"] > item["left"]:
            stack.append(item)

    existing = {c.supplier_id: c for c in Category.objects.all()}
    if dry_run:
        return {sid: c.pk for sid, c in existing.items()}
    with transaction.atomic():
        for item in parsed:
            category = existing.get(item["supplier_id"]) or Category(
                supplier_id=item["supplier_id"]
            )
            values = {k: item[k] for k in ("name", "level", "left", "right", "product_count")}
            if category.pk is None or any(getattr(category, k) != v for k, v in values.items()):
                for key, value in values.items():
                    setattr(category, key, value)
                category.save()
                existing[item["supplier_id"]] = category
        for item in parsed:
            category = existing[item["supplier_id"]]
            parent = existing.get(item["parent_supplier_id"])
            parent_id = parent.pk if parent else None
            if category.parent_id != parent_id:
                category.parent_id = parent_id
                category.save(update_fields=["parent"])
    return {sid: c.pk for sid, c in existing.items()}


def sync_brands(rows: Iterable[dict], *, dry_run: bool = False) -> dict[str, int]:
    """Upsert brands by name; return {name: our id}."""
    existing = {b.name: b for b in Brand.objects.all()}
    if not dry_run:
        for row in rows:
            name = str(row.get("name") or "").replace("\x00", "").strip()[:255]
            if not name:
                continue
            supplier_id = str(row.get("id") or "")[:64]
            brand = existing.get(name)
            if brand is None:
                existing[name] = Brand.objects.create(name=name, supplier_id=supplier_id)
            elif supplier_id and brand.supplier_id != supplier_id:
                brand.supplier_id = supplier_id
                brand.save(update_fields=["supplier_id"])
    return {name: brand.pk for name, brand in existing.items()}


def upsert_products(
    records: list[tuple[OfferRecord, dict]],
    *,
    run: SyncRun,
    category_map: dict[int, int],
    brand_map: dict[str, int],
    pricer: Pricer,
    dry_run: bool = False,
) -> None:
    """Write one Al-Style page through the offer upsert: new offers (with their product)
    inserted, changed ones updated with their product's snapshot, unchanged ones skipped."""
    offers.upsert_offers(
        Supplier.alstyle(),
        records,
        run=run,
        dry_run=dry_run,
        lookups=offers.Lookups(pricer=pricer, category_map=category_map, brand_map=brand_map),
    )


# --- Vanish guard (issue 14.2) ---------------------------------------------------------------


def vanish_exceeds_limit(vanished: int, listed_before: int) -> bool:
    """More than CATALOG_VANISH_LIMIT of the products listed before the run would go."""
    return listed_before > 0 and vanished > listed_before * settings.CATALOG_VANISH_LIMIT


def hold_vanish(run: SyncRun, vanished: list[str], *, listed_before: int, dry_run: bool) -> None:
    """Mark nothing vanished; hold the run for staff with a plain reason and an alert."""
    share = round(100 * len(vanished) / listed_before)
    limit = round(100 * settings.CATALOG_VANISH_LIMIT)
    run.status = SyncRun.Status.HELD
    run.counts["vanished"] = 0
    run.counts["would_vanish"] = len(vanished)
    run.params["held_vanish"] = vanished
    with translation.override(settings.LANGUAGE_CODE):
        reason = gettext(
            "Al-Style listed only %(seen)d of the %(before)d products we had: %(gone)d "
            "(%(share)d%%) are missing, more than the %(limit)d%% limit "
            "(CATALOG_VANISH_LIMIT). Nothing was taken off sale. This is usually a partial "
            "answer or an incident at the supplier: run the sync again later. If the "
            "products really left the catalog, confirm this run in the admin (Run history, "
            "action «Confirm: take the missing products off sale»)."
        ) % {
            "seen": listed_before - len(vanished),
            "before": listed_before,
            "gone": len(vanished),
            "share": share,
            "limit": limit,
        }
    run.error = "\n".join(filter(None, [reason, run.error]))
    logger.warning("catalog sync held: %d of %d products missing", len(vanished), listed_before)
    if dry_run:
        return
    from backoffice.core.alerts import send_alert

    with translation.override(settings.LANGUAGE_CODE):
        text = gettext("Catalog sync #%(run)s is held for staff.") % {"run": run.pk}
    link = f"{settings.SITE_URL}" + reverse("admin:backoffice_syncrun_change", args=[run.pk])
    send_alert(key=f"catalog-vanish-held:{run.pk}", text=f"{text}\n{reason}\n{link}")


def confirm_held_vanish(*, run: SyncRun, user=None) -> int:
    """Staff confirm a held catalog run: the products it did not see are unlisted now.

    Only the latest finished catalog run may be confirmed (a newer run's picture wins);
    products a later run listed again are not in its list and stay.
    """
    if run.kind != SyncRun.Kind.CATALOG or run.status != SyncRun.Status.HELD:
        raise SupplierSyncError(gettext("Only a held catalog sync can be confirmed."))
    newer = (
        SyncRun.objects.filter(kind=SyncRun.Kind.CATALOG, created_at__gt=run.created_at)
        .filter(status__in=[SyncRun.Status.OK, SyncRun.Status.PARTIAL, SyncRun.Status.HELD])
        .exists()
    )
    if newer:
        raise SupplierSyncError(
            gettext(
                "A newer catalog sync has finished since run #%(run)s; its result stands. "
                "Confirm the newest held run instead."
            )
            % {"run": run.pk}
        )
    articles = run.params.get("held_vanish") or []
    return record_confirmed_vanish(run, _unlist(articles), user=user)


def record_confirmed_vanish(run: SyncRun, gone: int, *, user=None) -> int:
    """A held run confirmed by staff: `gone` products were taken off sale. Marks the run ok
    with who confirmed it, audits it and rebuilds the price list. Shared by the Al-Style
    and the price-file syncs."""
    run.status = SyncRun.Status.OK
    run.counts["vanished"] = gone
    who = getattr(user, "username", "") or "?"
    run.params["vanish_confirmed"] = {"by": who, "at": timezone.now().isoformat()}
    run.error = "\n".join(
        filter(
            None,
            [
                gettext("Confirmed by %(user)s: %(n)d products taken off sale.")
                % {"user": who, "n": gone},
                run.error,
            ],
        )
    )
    run.save()
    from backoffice.core.audit import audit

    audit(user=user, action="syncrun.confirm_vanish", obj=run, after={"unlisted": gone})
    from .feed import request_feed_build

    request_feed_build(triggered_by="chain")
    return gone


def _unlist(articles: list[str]) -> int:
    return offers.mark_offers_vanished(Supplier.alstyle(), articles=list(articles))


def mark_vanished(seen: set[str], *, dry_run: bool = False) -> int:
    """Unlist Al-Style offers (and their products) a complete run did not return."""
    supplier = Supplier.alstyle()
    if dry_run:
        return len(offers.listed_articles(supplier) - seen)
    count = offers.mark_offers_vanished(supplier, seen)
    if count:
        logger.info("%d products no longer listed by Al-Style", count)
    return count


# --- Stock and price refresh -----------------------------------------------------------------


def sync_stock(
    *,
    run: SyncRun,
    client: AlStyleClient | None = None,
    dry_run: bool = False,
    budget: CallBudget | None = None,
):
    """Refresh quantity and prices with `quantity-price`, 250 articles a call: every listed
    product without a budget, else what the planner says matters first (budget.py)."""
    client = client or alstyle_client()
    for key in ("fetched", "updated", "unchanged", "missing", "errors"):
        run.counts.setdefault(key, 0)
    chunk_size = max(1, settings.ALSTYLE_STOCK_CHUNK)
    if budget is None or budget.calls is None:
        articles = list(_listed_offers().order_by("article").values_list("article", flat=True))
    else:
        articles = stock_articles(
            limit=budget.calls * chunk_size, rest_limit=budget.tick_calls * chunk_size
        )
        if not articles:
            if budget.calls == 0:
                _skip_for_budget(run, budget)
            else:
                run.status = SyncRun.Status.SKIPPED
                with translation.override(settings.LANGUAGE_CODE):
                    run.error = gettext("Nothing is due: every product was checked recently.")
            return
    budget = budget or CallBudget()
    budget.used(client)  # counts from here
    heartbeat(run, done=0, total=len(articles))
    pricer = Pricer()
    try:
        for start in range(0, len(articles), chunk_size):
            if not budget.allows(client):
                run.params["stopped"] = budget.stopped
                break
            chunk = articles[start : start + chunk_size]
            try:
                answer = client.quantity_price(chunk)
            except ExternalServiceError as exc:
                run.status = SyncRun.Status.PARTIAL if start else SyncRun.Status.FAILED
                run.error = str(exc)
                return
            _apply_stock(chunk, answer, run=run, pricer=pricer, dry_run=dry_run)
            if not dry_run:
                record_checks([a for a in chunk if a in answer], now=timezone.now())
            heartbeat(run, done=min(start + chunk_size, len(articles)))
        if run.counts["errors"]:
            run.status = SyncRun.Status.PARTIAL
    finally:
        run.counts["calls"] = budget.used(client)


def _apply_stock(chunk, answer, *, run, pricer, dry_run) -> None:
    """A quantity-price answer onto the Al-Style offers of `chunk` (and their products)."""
    parsed = {}
    for article, row in answer.items():
        try:
            price1 = parse_money(row.get("price1"))
            price2 = parse_money(row.get("price2"))
        except ValueError as exc:
            run.count("fetched")
            run.count("errors")
            _note_error(run, f"article {article}: {exc}")
            continue
        quantity, quantity_raw, _ok = parse_quantity(row.get("quantity"))
        warehouses = parse_warehouse_stock(row.get("warehouse"), article=article)
        parsed[article] = StockPrice(
            article, quantity, quantity_raw, price1, price2, warehouse_stock=warehouses
        )
    skipped = set(answer) - set(parsed)
    offers.apply_stock(
        Supplier.alstyle(),
        [a for a in chunk if a not in skipped],
        parsed,
        run=run,
        dry_run=dry_run,
        lookups=offers.Lookups(pricer=pricer),
    )
