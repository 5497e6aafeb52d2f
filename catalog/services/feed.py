"""Kaspi XML price list: build, validate, publish (docs/kaspi-price-list.md).

The file is written by a string writer (catalog/feedxml.py: one escaping function proven
equal to lxml's output) straight from a database cursor, so memory stays flat whatever the
catalog size. Every value is checked before it is written (the XSD's rules) and each SKU
is written once; the offers are counted again from the written bytes (FEED_OUTPUT_CHECK
"expat" also parses every byte in a child process as it is written). The file is
published with fsync + `os.replace`, so Kaspi always downloads either the previous good
file or the new one, never a half-written or empty one. When the offers
are byte for byte those of the published file, nothing is published: same file, same ETag,
same `date` (the time the offers last changed, §5.8). The XSD pass (`validate_feed_file`)
stays for tests and checks by hand: tests/catalog/test_feed_writer.py.

Where the time goes (bench/build_feed.py prints the phases): reading the rows (a thread
fetches the next chunk), the writer's loop, and on a first build recording 95,000
PublishedOffer rows (one COPY). Storing, hashing and gzip run in a thread (the expat
check, when set, in its process); the published state is written only where it changed.
"""

import gzip
import hashlib
import io
import json
import logging
import os
import queue
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from array import array
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from django.conf import settings
from django.db import IntegrityError, connections, router, transaction
from django.db.models import (
    BooleanField,
    Case,
    ExpressionWrapper,
    F,
    IntegerField,
    Q,
    Value,
    When,
)
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext as _
from lxml import etree

from backoffice.core.exceptions import BackofficeError
from backoffice.core.i18n import in_shop_language
from backoffice.core.runs import enqueue_job, heartbeat, run_job
from backoffice.models import SyncRun

from .. import feedxml
from ..feedcheck import FeedCheckError, count_valid_offers
from ..feedxml import (
    FOOTER,
    NS,  # noqa: F401 - the names of the format, imported from here by others
    SCHEMA_LOCATION,  # noqa: F401
    XML_ILLEGAL,
    XSI,  # noqa: F401
    ElementWriter,
    OutputCheckError,
    escape,
    header,
)
from ..models import OFFERABLE, Brand, FeedBuild, Product, PublishedOffer
from ..rules import has_price
from ..skus import SKU_MAX_LENGTH, sku_is_valid
from .feed_prices import applied_city_prices, offer_city_prices, price_xml
from .legacy_offers import legacy_feed_offers, legacy_store_ids, write_legacy_offers
from .pricing import refresh_below_cost, reprice_products

logger = logging.getLogger(__name__)

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "schemas" / "kaspi_catalog.xsd"


class FeedError(BackofficeError):
    pass


class FeedValidationError(FeedError):
    """Why a build was not published; the messages are staff's (the shop's language).
    `shrink`: held back because the offers on sale fell below the floor (FeedBuild HELD)."""

    def __init__(self, errors: list[str], *, shrink: bool = False):
        self.errors = errors
        self.shrink = shrink
        super().__init__("; ".join(errors[:5]) + (" …" if len(errors) > 5 else ""))


def xml_text(value: str, limit: int | None = None) -> str:
    """`value` without the characters XML cannot carry, white space runs made one space,
    cut to `limit`. A printable value holds no such character and no white space but the
    plain space (the fast path of most names)."""
    text = value or ""
    if not text.isprintable():
        text = " ".join(XML_ILLEGAL.sub("", text).split())
    elif "  " in text or text[:1] == " " or text[-1:] == " ":
        text = " ".join(text.split())
    return text[:limit] if limit else text


def feed_path() -> Path:
    return Path(settings.FEED_DIR) / settings.FEED_FILENAME


# --- Entry points -------------------------------------------------------------------------


def run_feed_build(
    *, triggered_by: str = "command", user=None, force: bool = False, run_id: int | None = None
) -> SyncRun:
    run = SyncRun.objects.get(pk=run_id) if run_id else None
    if run is not None:
        force = bool(run.params.get("force", force))
    return run_job(
        kind=SyncRun.Kind.FEED,
        run=run,
        triggered_by=triggered_by,
        user=user,
        params={"force": force},
        job=lambda run: build_feed(run=run, force=force),
    )


def request_feed_build(*, user=None, triggered_by: str = "user", force: bool = False):
    return enqueue_job(
        kind=SyncRun.Kind.FEED,
        task="catalog.tasks.build_feed_task",
        triggered_by=triggered_by,
        user=user,
        params={"force": force},
    )


def reprice_and_publish(*, triggered_by: str = "reprice") -> dict:
    """Reprice every product; when a price changed, queue a price-list rebuild. The one
    service of the `reprice` command and task."""
    counts = reprice_products()
    counts["feed_queued"] = False
    if counts["changed"]:
        _run, counts["feed_queued"] = request_feed_build(triggered_by=triggered_by)
    return counts


# --- Selection ------------------------------------------------------------------------------


