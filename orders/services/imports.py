"""Kaspi order import: windows → pages → one upsert path for orders and their entries.

Orders are upserted by Kaspi id, compared by a hash of their attributes: the same order
twice is one row, a changed status updates it, an unchanged one writes nothing. Entries are
fetched only for orders that are new or changed, and an order is written only together with
its entries (never half). A failed request costs that order, or the rest of its window, not
the run: the others are written, the failure is recorded (the run is partial), and the run
remembers the first window it did not read whole, so the next run continues there.

Incremental mode (the schedule) re-reads from where the last run left off (its first window
not read whole, or its last covered moment minus an overlap), and, because a status change
does not move `creationDate`, also re-reads the 14-day windows holding the creation dates
of orders we keep that are not final yet.
"""

import hashlib
import json
import logging
import time
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from backoffice.core.exceptions import BackofficeError, ExternalServiceError
from backoffice.core.runs import enqueue_job, heartbeat, run_job
from backoffice.models import SyncRun
from catalog.clients.kaspi_shop import KaspiShopClient, Window, to_ms, windows
from catalog.models import Product

from ..models import Fulfilment, Order, OrderEntry
from .kaspi_records import from_ms, kaspi_delivery
from .reservations import refresh_reservations
from .stages import FROM_KASPI, follow_kaspi_status

logger = logging.getLogger(__name__)

ORDER_FIELDS = [
    "code",
    "state",
    "status",
    "total_price",
    "payment_mode",
    "delivery_mode",
    "is_kaspi_delivery",
    "pre_order",
    "kaspi_assembled",
    "waybill_number",
    "waybill_url",
    "courier_planned_at",
    "planned_delivery_date",
    "delivery_cost",
    "customer_name",
    "customer_phone",
    "delivery_address",
    "creation_date",
    "raw",
    "data_hash",
    "synced_at",
]


class OrderImportError(BackofficeError):
    pass


# --- Entry points -------------------------------------------------------------------------


def run_order_import(
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    status: str | None = None,
    triggered_by: str = "command",
    user=None,
    run_id: int | None = None,
) -> SyncRun:
    """Import orders under the orders lock; incremental when `since` is not given."""
    run = SyncRun.objects.get(pk=run_id) if run_id else None
    params = {
        "since": since.isoformat() if since else None,
        "until": until.isoformat() if until else None,
        "status": status,
    }
    return run_job(
        kind=SyncRun.Kind.ORDERS,
        run=run,
        triggered_by=triggered_by,
        user=user,
        params=params,
        job=lambda run: import_then_new_orders(run=run, since=since, until=until, status=status),
    )


# process_new_orders' counts → the run's count keys (pull_kaspi_orders prints them).
NEW_ORDER_COUNTS = {
    "checked": "new_stock_checked",
    "alerted": "new_alerted",
    "accepted": "new_auto_accepted",
    "attention": "new_attention",
    "reminded": "new_reminded",
}


def import_then_new_orders(*, run: SyncRun, since=None, until=None, status=None) -> None:
    """One order run, whoever starts it (the schedule, a command, a button): the import,
    then the new-order flow (stock check, staff alert, optional auto-accept, reminders)
    under the same lock, so two entry points never alert or accept an order twice."""
    from .fulfilment import process_new_orders

    try:
        import_orders(run=run, since=since, until=until, status=status)
    except Exception:
        # Orders of earlier pages (and earlier runs) are stored: staff still hear of them.
        try:
            _record_new_orders(run, process_new_orders())
        except Exception:
            logger.exception("new-order flow failed after a failed import (run #%s)", run.pk)
        raise
    _record_new_orders(run, process_new_orders())


def _record_new_orders(run: SyncRun, counts: dict) -> None:
    counts = {**counts, "alerted": counts.get("checked", 0)}  # one alert per new order
    for name, key in NEW_ORDER_COUNTS.items():
        run.counts[key] = counts.get(name, 0)


def request_order_import(*, user=None, triggered_by: str = "user"):
    return enqueue_job(
        kind=SyncRun.Kind.ORDERS,
        task="orders.tasks.import_orders_task",
        triggered_by=triggered_by,
        user=user,
    )


# --- Service --------------------------------------------------------------------------------


# Answers that will not get better by themselves: the token or the request is wrong. The
# run stops at once. Anything else (timeouts, 5xx after the HTTP retries, a cut-off answer,
# one odd order) is recorded and the run goes on with the next order or window.
FATAL_STATUSES = frozenset({400, 401, 403, 406, 415})
# So many failed requests in a row mean Kaspi is down or unreachable: stop.
MAX_FAILURES_IN_A_ROW = 3
MAX_ERRORS_SHOWN = 10
# Orders read are written at the end of their page, or sooner when answers are slow: what
# took this long to read is not left waiting for the rest of the page.
WRITE_EVERY_SECONDS = 2.0


