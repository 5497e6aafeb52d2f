"""Kaspi order import: windows → pages → one upsert path for orders and their entries.

Orders are upserted by Kaspi id, compared by a hash of their attributes: the same order
twice is one row, a changed status updates it, an unchanged one writes nothing. Entries are
fetched only for orders that are new or changed. Each page is written in one transaction,
so a malformed page leaves nothing half-written; the run records the windows it covered.

Incremental mode (the schedule) re-reads from the last fully covered moment minus an
overlap, and, because a status change does not move `creationDate`, also re-reads the
14-day windows holding the creation dates of orders we keep that are not final yet.
"""

import hashlib
import json
import logging
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from backoffice.exceptions import BackofficeError, ExternalServiceError
from backoffice.models import SyncRun
from backoffice.runs import enqueue_job, heartbeat, run_job
from catalog.models import Product

from ..clients.kaspi_shop import KaspiShopClient, Window, to_ms, windows
from ..models import Fulfilment, Order, OrderEntry
from .fulfilment import FROM_KASPI, follow_kaspi_status

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
        job=lambda run: import_orders(run=run, since=since, until=until, status=status),
    )


def request_order_import(*, user=None, triggered_by: str = "user"):
    return enqueue_job(
        kind=SyncRun.Kind.ORDERS,
        task="orders.tasks.import_orders_task",
        triggered_by=triggered_by,
        user=user,
    )


# --- Service --------------------------------------------------------------------------------


def import_orders(
    *,
    run: SyncRun,
    since: datetime | None = None,
    until: datetime | None = None,
    status: str | None = None,
    client: KaspiShopClient | None = None,
) -> None:
    """Walk the windows of [since, until] (plus open orders' windows when incremental)."""
    client = client or KaspiShopClient()
    until = until or timezone.now()
    incremental = since is None
    if incremental:
        since = _incremental_start(until)
    plan = windows(since, until)
    if incremental:
        plan = open_order_windows(before=since) + plan
    for key in ("windows", "fetched", "new", "updated", "unchanged", "entries", "errors"):
        run.counts.setdefault(key, 0)
    run.params.update(
        {
            "since": since.isoformat(),
            "until": until.isoformat(),
            "incremental": incremental,
            "planned_windows": len(plan),
        }
    )
    heartbeat(run, done=0, total=len(plan), force=True)
    products = ProductIndex()
    for done, window in enumerate(plan, start=1):
        try:
            for page in client.order_pages(window, status=status):
                import_page(page, run=run, client=client, window=window, products=products)
        except (ExternalServiceError, OrderImportError) as exc:
            run.status = SyncRun.Status.PARTIAL if done > 1 else SyncRun.Status.FAILED
            run.error = f"window {done} of {len(plan)} ({_window_text(window)}): {exc}"
            logger.warning("order import stopped: %s", run.error)
            break
        run.count("windows")
        # Windows of the main period are consecutive: everything up to here is covered.
        if window.end_ms >= to_ms(since):
            run.params["covered_until"] = _from_ms(window.end_ms).isoformat()
        heartbeat(run, done=done)
    refresh_reservations(products.touched)


def _incremental_start(until: datetime) -> datetime:
    """The last fully covered moment of earlier runs, minus the overlap."""
    overlap = timedelta(hours=settings.ORDERS_OVERLAP_HOURS)
    for params in (
        SyncRun.objects.filter(kind=SyncRun.Kind.ORDERS, params__covered_until__isnull=False)
        .exclude(status=SyncRun.Status.SKIPPED)
        .order_by("-created_at")
        .values_list("params", flat=True)[:1]
    ):
        covered = datetime.fromisoformat(params["covered_until"])
        return max(covered - overlap, until - timedelta(days=365))
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
    start = timezone.localtime(_from_ms(window.start_ms)).strftime(fmt)
    end = timezone.localtime(_from_ms(window.end_ms)).strftime(fmt)
    return f"{start} – {end}"