def feed_queryset(now=None):
    """Offerable products, plus products in the last price list that went off sale within
    the grace period (sent with available="no" so Kaspi takes them off sale).

    The published state (PublishedOffer) comes with each row through a LEFT JOIN, so the
    writer sees what changed without a second query; `offerable` is the OFFERABLE filter
    itself, evaluated by the database for each row. A product that went off sale since
    the last build has no `off_since` yet: the writer gives it this build's time.

    The database also works out each row's `price` (the Kaspi price of an offerable
    product, else the last price, for an offer sent off sale) and `stock` (the free units
    of an offerable product in stock, else 0), so fewer columns travel to the writer.
    """
    now = now or timezone.now()
    grace_start = now - timedelta(days=settings.FEED_UNAVAILABLE_GRACE_DAYS)
    off_sale = Q(published_offer__isnull=False, offer_price__gt=1) & (
        Q(published_offer__off_since__isnull=True) | Q(published_offer__off_since__gte=grace_start)
    )
    return (
        Product.objects.annotate(
            offer_price=Coalesce("kaspi_price", "published_offer__price"),
            offerable=ExpressionWrapper(OFFERABLE, output_field=BooleanField()),
            price=Case(When(OFFERABLE, then=F("kaspi_price")), default=F("offer_price")),
            stock=Case(
                When(
                    OFFERABLE & Q(available=True, quantity__gt=F("reserved_quantity")),
                    then=F("quantity") - F("reserved_quantity"),
                ),
                default=Value(0),
                output_field=IntegerField(),
            ),
        )
        .filter(OFFERABLE | off_sale)
        .order_by("sku")
    )


ROW_FIELDS = (
    "pk",
    "sku",
    "name",
    "brand_id",
    "price",
    "stock",
    "preorder_days",
    "offerable",
    "published_offer__available",
    "published_offer__price",
    "published_offer__off_since",
)


def feed_rows(now=None):
    """The rows the writer needs, as tuples in ROW_FIELDS order (no model instances).

    Read with the database's own cursor in chunks (server-side on PostgreSQL, as
    `.iterator()` does) but without Django's per-row converters: the writer only needs
    truth values, integers and text, which every backend returns as such (SQLite: 0/1);
    `off_since` is only tested for None and written back as it came. On PostgreSQL the
    read runs in a transaction (a cursor without HOLD: rows come as they are fetched) and a
    thread fetches the next chunk while the writer writes this one (psycopg2 waits for the
    server without the GIL). The caller must not use the connection until the rows are
    consumed.
    """
    queryset = feed_queryset(now).values_list(*ROW_FIELDS)
    alias = router.db_for_read(Product)
    connection = connections[alias]
    sql, params = queryset.query.get_compiler(alias).as_sql()
    if connection.vendor == "postgresql" and not connection.settings_dict.get(
        "DISABLE_SERVER_SIDE_CURSORS"
    ):
        with transaction.atomic(using=alias), connection.chunked_cursor() as cursor:
            cursor.execute(sql, params)
            yield from _prefetched(cursor.cursor)
        return
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        while rows := cursor.fetchmany(FETCH_ROWS):
            yield from rows


FETCH_ROWS = 5000


def _prefetched(raw_cursor):
    """The rows of `raw_cursor` (a DB-API cursor), fetched by a thread one chunk ahead."""
    chunks: queue.Queue = queue.Queue(maxsize=2)
    stop = threading.Event()

    def fetch() -> None:
        try:
            while not stop.is_set():
                rows = raw_cursor.fetchmany(FETCH_ROWS)
                chunks.put(rows)
                if not rows:
                    return
        except BaseException as exc:  # handed to the reading thread
            chunks.put(exc)

    fetcher = threading.Thread(target=fetch, name="feed-rows", daemon=True)
    fetcher.start()
    try:
        while True:
            rows = chunks.get()
            if isinstance(rows, BaseException):
                raise rows
            if not rows:
                return
            yield from rows
    finally:
        stop.set()
        while fetcher.is_alive():  # the reader stopped early: let the fetcher finish
            try:
                chunks.get_nowait()
            except queue.Empty:
                fetcher.join(0.01)


def brand_names() -> dict[int | None, str]:
    return dict(Brand.objects.values_list("pk", "name"))


# --- Writing --------------------------------------------------------------------------------


@dataclass
class WriteStats:
    offers: int = 0
    available: int = 0
    skipped: list[str] = field(default_factory=list)
    added: int = 0
    legacy: int = 0  # old offers kept as they were (catalog/services/legacy_offers.py)
    price_changed: int = 0
    availability_changed: int = 0
    # The published state to record once the file is out. Offers without a PublishedOffer
    # row: `new_ids`, `new_prices` and `new_available` (1/0; off sale since now when 0),
    # compact, as a first build has 95,000 of them. Offers whose row differs: `changes`, as
    # (product id, available, price, off_since). `kept`: the ids written that have a row.
    new_ids: array = field(default_factory=lambda: array("q"))
    new_prices: array = field(default_factory=lambda: array("q"))
    new_available: bytearray = field(default_factory=bytearray)
    changes: list[tuple] = field(default_factory=list)
    kept: array = field(default_factory=lambda: array("q"))

    def new_rows(self, now) -> Iterator[tuple]:
        for pk, price, available in zip(
            self.new_ids, self.new_prices, self.new_available, strict=True
        ):
            yield pk, bool(available), price, None if available else now

    @property
    def changed(self) -> bool:
        return bool(self.added or self.price_changed or self.availability_changed)