class StopImport(Exception):
    """Raised inside the walk when the run must stop (fatal answer, Kaspi down)."""


class Progress:
    """Errors and the walk's state: what failed, and whether the current window is whole."""

    def __init__(self, run: SyncRun):
        self.run = run
        self.errors: list[str] = []
        self.in_a_row = 0
        self.succeeded = 0
        self.window_whole = True

    def ok(self) -> None:
        self.in_a_row = 0
        self.succeeded += 1

    def failed(self, text: str, exc: Exception, *, request: bool = True) -> None:
        """Record one failure; raise StopImport when the run cannot usefully go on.

        `request=False` for data we cannot use (an odd order): it says nothing about
        whether Kaspi is reachable."""
        self.window_whole = False
        self.in_a_row += 1 if request else 0
        self.run.count("errors")
        self.errors.append(text)
        logger.warning("order import: %s", text)
        if getattr(exc, "status", None) in FATAL_STATUSES:
            raise StopImport(text)
        if self.in_a_row >= MAX_FAILURES_IN_A_ROW:
            raise StopImport(text)

    def summary(self) -> str:
        shown = "; ".join(self.errors[:MAX_ERRORS_SHOWN])
        if len(self.errors) > MAX_ERRORS_SHOWN:
            shown += "; " + _("… and %(n)d more") % {"n": len(self.errors) - MAX_ERRORS_SHOWN}
        return shown


def import_orders(
    *,
    run: SyncRun,
    since: datetime | None = None,
    until: datetime | None = None,
    status: str | None = None,
    client: KaspiShopClient | None = None,
) -> None:
    """Walk the windows of [since, until] (plus open orders' windows when incremental).

    Every order is written with its entries once both are read; a failed request costs that
    order or the rest of that window, not the run. The run records where the next one must
    start (`resume_from`: the first window of the period not read whole), saved after every
    window, so an interrupted or partly failed run, a backfill included, is continued by the
    next incremental run; orders already stored are not fetched again.
    """
    client = client or KaspiShopClient()
    until = until or timezone.now()
    incremental = since is None
    if incremental:
        since = _incremental_start(until, current=run.pk)
    main = windows(since, until)
    plan = (open_order_windows(before=since) if incremental else []) + main
    first_main = len(plan) - len(main)
    for key in ("windows", "fetched", "new", "updated", "unchanged", "entries", "errors"):
        run.counts.setdefault(key, 0)
    run.params.update(
        {
            "since": since.isoformat(),
            "until": until.isoformat(),
            "incremental": incremental,
            "planned_windows": len(plan),
            "resume_from": since.isoformat(),
        }
    )
    run.params.pop("covered_until", None)
    _save_params(run)
    heartbeat(run, done=0, total=len(plan), force=True)
    products = ProductIndex()
    progress = Progress(run)
    whole_so_far = True  # every main window up to here was read whole
    stopped = False
    for done, window in enumerate(plan, start=1):
        progress.window_whole = True
        where = _("window %(n)d of %(total)d (%(dates)s)") % {
            "n": done,
            "total": len(plan),
            "dates": _window_text(window),
        }
        try:
            _import_window(
                window,
                where=where,
                run=run,
                client=client,
                status=status,
                products=products,
                progress=progress,
            )
        except StopImport:
            stopped = True
        if done > first_main and whole_so_far:
            if progress.window_whole:
                run.params["covered_until"] = from_ms(window.end_ms).isoformat()
                run.params["resume_from"] = from_ms(window.end_ms + 1).isoformat()
            else:
                whole_so_far = False
                run.params["resume_from"] = from_ms(window.start_ms).isoformat()
            _save_params(run)
        if progress.window_whole:
            run.count("windows")
        heartbeat(run, done=done)
        if stopped:
            break
    if whole_so_far and not stopped:
        run.params.pop("resume_from", None)  # the whole period is read
        _save_params(run)
    refresh_reservations(products.touched)
    if progress.errors:
        failed = stopped and progress.succeeded == 0
        run.status = SyncRun.Status.FAILED if failed else SyncRun.Status.PARTIAL
        run.error = progress.summary()
        if not failed and run.params.get("resume_from"):
            run.error += " " + _("The next run continues from %(moment)s.") % {
                "moment": timezone.localtime(
                    datetime.fromisoformat(run.params["resume_from"])
                ).strftime("%d.%m.%Y %H:%M")
            }