def _from_ms(value) -> datetime | None:
    if value in (None, ""):
        return None
    return datetime.fromtimestamp(int(value) / 1000, tz=UTC)


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
    page: dict, *, run: SyncRun, client: KaspiShopClient, window: Window, products: ProductIndex
) -> None:
    """Parse a whole page first, then write it in one transaction (all or nothing)."""
    customers = {
        item.get("id"): item.get("attributes") or {}
        for item in page.get("included") or []
        if isinstance(item, dict) and item.get("type") == "customers"
    }
    parsed = []
    for item in page["data"]:
        run.count("fetched")
        values = parse_order(item, customers)  # raises OrderImportError: the page fails
        created = values["creation_date"]
        if created and not (window.start_ms <= to_ms(created) <= window.end_ms):
            continue  # pages may leak just outside the window: its neighbour has it
        parsed.append(values)
    if not parsed:
        return
    existing = {
        kaspi_id: (pk, digest)
        for kaspi_id, pk, digest in Order.objects.filter(
            kaspi_id__in=[v["kaspi_id"] for v in parsed]
        ).values_list("kaspi_id", "pk", "data_hash")
    }
    changed = []
    for values in parsed:
        known = existing.get(values["kaspi_id"])
        if known and known[1] == values["data_hash"]:
            run.count("unchanged")
        else:
            changed.append(values)
    if not changed:
        return
    # Entries are fetched before any write, so a failure leaves the page untouched.
    entries = {values["kaspi_id"]: client.order_entries(values["kaspi_id"]) for values in changed}
    products.resolve(
        {
            _offer_code(entry)
            for rows in entries.values()
            for entry in rows
            if isinstance(entry, dict)
        }
    )
    now = timezone.now()
    with transaction.atomic():
        new_orders, updated_ids = [], []
        for values in changed:
            values["synced_at"] = now
            known = existing.get(values["kaspi_id"])
            if known:
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
            for values in changed
            for line in _entries(ids[values["kaspi_id"]], entries[values["kaspi_id"]], products)
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
            raise OrderImportError(f"order {order_id}: an entry is not an object")
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
        raise OrderImportError("an order without an id in the page")
    attrs = item.get("attributes")
    if not isinstance(attrs, dict) or not attrs.get("code"):
        raise OrderImportError(f"order {item.get('id')}: no attributes/code")
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
    raw = json.dumps(item, ensure_ascii=False, sort_keys=True)
    try:
        creation = _from_ms(attrs.get("creationDate"))
        planned = _from_ms(attrs.get("plannedDeliveryDate"))
    except (TypeError, ValueError, OverflowError):
        raise OrderImportError(f"order {attrs.get('code')}: bad date") from None
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
        raise OrderImportError(f"amount {value!r} is not a number") from None


def _int(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


# --- Reserved stock -----------------------------------------------------------------------


def refresh_reservations(product_ids: set[int] | None = None) -> int:
    """Recompute `Product.reserved_quantity` from open Kaspi orders (all products, or some)."""
    open_entries = OrderEntry.objects.filter(
        order__channel=Order.Channel.KASPI,
        order__status__in=Order.RESERVING_STATUSES,
        product__isnull=False,
    )
    if product_ids is not None:
        if not product_ids:
            return 0
        open_entries = open_entries.filter(product_id__in=product_ids)
    totals = dict(
        open_entries.values("product_id")
        .annotate(total=Sum("quantity"))
        .values_list("product_id", "total")
    )
    scope = Product.objects.all()
    if product_ids is not None:
        scope = scope.filter(pk__in=product_ids)
    changed = 0
    with transaction.atomic():
        changed += (
            scope.exclude(pk__in=list(totals))
            .exclude(reserved_quantity=0)
            .update(reserved_quantity=0)
        )
        for product_id, total in totals.items():
            changed += (
                Product.objects.filter(pk=product_id)
                .exclude(reserved_quantity=total)
                .update(reserved_quantity=total)
            )
    return changed