@dataclass(frozen=True)
class StorePlan:
    """Which share of a product's free units each pickup point may sell.

    Kaspi adds up the stock of every point, so the same units published at two points are
    sold twice. Each point gets a percentage (KASPI_STORE_STOCK, e.g. PP1=70,PP2=30; they
    add up to 100); units lost to rounding down go to the first point with a share. By
    default the first point gets everything and the others are published available="no".
    """

    stores: tuple[str, ...]
    shares: tuple[Decimal, ...]
    # The supplier warehouses each point sells from (KASPI_STORE_WAREHOUSES), by point.
    warehouses: tuple[tuple[str, ...], ...] = ()

    @property
    def sells(self) -> tuple[bool, ...]:
        return tuple(share > 0 for share in self.shares)

    def split(self, units: int, warehouse_stock: dict | None = None) -> list[int]:
        """The `units` (free units: stock minus reservations) each point sells.

        With KASPI_STORE_WAREHOUSES and the chosen offer's stock per warehouse, each point
        gets the units of its warehouses, in KASPI_STORE_ID order and never more than
        `units` in all (so reserved units come off the last points). Without (or when the
        mapped warehouses hold none of the units), the shares.
        """
        parts = self.from_warehouses(units, warehouse_stock)
        if parts is not None:
            return parts
        parts = [int(units * share // 100) for share in self.shares]
        if units > sum(parts):
            parts[self.sells.index(True)] += units - sum(parts)
        return parts

    def from_warehouses(self, units: int, warehouse_stock: dict | None) -> list[int] | None:
        """The warehouse split of `split`, or None where the shares apply."""
        if not (self.warehouses and warehouse_stock and units > 0):
            return None
        parts, left = [], units
        for codes in self.warehouses:
            have = sum(_units(warehouse_stock.get(code)) for code in codes)
            parts.append(min(have, left))
            left -= parts[-1]
        return parts if left < units else None


def _units(value) -> int:
    return value if type(value) is int and value > 0 else 0


def store_plan() -> StorePlan:
    stores = tuple(store.strip() for store in settings.KASPI_STORE_IDS if store.strip())
    configured = settings.KASPI_STORE_SHARES
    mapped = settings.KASPI_STORE_WAREHOUSES
    warehouses = tuple(tuple(mapped.get(store, ())) for store in stores) if mapped else ()
    if not configured:
        shares = tuple(Decimal(100 if i == 0 else 0) for i in range(len(stores)))
    else:
        shares = tuple(Decimal(configured.get(store, 0)) for store in stores)
    return StorePlan(stores, shares, warehouses)


def warehouse_stocks() -> dict[int, dict]:
    """Stock per supplier warehouse of the products whose chosen offer reports it, by
    product id (read only when KASPI_STORE_WAREHOUSES is set)."""
    return dict(
        Product.objects.filter(offer__isnull=False)
        .exclude(offer__warehouse_stock={})
        .values_list("pk", "offer__warehouse_stock")
    )


MODEL_MAX_LENGTH = 250  # the XSD's limit; FEED_MODEL_MAX_LENGTH (default 120) is within it
PREORDER_MAX_DAYS = 30
CHUNK_OFFERS = 1000  # offers per write(): whole offers, ~250 KB


def feed_date(now) -> str:
    """The root `date`: the local time the offers last changed, ISO 8601 (25 characters)."""
    return timezone.localtime(now).isoformat(timespec="seconds")


def write_feed(
    stream,
    rows,
    *,
    now=None,
    stats: WriteStats | None = None,
    date: str | None = None,
    legacy=(),
    brands: dict | None = None,
    warehouse_stock: dict | None = None,
) -> WriteStats:
    """Write the price list for `rows` (tuples from feed_rows()) to the binary `stream`,
    then the `legacy` old offers (LegacyOffer rows from legacy_feed_offers()).

    The first `write()` is the declaration and root start tag (with `date`, default `now`);
    the rest come in chunks of whole offers. Every value is cleaned and checked before it
    is written (the rules of the XSD, catalog/schemas/kaspi_catalog.xsd): a row that fails
    is skipped and reported in `stats.skipped`, never written. Text goes through the one
    escaping function (catalog/feedxml.py), proven equal to lxml's output.

    Offerable rows (the database's OFFERABLE) get available="yes" (with stock or a capped
    pre-order), the rest available="no", stock 0. Each written offer's state is compared
    with its published one: `stats.changes` lists what to record (see WriteStats).
    With KASPI_STORE_WAREHOUSES, the points' units follow the chosen offers' stock per
    warehouse (`warehouse_stock`, by product id; default read by warehouse_stocks()).
    """
    stats = stats or WriteStats()
    now = now or timezone.now()
    company = xml_text(settings.KASPI_COMPANY_NAME)
    merchant = xml_text(settings.KASPI_MERCHANT_ID)
    if not company or not merchant:
        raise FeedValidationError([_("KASPI_COMPANY_NAME and KASPI_MERCHANT_ID must be set")])
    plan = store_plan()
    stores = plan.stores
    bad_stores = [s for s in stores if XML_ILLEGAL.search(s) or "\n" in s or "\r" in s]
    if not stores or bad_stores:
        raise FeedValidationError(
            [_("KASPI_STORE_ID holds no usable pickup point: %(stores)s") % {"stores": stores}]
        )
    store_ids = [escape(store, attribute=True) for store in stores]
    sells = plan.sells
    by_warehouse = {}
    if plan.warehouses:
        by_warehouse = warehouse_stocks() if warehouse_stock is None else warehouse_stock
    # One point selling everything (the default): no split per offer.
    single = len(stores) == 1 and sells[0] and not by_warehouse
    yes_head = f'<availability available="yes" storeId="{store_ids[0]}" stockCount="'
    no_single = (
        f'<availability available="no" storeId="{store_ids[0]}" stockCount="0"></availability>'
    )
    model_limit = min(settings.FEED_MODEL_MAX_LENGTH, MODEL_MAX_LENGTH)
    preorder_cap = min(settings.FEED_PREORDER_MAX_DAYS, PREORDER_MAX_DAYS)
    placeholder = xml_text(settings.FEED_BRAND_PLACEHOLDER, 255)
    names = brand_names() if brands is None else brands
    brand_xml: dict = {}
    city_prices = applied_city_prices()
    # Each SKU is written once (the structural check folded into the writer): a repeated
    # SKU is skipped, whatever order the rows come in; an old offer whose SKU a product
    # has is skipped too (_write_legacy).
    written: set[str] = set()
    written_sku = written.add
    skipped = stats.skipped
    keep = stats.kept.append
    record = stats.changes.append
    new_id, new_price, new_available = (
        stats.new_ids.append,
        stats.new_prices.append,
        stats.new_available.append,
    )
    offers = available_count = added = price_changed = availability_changed = 0
    stream.write(header(date or feed_date(now)).encode())
    parts = [
        f"<company>{escape(company)}</company><merchantid>{escape(merchant)}</merchantid><offers>"
    ]
    append = parts.append
    for (
        pk,
        sku,
        name,
        brand_id,
        price,
        stock,
        preorder_days,
        offerable,
        was_available,
        was_price,
        off_since,
    ) in rows:
        # The XSD's SKU: no outer spaces, no line breaks, 1-64 characters (sku_is_valid).
        # Latin letters and digits (most SKUs) pass as they are and need no escaping.
        if sku.isalnum() and sku.isascii() and len(sku) <= SKU_MAX_LENGTH:
            sku_xml = sku
        elif sku_is_valid(sku) and "\n" not in sku and "\r" not in sku:
            sku_xml = escape(sku, attribute=True)
        else:
            skipped.append(sku or f"#{pk}")
            continue
        if sku in written:
            skipped.append(sku)
            continue
        model = xml_text(name, model_limit)
        if not model:
            skipped.append(sku)
            continue
        # `price` and `stock` come worked out by the query (feed_queryset).
        if offerable:
            preorder = 0 if stock > 0 else min(preorder_days, preorder_cap)
            applied = city_prices.get(pk)
            prices = offer_city_prices(price, applied) if applied else None
        else:
            stock, preorder, prices = 0, 0, None
        if (
            type(price) is not int
            or not has_price(price)
            or stock < 0
            or not 0 <= preorder <= PREORDER_MAX_DAYS
            or (prices and not all(type(p) is int and has_price(p) for p in prices.values()))
        ):
            skipped.append(sku)
            continue
        written_sku(sku)
        offers += 1
        if offerable:
            available_count += 1
        if was_available is None:
            added += 1
            new_id(pk)
            new_price(price)
            new_available(1 if offerable else 0)
        else:
            keep(pk)
            if was_price != price:
                price_changed += 1
            if offerable:
                if not was_available:
                    availability_changed += 1
                if not was_available or was_price != price or off_since is not None:
                    record((pk, True, price, None))
            else:
                if was_available:
                    availability_changed += 1
                if was_available or was_price != price or off_since is None:
                    record((pk, False, price, now if off_since is None else off_since))
        brand = brand_xml.get(brand_id)
        if brand is None:
            brand = xml_text(names.get(brand_id) or "", 255) or placeholder
            brand = brand_xml[brand_id] = f"<brand>{escape(brand)}</brand>" if brand else ""
        if single:
            if offerable:
                points = (
                    f'{yes_head}{stock}" preOrder="{preorder}"></availability>'
                    if preorder
                    else f'{yes_head}{stock}"></availability>'
                )
            else:
                points = no_single
        else:
            points = ""
            units = plan.split(stock, by_warehouse.get(pk)) if by_warehouse else plan.split(stock)
            for store, share, sell in zip(store_ids, units, sells, strict=True):
                # A point sells only the units it was given, so no unit is promised at two
                # points; a pre-order goes to the points that have a share.
                if offerable and (share > 0 or bool(preorder and sell)):
                    pre = f' preOrder="{preorder}"' if preorder else ""
                    points += (
                        f'<availability available="yes" storeId="{store}" '
                        f'stockCount="{share}"{pre}></availability>'
                    )
                else:
                    points += (
                        f'<availability available="no" storeId="{store}" '
                        'stockCount="0"></availability>'
                    )
        append(
            f'<offer sku="{sku_xml}"><model>{escape(model)}</model>{brand}'
            f"<availabilities>{points}</availabilities>"
            f"{price_xml(price, prices) if prices else f'<price>{price}</price>'}</offer>"
        )
        if len(parts) >= CHUNK_OFFERS:
            stream.write("".join(parts).encode())
            parts.clear()
    stats.offers += offers
    stats.available += available_count
    stats.added += added
    stats.price_changed += price_changed
    stats.availability_changed += availability_changed
    stats.legacy = _write_legacy(parts, legacy, written, skipped, preorder_cap)
    append(FOOTER)
    stream.write("".join(parts).encode())
    return stats


def _write_legacy(parts: list[str], legacy, seen: set, skipped: list, preorder_cap: int) -> int:
    """The kept old offers, element by element through the same escaping; each checked
    first (SKU once, pickup points, stock), like the product rows."""
    writer = ElementWriter(parts)
    written = 0
    for offer in legacy:
        points = offer.availabilities or []
        usable = all(
            isinstance(point.get("storeId"), str)
            and point["storeId"].strip()
            and not XML_ILLEGAL.search(point["storeId"])
            and "\n" not in point["storeId"]
            and "\r" not in point["storeId"]
            and int(point.get("stockCount") or 0) >= 0
            for point in points
        )
        if offer.sku in seen or not points or not usable:
            skipped.append(offer.sku)
            continue
        seen.add(offer.sku)
        written += write_legacy_offers(
            writer.element, writer.write, [offer], ns=NS, text=xml_text, preorder_cap=preorder_cap
        )
    return written


# --- Validation -----------------------------------------------------------------------------


def feed_schema() -> etree.XMLSchema:
    """Our XSD narrowed to the configured store ids, plus the points of old offers kept
    from the shop's previous price list (cached per store list)."""
    stores = tuple(store.strip() for store in settings.KASPI_STORE_IDS if store.strip())
    stores += tuple(store for store in legacy_store_ids() if store not in stores)
    key = stores
    if _schema_cache.get("key") != key:
        doc = etree.parse(str(SCHEMA_PATH))
        xs = "{http://www.w3.org/2001/XMLSchema}"
        for simple in doc.getroot().iterfind(f"{xs}simpleType"):
            restriction = simple.find(f"{xs}restriction")
            if simple.get("name") == "storeId":
                for child in list(restriction):
                    restriction.remove(child)
                for store in stores:
                    etree.SubElement(restriction, f"{xs}enumeration", value=store)
        _schema_cache.update(key=key, schema=etree.XMLSchema(doc), text=etree.tostring(doc))
    return _schema_cache["schema"]


_schema_cache: dict = {}


def validate_feed_file(path: Path) -> dict:
    """Stream-parse `path` against the narrowed XSD; raise FeedValidationError on errors.

    One libxml2 pass checks the structure, SKU pattern and uniqueness, prices above 1,
    known store ids, model length and pre-order range; memory stays flat.
    """
    try:
        offers = count_valid_offers(str(path), feed_schema())
    except (etree.XMLSyntaxError, FeedCheckError) as exc:
        raise FeedValidationError([_not_valid(exc)]) from None
    return _checked(offers)


def _checked(offers: int) -> dict:
    if offers == 0:
        raise FeedValidationError([_("the price list has no offers")])
    return {"offers": offers}


class CheckedSink:
    """The writer's stream. Each write() is handed to a worker thread that writes it to the
    file, to the digests, to the gzip copy (if any) and to the structural check, so the
    writer goes on while the bytes are stored, hashed and compressed (zlib, hashing and
    file writes release the GIL). The first write is the root start tag (with `date`):
    `body` hashes everything after it, to tell whether the offers changed. `close()` waits
    for the worker (and the check) and returns the offer count found in the written bytes;
    an error of the worker (a full disk) is raised by the next write() or close(), a
    refusal of the check as OutputCheckError by close().

    The structural check (FEED_OUTPUT_CHECK, docs/kaspi-price-list.md §5.5):
    * "writer" (default): folded into the writer, which escapes every value through the
      one tested function, refuses what XML cannot carry and writes each SKU once; the
      worker counts the offer start tags in the bytes, for build_feed to compare with the
      writer's count. Costs ~10 ms per 100,000 offers.
    * "expat": the bytes also go through a pipe to a child process (feedxml.OutputCheck)
      that parses them (well-formed, namespaces bound, each SKU once, offers counted), on
      the other core; ~0.2 s of CPU per 100,000 offers.
    """

    check_rss_mb: float | None = None  # the last check process's peak, for the benchmark
    OFFER_START = b"<offer "

    def __init__(self, file, gz_file=None, *, check: str | None = None):
        self.file = file
        self.gz = (
            gzip.GzipFile(fileobj=gz_file, mode="wb", mtime=0, compresslevel=1) if gz_file else None
        )
        self.full = hashlib.sha256()
        self.body = hashlib.sha256()
        self.header_size = None
        self.size = 0
        self.error: BaseException | None = None
        self.offer_tags = 0
        self._tail = b""
        self._head = b""  # the first bytes written, and the last: the file's two ends
        self._end = b""
        self._check = None
        if (check or settings.FEED_OUTPUT_CHECK) == "expat":
            self._check = subprocess.Popen(  # noqa: S603 - our own module, fixed arguments
                [sys.executable, "-I", "-S", feedxml.__file__],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
        else:
            CheckedSink.check_rss_mb = None
        self._queue: queue.Queue = queue.Queue(maxsize=8)
        self._worker = threading.Thread(target=self._work, name="feed-sink", daemon=True)
        self._worker.start()

    def write(self, data: bytes) -> int:
        if self.error is not None:
            raise self.error
        if self.header_size is None:
            self.header_size = len(data)
        self.size += len(data)
        self._queue.put(data)
        return len(data)

    def close(self) -> int:
        self._join()
        if self.error is not None:
            if self._check is not None:
                self._check.kill()
                self._check.wait()
            raise self.error
        if self._check is None:
            self._check_ends()
            return self.offer_tags
        out, err = self._check.communicate(timeout=CHECK_TIMEOUT)
        try:
            answer = json.loads(out)
        except ValueError:
            raise OutputCheckError(
                f"the check process failed ({self._check.returncode}): "
                f"{err.decode('utf-8', 'replace')[-300:]}"
            ) from None
        CheckedSink.check_rss_mb = answer.get("peak_rss_mb")
        if "error" in answer:
            raise OutputCheckError(answer["error"])
        if answer["offers"] != self.offer_tags:
            raise OutputCheckError(
                f"the check found {answer['offers']} offers, the bytes hold {self.offer_tags}"
            )
        return answer["offers"]

    def abort(self) -> None:
        """Stop the worker and the check after a failed write; their errors do not matter."""
        self._join()
        if self._check is not None:
            self._check.kill()
            self._check.communicate()

    def _join(self) -> None:
        if self._worker.is_alive():
            self._queue.put(None)
            self._worker.join()

    HEAD = feedxml.HEAD.encode()
    END = FOOTER.encode()

    def _check_ends(self) -> None:
        """The file begins with the declaration and our root start tag and ends with the
        closing tags: a writer stopped or gone wrong mid-way is not published."""
        if not self._head.startswith(self.HEAD):
            raise OutputCheckError("the file does not start with the price list's root element")
        if self._end != self.END:
            raise OutputCheckError("the file does not end with </offers></kaspi_catalog>")

    def _count_offers(self, data: bytes) -> None:
        """Offer start tags in the bytes; a tag cut between two writes is counted once
        (`<` inside text and attributes is always escaped, so each is a tag)."""
        keep = len(self.OFFER_START) - 1
        joined = self._tail + data[:keep]
        self.offer_tags += joined.count(self.OFFER_START) + data.count(self.OFFER_START)
        # A tag wholly inside `data[:keep]` cannot be (it is shorter than the tag), so the
        # two counts never see the same tag.
        self._tail = data[-keep:] if len(data) >= keep else (self._tail + data)[-keep:]

    def _work(self) -> None:
        first = True
        check = self._check
        pipe = check.stdin if check is not None else None
        while (data := self._queue.get()) is not None:
            if self.error is not None:
                continue  # drain: the writer stops at its next write()
            try:
                self.file.write(data)
                self.full.update(data)
                if first:
                    first = False
                else:
                    self.body.update(data)
                self._count_offers(data)
                if len(self._head) < len(self.HEAD):
                    self._head += data[: len(self.HEAD) - len(self._head)]
                self._end = (self._end + data[-len(self.END) :])[-len(self.END) :]
                if self.gz is not None:
                    self.gz.write(data)
                if pipe is not None:
                    try:
                        pipe.write(data)
                    except BrokenPipeError:
                        pipe = None  # the check stopped early: close() reads why
            except BaseException as exc:  # handed to the writer's thread
                self.error = exc
        if check is not None:
            try:
                check.stdin.close()
            except BrokenPipeError:
                pass
            check.stdin = None  # closed: communicate() only reads the answer
        try:
            if self.error is None and self.gz is not None:
                self.gz.close()
        except BaseException as exc:
            self.error = exc


CHECK_TIMEOUT = 120  # seconds the check may take after the last byte (it takes < 0.1)


_DATE = re.compile(rb' date="([^"]*)"')


def _published_twin(target: Path, sink: CheckedSink) -> tuple[str, str] | None:
    """(date, sha256) of the published file when everything after its root start tag is
    byte for byte what `sink` just wrote, else None."""
    try:
        handle = open(target, "rb")
    except FileNotFoundError:
        return None
    with handle:
        found = _DATE.search(handle.read(1024))
        if found is None:
            return None
        date = found.group(1).decode("utf-8", "replace")
        head = header(date).encode()
        body_size = sink.size - sink.header_size
        if os.fstat(handle.fileno()).st_size != len(head) + body_size:
            return None
        handle.seek(0)
        if handle.read(len(head)) != head:
            return None
        known = _known_digests(target, os.fstat(handle.fileno()))
        if known is not None:  # the file is the one we published: no need to read it
            body_digest, full_digest = known
            return (date, full_digest) if body_digest == sink.body.hexdigest() else None
        full, body = hashlib.sha256(head), hashlib.sha256()
        for block in iter(lambda: handle.read(1 << 20), b""):
            full.update(block)
            body.update(block)
    if body.digest() != sink.body.digest():
        return None
    return date, full.hexdigest()


def _digests_path(target: Path) -> Path:
    return target.with_name(f".{target.name}.digests")


def _remember_digests(target: Path, sink: CheckedSink, full: str | None = None) -> None:
    """Note the body and full sha256 of the file just published, with its inode, size
    and mtime: the next build compares digests instead of reading 25 MB again. A note that
    does not match the file on disk (replaced, touched) is ignored."""
    try:
        stat = target.stat()
        note = {
            "ino": stat.st_ino,
            "size": stat.st_size,
            "mtime_ns": stat.st_mtime_ns,
            "body": sink.body.hexdigest(),
            "full": full or sink.full.hexdigest(),
        }
        fd, tmp_name = tempfile.mkstemp(prefix=".kaspi-", suffix=".digests.tmp", dir=target.parent)
        with os.fdopen(fd, "w") as handle:
            json.dump(note, handle)
        os.replace(tmp_name, _digests_path(target))
    except OSError as exc:  # only a shortcut: the next build reads the file instead
        logger.warning("price list digests not noted: %s", exc)


def _known_digests(target: Path, stat: os.stat_result) -> tuple[str, str] | None:
    try:
        note = json.loads(_digests_path(target).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(note, dict) or [note.get("ino"), note.get("size"), note.get("mtime_ns")] != [
        stat.st_ino,
        stat.st_size,
        stat.st_mtime_ns,
    ]:
        return None
    body, full = note.get("body"), note.get("full")
    return (body, full) if isinstance(body, str) and isinstance(full, str) else None


# --- Build and publish ------------------------------------------------------------------


@in_shop_language
def build_feed(
    *, run: SyncRun | None = None, force: bool = False, now=None, timings: dict | None = None
) -> FeedBuild:
    """Build, validate and publish the price list; keep the last good file on any failure.
    What it tells staff (errors, reasons) reads in the shop's language.

    `timings`, when given, receives the seconds each phase took (for bench/build_feed.py).
    """
    now = now or timezone.now()
    clock = _Phases(timings)
    build = FeedBuild.objects.create(run=run, forced=force, started_at=now)
    target = feed_path()
    target.parent.mkdir(parents=True, exist_ok=True)
    gz_target = target.with_name(target.name + ".gz")
    tmp_name = gz_tmp = None
    try:
        refresh_below_cost()
        legacy = legacy_feed_offers(now)
        clock("prepare")
        stats = WriteStats()
        fd, tmp_name = tempfile.mkstemp(prefix=".kaspi-", suffix=".xml.tmp", dir=target.parent)
        gz_fd, gz_tmp = tempfile.mkstemp(prefix=".kaspi-", suffix=".gz.tmp", dir=target.parent)
        with os.fdopen(fd, "wb") as stream, os.fdopen(gz_fd, "wb") as gz_stream:
            sink = CheckedSink(stream, gz_stream)
            try:
                write_feed(sink, feed_rows(now), now=now, stats=stats, legacy=legacy)
            except BaseException:
                sink.abort()
                raise
            clock("read + write")
            try:
                offers = sink.close()
            except OutputCheckError as exc:
                raise FeedValidationError([_not_valid(exc)]) from None
            clock("finish check + gzip")
            stream.flush()
            if offers != stats.offers + stats.legacy:
                reason = _("the file holds %(found)d offers, the writer counted %(written)d") % {
                    "found": offers,
                    "written": stats.offers + stats.legacy,
                }
                raise FeedValidationError([_not_valid(reason)])
            checked = _checked(offers)
            if run:
                heartbeat(run, done=stats.offers)
            _check_shrink(stats.available, force=force)
            twin = _published_twin(target, sink)
            if twin is None:
                os.fsync(stream.fileno())  # only a file to publish goes to the disk
        clock("compare + fsync")
        size = sink.size
        if twin is not None:
            # Same offers as the published file: publish nothing, so its bytes, mtime,
            # ETag, Last-Modified and `date` stay; Kaspi need not download it again.
            published_date, digest = twin
            os.unlink(tmp_name)
            tmp_name = None
            if _known_digests(target, target.stat()) is None:  # read in full this time
                _remember_digests(target, sink, full=digest)
            logger.info("price list unchanged since %s: nothing published", published_date)
        else:
            digest = sink.full.hexdigest()
            os.chmod(tmp_name, 0o644)
            os.replace(tmp_name, target)
            tmp_name = None
            _fsync_dir(target.parent)
            # The gzip copy of these very bytes, as fresh as the file (views._fresh_gzip).
            os.chmod(gz_tmp, 0o644)
            mtime = target.stat().st_mtime_ns
            os.utime(gz_tmp, ns=(mtime, mtime))
            os.replace(gz_tmp, gz_target)
            gz_tmp = None
            _remember_digests(target, sink)
        if _gzip_stale(target):
            _write_gzip(target)
        clock("publish")
        removed = _record_published(stats, now)
        clock("record state")
    except FeedValidationError as exc:
        build.status = FeedBuild.Status.HELD if exc.shrink else FeedBuild.Status.FAILED
        build.errors = exc.errors
        _finish(build, run, failed=True)
        raise
    except Exception as exc:
        build.status = FeedBuild.Status.FAILED
        build.errors = [f"{type(exc).__name__}: {exc}"]
        _finish(build, run, failed=True)
        raise
    finally:
        for name in (tmp_name, gz_tmp):
            if name and os.path.exists(name):
                os.unlink(name)
    build.status = FeedBuild.Status.PUBLISHED
    build.offers_total = checked["offers"]
    build.offers_available = stats.available
    build.size_bytes = size
    build.sha256 = digest
    build.file_name = target.name
    build.diff = {
        "added": stats.added,
        "removed": removed,
        "price_changed": stats.price_changed,
        "availability_changed": stats.availability_changed,
        "skipped_bad_sku": len(stats.skipped),
        "legacy_offers": stats.legacy,
        "unchanged": twin is not None,
    }
    if stats.skipped:
        build.errors = [
            _("skipped offers with a bad SKU or no name, price, stock or pre-order days: %(skus)s")
            % {"skus": ", ".join(stats.skipped[:20])}
        ]
    _finish(build, run, failed=False)
    clock("finish")
    logger.info(
        "price list %s: %d offers (%d available), %d bytes, sha256 %s",
        "unchanged, the published file kept" if twin is not None else "published",
        build.offers_total,
        build.offers_available,
        size,
        digest[:12],
    )
    return build


class _Phases:
    """Seconds per phase into `timings` (a no-op without it)."""

    def __init__(self, timings: dict | None):
        self.timings = timings
        self.last = time.perf_counter()

    def __call__(self, name: str) -> None:
        if self.timings is not None:
            now = time.perf_counter()
            self.timings[name] = self.timings.get(name, 0.0) + now - self.last
            self.last = now


def _check_shrink(available: int, *, force: bool) -> None:
    """Hold the file back when the offers on sale (available="yes") fell below the floor.

    Offers sent with available="no" do not count: a file that keeps every SKU but takes
    most of them off sale is the shrink that matters.
    """
    previous = (
        FeedBuild.objects.filter(status=FeedBuild.Status.PUBLISHED).order_by("-started_at").first()
    )
    if force or previous is None or not previous.offers_available:
        return
    floor = previous.offers_available * settings.FEED_SHRINK_FLOOR
    if available < floor:
        message = _(
            "offer count fell from %(before)d to %(now)d offers on sale (below %(floor)s "
            "of the last published file); held back: check the catalog sync, or rebuild "
            "with force"
        ) % {
            "before": previous.offers_available,
            "now": available,
            "floor": f"{settings.FEED_SHRINK_FLOOR:.0%}",
        }
        raise FeedValidationError([message], shrink=True)


def _not_valid(reason) -> str:
    """ "Not a valid price list: …" (the reason itself may be the parser's own words)."""
    return _("not a valid price list: %(reason)s") % {"reason": reason}


def _digest(path: Path) -> tuple[str, int]:
    sha = hashlib.sha256()
    size = 0
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            sha.update(block)
            size += len(block)
    return sha.hexdigest(), size


def _gzip_stale(target: Path) -> bool:
    try:
        return target.with_name(target.name + ".gz").stat().st_mtime_ns < target.stat().st_mtime_ns
    except FileNotFoundError:
        return True


def _write_gzip(target: Path) -> None:
    """A pre-compressed copy for clients that accept gzip, published the same atomic way."""
    fd, tmp_name = tempfile.mkstemp(prefix=".kaspi-", suffix=".gz.tmp", dir=target.parent)
    try:
        with (
            os.fdopen(fd, "wb") as raw,
            gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, compresslevel=1) as gz,
        ):
            with open(target, "rb") as source:
                shutil.copyfileobj(source, gz, 1 << 20)
        os.chmod(tmp_name, 0o644)
        os.replace(tmp_name, target.with_name(target.name + ".gz"))
    except OSError:
        logger.warning("could not write the gzip copy of the price list", exc_info=True)
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _record_published(stats: WriteStats, now) -> int:
    """Remember what the published file says about each product (for diffs and the grace
    period): write the rows whose state changed, forget the products that left the file.
    Returns how many left it. An unchanged catalog writes nothing."""
    connection = connections[router.db_for_write(PublishedOffer)]
    with transaction.atomic(using=connection.alias):
        gone: list[int] = []
        if PublishedOffer.objects.count() != len(stats.kept):
            # Some product left the file (or was skipped): find which, by id.
            written = set(stats.kept)
            gone = [
                pk
                for pk in PublishedOffer.objects.values_list("pk", flat=True).iterator(10_000)
                if pk not in written
            ]
            for start in range(0, len(gone), 5000):
                PublishedOffer.objects.filter(pk__in=gone[start : start + 5000]).delete()
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                _copy_published(cursor, stats, now)
            else:
                _upsert_published(connection, cursor, [*stats.new_rows(now), *stats.changes])
    return len(gone)


_PUBLISHED = PublishedOffer._meta.db_table
_COLUMNS = "product_id, available, price, off_since"


def _copy_published(cursor, stats: WriteStats, now) -> None:
    """PostgreSQL: the new rows by COPY straight into the table (a first build: 95,000
    rows), the changed ones by COPY into a temporary table and one UPDATE. If a row came
    meanwhile (the cut-over marks products it adopts), the new ones go the upsert way."""
    changes = stats.changes
    if stats.new_ids:
        try:
            with transaction.atomic(savepoint=True):
                cursor.copy_expert(
                    f"COPY {_PUBLISHED} ({_COLUMNS}) FROM STDIN", _copy_text(stats.new_rows(now))
                )
        except IntegrityError:
            changes = [*changes, *stats.new_rows(now)]
    if not changes:
        return
    cursor.execute(
        "CREATE TEMPORARY TABLE feed_published_changes "
        "(product_id bigint, available boolean, price bigint, off_since timestamptz) "
        "ON COMMIT DROP"
    )
    cursor.copy_expert("COPY feed_published_changes FROM STDIN", _copy_text(changes))
    cursor.execute(
        f"INSERT INTO {_PUBLISHED} ({_COLUMNS}) "  # noqa: S608 - our table's name
        f"SELECT {_COLUMNS} FROM feed_published_changes "
        "ON CONFLICT (product_id) DO UPDATE SET available = EXCLUDED.available, "
        "price = EXCLUDED.price, off_since = EXCLUDED.off_since"
    )
    cursor.execute("DROP TABLE feed_published_changes")


def _copy_text(rows) -> io.StringIO:
    null = "\\N"
    return io.StringIO(
        "".join(
            f"{pk}\t{'t' if available else 'f'}\t{price}\t"
            f"{off.isoformat() if off is not None else null}\n"
            for pk, available, price, off in rows
        )
    )


def _upsert_published(connection, cursor, rows: list[tuple]) -> None:
    """Other databases (SQLite): one upsert statement run for every row."""
    if not rows:
        return
    adapt = connection.ops.adapt_datetimefield_value
    cursor.executemany(
        f"INSERT INTO {_PUBLISHED} ({_COLUMNS}) VALUES (%s, %s, %s, %s) "  # noqa: S608
        "ON CONFLICT (product_id) DO UPDATE SET available = excluded.available, "
        "price = excluded.price, off_since = excluded.off_since",
        # An off_since read back from SQLite is its stored text: written back as it was.
        [
            (pk, available, price, off if isinstance(off, str) else adapt(off))
            for pk, available, price, off in rows
        ],
    )


def _finish(build: FeedBuild, run: SyncRun | None, *, failed: bool) -> None:
    build.finished_at = timezone.now()
    build.save()
    if run is not None:
        run.counts.update(
            {
                "offers": build.offers_total,
                "available": build.offers_available,
                "bytes": build.size_bytes,
                **build.diff,
            }
        )
        run.params["feed_build_id"] = build.pk