def _import_window(window, *, where, run, client, status, products, progress) -> None:
    number = 0
    while True:
        try:
            page = client.order_page(window, number, status=status)
        except ExternalServiceError as exc:
            progress.failed(
                _("%(where)s, page %(page)d: %(error)s")
                % {"where": where, "page": number + 1, "error": exc},
                exc,
            )
            return  # the rest of this window waits for the next run
        progress.ok()
        import_page(
            page, run=run, client=client, window=window, products=products, progress=progress
        )
        page_count = (page.get("meta") or {}).get("pageCount")
        number += 1
        if not isinstance(page_count, int) or number >= page_count or not page["data"]:
            return
        if number >= settings.KASPI_ORDERS_MAX_PAGES:
            exc = ExternalServiceError(
                "Kaspi",
                _("more than %(pages)d pages in one window")
                % {"pages": settings.KASPI_ORDERS_MAX_PAGES},
            )
            progress.failed(f"{where}: {exc}", exc)
            return


def _save_params(run: SyncRun) -> None:
    if run.pk:
        SyncRun.objects.filter(pk=run.pk).update(params=run.params)


def _incremental_start(until: datetime, *, current: int | None = None) -> datetime:
    """Where the last import of the whole shop left off.

    The newest earlier run that walked a period decides: a run that did not read its
    period whole (failed, partial, interrupted, a backfill too) is continued from its
    `resume_from`; a finished one from its last covered moment minus the overlap. Runs
    filtered by status do not count: they read only part of the orders.
    """
    overlap = timedelta(hours=settings.ORDERS_OVERLAP_HOURS)
    floor = until - timedelta(days=365)
    earlier = (
        SyncRun.objects.filter(kind=SyncRun.Kind.ORDERS)
        .exclude(status=SyncRun.Status.SKIPPED)
        .exclude(pk=current)
        .order_by("-created_at", "-id")
        .values_list("params", flat=True)
    )
    for params in earlier.iterator(chunk_size=50):
        if not isinstance(params, dict) or params.get("status"):
            continue
        if params.get("resume_from"):
            return max(datetime.fromisoformat(params["resume_from"]), floor)
        if params.get("covered_until"):
            return max(datetime.fromisoformat(params["covered_until"]) - overlap, floor)
    return until - timedelta(days=settings.ORDERS_INITIAL_DAYS)


def open_order_windows(*, before: datetime) -> list[Window]:
    """Windows (≤ 14 days) holding the creation dates of our non-final Kaspi orders created
    before `before`: one list query per window instead of one request per order."""
    dates = (
        Order.objects.filter(channel=Order.Channel.KASPI, creation_date__lt=before)
        .exclude(status__in=Order.FINAL_STATUSES)
        .order_by("creation_date")
        .values_list("creation_date", flat=True)
    )
    span = timedelta(days=settings.KASPI_ORDERS_WINDOW_DAYS) - timedelta(milliseconds=1)
    result: list[Window] = []
    for created in dates:
        if result and to_ms(created) <= result[-1].end_ms:
            continue
        start_ms = to_ms(created)
        end_ms = max(to_ms(min(created + span, before - timedelta(milliseconds=1))), start_ms + 1)
        result.append(Window(start_ms, end_ms))  # never an empty [t, t] window
    return result


def _window_text(window: Window) -> str:
    fmt = "%Y-%m-%d %H:%M"
    start = timezone.localtime(from_ms(window.start_ms)).strftime(fmt)
    end = timezone.localtime(from_ms(window.end_ms)).strftime(fmt)
    return f"{start} – {end}"


# --- One page -------------------------------------------------------------------------------


class ProductIndex:
    """SKU → product id, loaded lazily per SKU set; remembers the products it linked.

    An entry's `offer.code` is looked up whole first: a shop's kept SKUs include Kaspi-made
    ones such as `130342357_673822557` (docs/kaspi-price-list.md). Only when the whole code
    is no product's SKU is the `_suffix` some shops see cut off.
    """

    def __init__(self):
        self.ids: dict[str, int | None] = {}
        self.touched: set[int] = set()

    def resolve(self, codes: set[str]) -> None:
        skus = {part for code in codes if code for part in (code, _base_code(code))}
        missing = [sku for sku in skus if sku and sku not in self.ids]
        if missing:
            found = dict(Product.objects.filter(sku__in=missing).values_list("sku", "pk"))
            for sku in missing:
                self.ids[sku] = found.get(sku)

    def sku_for(self, code: str) -> str:
        """The SKU an entry's offer code stands for: the whole code when it is a product's
        SKU, else the code without its `_suffix`."""
        return code if self.ids.get(code) else _base_code(code)

    def get(self, sku: str) -> int | None:
        product_id = self.ids.get(sku)
        if product_id:
            self.touched.add(product_id)
        return product_id


def import_page(
    page: dict,
    *,
    run: SyncRun,
    client: KaspiShopClient,
    window: Window,
    products: ProductIndex,
    progress: Progress | None = None,
) -> None:
    """Write every order of a page that is new or changed, each with its entries.

    An order that cannot be parsed, or whose entries cannot be read, is recorded and left
    for the next run; the others are written: in one INSERT for the page when Kaspi answers
    quickly, every WRITE_EVERY_SECONDS when it is slow, and as far as the page got when the
    run stops in the middle of it.
    """
    progress = progress or Progress(run)
    customers = {
        item.get("id"): item.get("attributes") or {}
        for item in page.get("included") or []
        if isinstance(item, dict) and item.get("type") == "customers"
    }
    parsed, seen = [], set()
    for item in page["data"]:
        run.count("fetched")
        try:
            values = parse_order(item, customers)
        except OrderImportError as exc:
            progress.failed(str(exc), exc, request=False)
            continue
        created = values["creation_date"]
        if created and not (window.start_ms <= to_ms(created) <= window.end_ms):
            continue  # pages may leak just outside the window: its neighbour has it
        if values["kaspi_id"] in seen:
            continue  # the same order twice in one page
        seen.add(values["kaspi_id"])
        parsed.append(values)
    if not parsed:
        return
    existing = {
        kaspi_id: (pk, digest)
        for kaspi_id, pk, digest in Order.objects.filter(
            kaspi_id__in=[v["kaspi_id"] for v in parsed]
        ).values_list("kaspi_id", "pk", "data_hash")
    }
    read: list[tuple[dict, list]] = []
    flushed = time.monotonic()
    try:
        for values in parsed:
            known = existing.get(values["kaspi_id"])
            if known and known[1] == values["data_hash"]:
                run.count("unchanged")
                continue
            try:
                rows = client.order_entries(values["kaspi_id"])
                if not all(isinstance(row, dict) for row in rows):
                    raise OrderImportError(
                        _("order %(code)s: an entry is not an object") % {"code": values["code"]}
                    )
            except (ExternalServiceError, OrderImportError) as exc:
                progress.failed(
                    _("order %(code)s: %(error)s") % {"code": values["code"], "error": exc},
                    exc,
                    request=isinstance(exc, ExternalServiceError),
                )
                continue
            progress.ok()
            read.append((values, rows))
            heartbeat(run)
            if time.monotonic() - flushed >= WRITE_EVERY_SECONDS:  # slow answers: keep them
                _write_orders(read, existing=existing, run=run, products=products)
                read, flushed = [], time.monotonic()
    finally:
        # Whatever was read whole is kept, also when the run stops in the middle of a page.
        _write_orders(read, existing=existing, run=run, products=products)


def _write_orders(read, *, existing, run: SyncRun, products: ProductIndex) -> None:
    if not read:
        return
    products.resolve({_offer_code(entry) for _values, rows in read for entry in rows})
    now = timezone.now()
    with transaction.atomic():
        new_orders, updated_ids = [], []
        for values, _rows in read:
            values["synced_at"] = now
            known = existing.get(values["kaspi_id"])
            if known:
                if not values["kaspi_assembled"]:  # packed stays packed (ours or Kaspi's)
                    values = {k: v for k, v in values.items() if k != "kaspi_assembled"}
                Order.objects.filter(pk=known[0]).update(**values, updated_at=now)
                updated_ids.append(known[0])
            else:
                # A new order starts at the fulfilment step its Kaspi status proves
                # (history from a backfill is not replayed step by step).
                step = FROM_KASPI.get(values["status"], Fulfilment.NEW)
                new_orders.append(Order(channel=Order.Channel.KASPI, fulfilment=step, **values))
        # One INSERT for the page's new orders (ids come back on PostgreSQL and SQLite).
        Order.objects.bulk_create(new_orders)
        ids = {kaspi_id: pk for kaspi_id, (pk, _digest) in existing.items()}
        ids.update({order.kaspi_id: order.pk for order in new_orders})
        OrderEntry.objects.filter(order_id__in=updated_ids).delete()
        lines = [
            line
            for values, rows in read
            for line in _entries(ids[values["kaspi_id"]], rows, products)
        ]
        OrderEntry.objects.bulk_create(lines)
        for order in Order.objects.filter(pk__in=updated_ids):
            follow_kaspi_status(order)
    run.count("new", len(new_orders))
    run.count("updated", len(updated_ids))
    run.count("entries", len(lines))


def _entries(order_id: int, rows: list[dict], products: ProductIndex) -> list[OrderEntry]:
    objs = []
    for row in rows:
        if not isinstance(row, dict):
            raise OrderImportError(
                _("order %(code)s: an entry is not an object") % {"code": order_id}
            )
        attrs = row.get("attributes") or {}
        offer = attrs.get("offer") or {}
        code = products.sku_for(_offer_code(row))
        objs.append(
            OrderEntry(
                order_id=order_id,
                kaspi_id=str(row.get("id") or "")[:64],
                entry_number=_int(attrs.get("entryNumber")) or 0,
                offer_code=code[:64],
                name=str(offer.get("name") or (attrs.get("product") or {}).get("name") or ""),
                quantity=max(_int(attrs.get("quantity")) or 1, 1),
                base_price=_money(attrs.get("basePrice")),
                total_price=_money(attrs.get("totalPrice")),
                product_id=products.get(code),
            )
        )
    return objs


def _offer_code(row: dict) -> str:
    """The entry's `offer.code` as Kaspi sent it (ProductIndex.sku_for reads the SKU)."""
    offer = (row.get("attributes") or {}).get("offer") or {}
    return str(offer.get("code") or "")


def _base_code(code: str) -> str:
    """`offer.code` without the `_suffix` some shops see (docs/kaspi-shop-api.md)."""
    return code.split("_", 1)[0]


def parse_order(item: dict, customers: dict) -> dict:
    if not isinstance(item, dict) or not item.get("id"):
        raise OrderImportError(_("an order without an id in the page"))
    attrs = item.get("attributes")
    if not isinstance(attrs, dict) or not attrs.get("code"):
        raise OrderImportError(_("order %(id)s: no attributes/code") % {"id": item.get("id")})
    customer = attrs.get("customer") or {}
    user_ref = ((item.get("relationships") or {}).get("user") or {}).get("data") or {}
    included = customers.get(user_ref.get("id")) or {}
    name = customer.get("name") or " ".join(
        part
        for part in (
            customer.get("firstName") or included.get("firstName"),
            customer.get("lastName") or included.get("lastName"),
        )
        if part
    )
    phone = customer.get("cellPhone") or included.get("cellPhone") or ""
    address = attrs.get("deliveryAddress") or {}
    delivery = kaspi_delivery(attrs)
    raw = json.dumps(item, ensure_ascii=False, sort_keys=True)
    try:
        creation = from_ms(attrs.get("creationDate"))
        planned = from_ms(attrs.get("plannedDeliveryDate"))
    except (TypeError, ValueError, OverflowError):
        raise OrderImportError(
            _("order %(code)s: bad date") % {"code": attrs.get("code")}
        ) from None
    return {
        "kaspi_id": str(item["id"])[:64],
        "code": str(attrs["code"])[:64],
        "state": str(attrs.get("state") or "")[:32],
        "status": str(attrs.get("status") or "")[:40],
        "total_price": _money(attrs.get("totalPrice")),
        "payment_mode": str(attrs.get("paymentMode") or "")[:32],
        "delivery_mode": str(attrs.get("deliveryMode") or "")[:40],
        "is_kaspi_delivery": bool(attrs.get("isKaspiDelivery")),
        "pre_order": bool(attrs.get("preOrder")),
        **delivery,
        "planned_delivery_date": planned,
        "delivery_cost": _money(attrs.get("deliveryCost")),
        "customer_name": str(name or "")[:255],
        "customer_phone": _phone(phone),
        "delivery_address": str(address.get("formattedAddress") or ""),
        "creation_date": creation,
        "raw": raw,
        "data_hash": hashlib.md5(raw.encode(), usedforsecurity=False).hexdigest(),
    }


def _phone(value) -> str:
    digits = "".join(ch for ch in str(value or "") if ch.isdigit())
    if len(digits) == 10:
        return f"+7{digits}"
    return f"+{digits}" if digits else ""


def _money(value) -> int:
    try:
        return max(int(Decimal(str(value)).to_integral_value()), 0) if value is not None else 0
    except (InvalidOperation, ValueError):
        raise OrderImportError(_("amount %(value)r is not a number") % {"value": value}) from None


def _int(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
