"""Kaspi XML price list: build, validate, publish (docs/kaspi-price-list.md).

The file is written by a string writer (catalog/feedxml.py: one escaping function proven
equal to lxml's output) straight from a database cursor, so memory stays flat whatever the
catalog size. Every value is checked before it is written (the XSD's rules); the bytes are
checked as they are written (expat: well-formed; offers counted, SKUs unique). The file is
published with fsync + `os.replace`, so Kaspi always downloads either the previous good
file or the new one, never a half-written or empty one. When the offers are byte for byte
those of the published file, nothing is published: same file, same ETag, same `date`
(the time the offers last changed, §5.8). The XSD pass (`validate_feed_file`) stays for
tests and checks by hand: tests/catalog/test_feed_writer.py.
"""

import gzip
import hashlib
import logging
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from django.conf import settings
from django.db import connections, router, transaction
from django.db.models import F, Q
from django.db.models.functions import Coalesce
from django.utils import timezone
from lxml import etree

from backoffice.core.exceptions import BackofficeError
from backoffice.core.runs import enqueue_job, heartbeat, run_job
from backoffice.models import SyncRun

from ..feedcheck import FeedCheckError, count_valid_offers
from ..feedxml import (
    FOOTER,
    NS,  # noqa: F401 - the names of the format, imported from here by others
    SCHEMA_LOCATION,  # noqa: F401
    XML_ILLEGAL,
    XSI,  # noqa: F401
    ElementWriter,
    OutputCheck,
    OutputCheckError,
    escape,
    header,
)
from ..models import OFFERABLE, FeedBuild, Product
from ..rules import has_price, is_offerable
from ..skus import sku_is_valid
from .feed_prices import applied_city_prices, offer_city_prices, price_xml
from .legacy_offers import legacy_feed_offers, legacy_store_ids, write_legacy_offers
from .pricing import refresh_below_cost, reprice_products

logger = logging.getLogger(__name__)

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "schemas" / "kaspi_catalog.xsd"


class FeedError(BackofficeError):
    pass


class FeedValidationError(FeedError):
    def __init__(self, errors: list[str]):
        self.errors = errors
        super().__init__("; ".join(errors[:5]) + (" …" if len(errors) > 5 else ""))


def xml_text(value: str, limit: int | None = None) -> str:
    text = XML_ILLEGAL.sub("", value or "")
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


def refresh_off_sale_marks(now=None) -> None:
    """Record when each product stopped being offerable (for the grace period)."""
    now = now or timezone.now()
    Product.objects.filter(~OFFERABLE, offer_off_since__isnull=True).update(offer_off_since=now)
    Product.objects.filter(OFFERABLE, offer_off_since__isnull=False).update(offer_off_since=None)


def feed_queryset(now=None):
    """Offerable products, plus products in the last price list that went off sale within
    the grace period (sent with available="no" so Kaspi takes them off sale)."""
    now = now or timezone.now()
    grace_start = now - timedelta(days=settings.FEED_UNAVAILABLE_GRACE_DAYS)
    off_sale = Q(
        feed_available__isnull=False,
        offer_off_since__gte=grace_start,
        offer_price__gt=1,
    )
    return (
        Product.objects.annotate(offer_price=Coalesce("kaspi_price", "feed_price"))
        .filter(OFFERABLE | off_sale)
        .order_by("sku")
    )


ROW_FIELDS = (
    "pk",
    "sku",
    "name",
    "brand__name",
    "quantity",
    "reserved_quantity",
    "available",
    "preorder_days",
    "listed",
    "kaspi_enabled",
    "price_on_request",
    "kaspi_price",
    "feed_price",
    "feed_available",
    "offer_price",
    "below_cost",
)


def feed_rows(now=None):
    """The rows the writer needs, as tuples in ROW_FIELDS order (no model instances).

    Read with the database's own cursor in chunks (server-side on PostgreSQL, as
    `.iterator()` does) but without Django's per-row converters: the writer only needs
    truth values and integers, which every backend returns as such (SQLite: 0/1).
    """
    queryset = feed_queryset(now).values_list(*ROW_FIELDS)
    alias = router.db_for_read(Product)
    connection = connections[alias]
    sql, params = queryset.query.get_compiler(alias).as_sql()
    chunked = not connection.settings_dict.get("DISABLE_SERVER_SIDE_CURSORS")
    with connection.chunked_cursor() if chunked else connection.cursor() as cursor:
        cursor.execute(sql, params)
        while rows := cursor.fetchmany(5000):
            yield from rows


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

    @property
    def sells(self) -> tuple[bool, ...]:
        return tuple(share > 0 for share in self.shares)

    def split(self, units: int) -> list[int]:
        parts = [int(units * share // 100) for share in self.shares]
        if units > sum(parts):
            parts[self.sells.index(True)] += units - sum(parts)
        return parts


def store_plan() -> StorePlan:
    stores = tuple(store.strip() for store in settings.KASPI_STORE_IDS if store.strip())
    configured = settings.KASPI_STORE_SHARES
    if not configured:
        return StorePlan(stores, tuple(Decimal(100 if i == 0 else 0) for i in range(len(stores))))
    return StorePlan(stores, tuple(Decimal(configured.get(store, 0)) for store in stores))


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
) -> WriteStats:
    """Write the price list for `rows` (tuples from feed_rows()) to the binary `stream`,
    then the `legacy` old offers (LegacyOffer rows from legacy_feed_offers()).

    The first `write()` is the declaration and root start tag (with `date`, default `now`);
    the rest come in chunks of whole offers. Every value is cleaned and checked before it
    is written (the rules of the XSD, catalog/schemas/kaspi_catalog.xsd): a row that fails
    is skipped and reported in `stats.skipped`, never written. Text goes through the one
    escaping function (catalog/feedxml.py), proven equal to lxml's output.

    The OFFERABLE query's twin is evaluated per row here: offerable rows get
    available="yes" (with stock or a capped pre-order), the rest available="no", stock 0.
    """
    stats = stats or WriteStats()
    now = now or timezone.now()
    company = xml_text(settings.KASPI_COMPANY_NAME)
    merchant = xml_text(settings.KASPI_MERCHANT_ID)
    if not company or not merchant:
        raise FeedValidationError(["KASPI_COMPANY_NAME and KASPI_MERCHANT_ID must be set"])
    plan = store_plan()
    stores = plan.stores
    bad_stores = [s for s in stores if XML_ILLEGAL.search(s) or "\n" in s or "\r" in s]
    if not stores or bad_stores:
        raise FeedValidationError([f"KASPI_STORE_ID holds no usable pickup point: {stores!r}"])
    store_ids = [escape(store, attribute=True) for store in stores]
    sells = plan.sells
    # One point selling everything (the default): no split per offer.
    single = len(stores) == 1 and sells[0]
    model_limit = min(settings.FEED_MODEL_MAX_LENGTH, MODEL_MAX_LENGTH)
    preorder_cap = min(settings.FEED_PREORDER_MAX_DAYS, PREORDER_MAX_DAYS)
    placeholder = xml_text(settings.FEED_BRAND_PLACEHOLDER, 255)
    brands: dict[str | None, str] = {}
    city_prices = applied_city_prices()
    seen: set[str] = set()
    skipped = stats.skipped
    stream.write(header(date or feed_date(now)).encode())
    parts = [
        f"<company>{escape(company)}</company><merchantid>{escape(merchant)}</merchantid><offers>"
    ]
    append = parts.append
    for (
        pk,
        sku,
        name,
        brand_name,
        quantity,
        reserved,
        available,
        preorder_days,
        listed,
        enabled,
        on_request,
        kaspi_price,
        feed_price,
        feed_available,
        offer_price,
        below_cost,
    ) in rows:
        model = xml_text(name, model_limit)
        # The XSD's SKU: no outer spaces, no line breaks, 1-64 characters (sku_is_valid).
        if not sku_is_valid(sku) or "\n" in sku or "\r" in sku or sku in seen:
            skipped.append(sku or f"#{pk}")
            continue
        if not model:
            skipped.append(sku)
            continue
        free = quantity - reserved
        offerable = is_offerable(
            listed=listed,
            kaspi_enabled=enabled,
            price_on_request=on_request,
            kaspi_price=kaspi_price,
            below_cost=below_cost,
            available=available,
            quantity=quantity,
            reserved_quantity=reserved,
            preorder_days=preorder_days,
        )
        if offerable:
            price = kaspi_price
            in_stock = available and free > 0
            stock = free if in_stock else 0
            preorder = 0 if in_stock else min(preorder_days, preorder_cap)
        else:
            price, stock, preorder = offer_price, 0, 0
        applied = city_prices.get(pk) if offerable else None
        prices = offer_city_prices(price, applied) if applied else None
        if (
            type(price) is not int
            or not has_price(price)
            or stock < 0
            or not 0 <= preorder <= PREORDER_MAX_DAYS
            or (prices and not all(type(p) is int and has_price(p) for p in prices.values()))
        ):
            skipped.append(sku)
            continue
        seen.add(sku)
        if offerable:
            stats.available += 1
        if feed_available is None:
            stats.added += 1
        else:
            stats.price_changed += feed_price != price
            stats.availability_changed += feed_available != offerable
        stats.offers += 1
        brand = brands.get(brand_name)
        if brand is None:
            brand = xml_text(brand_name or "", 255) or placeholder
            brand = brands[brand_name] = f"<brand>{escape(brand)}</brand>" if brand else ""
        if single:
            if offerable:
                pre = f' preOrder="{preorder}"' if preorder else ""
                points = (
                    f'<availability available="yes" storeId="{store_ids[0]}" '
                    f'stockCount="{stock}"{pre}></availability>'
                )
            else:
                points = (
                    f'<availability available="no" storeId="{store_ids[0]}" '
                    'stockCount="0"></availability>'
                )
        else:
            points = ""
            for store, share, sell in zip(store_ids, plan.split(stock), sells, strict=True):
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
            f'<offer sku="{escape(sku, attribute=True)}"><model>{escape(model)}</model>{brand}'
            f"<availabilities>{points}</availabilities>{price_xml(price, prices)}</offer>"
        )
        if len(parts) >= CHUNK_OFFERS:
            stream.write("".join(parts).encode())
            parts.clear()
    stats.legacy = _write_legacy(parts, legacy, seen, skipped, preorder_cap)
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
        raise FeedValidationError([f"not a valid price list: {exc}"]) from None
    return _checked(offers)


def _checked(offers: int) -> dict:
    if offers == 0:
        raise FeedValidationError(["the price list has no offers"])
    return {"offers": offers}


class CheckedSink:
    """The writer's stream: each write() goes to the file, to the digests and through the
    structural check (OutputCheck). The first write is the root start tag (with `date`):
    `body` hashes everything after it, to tell whether the offers changed."""

    def __init__(self, file):
        self.file = file
        self.check = OutputCheck()
        self.full = hashlib.sha256()
        self.body = hashlib.sha256()
        self.header_size = None
        self.size = 0

    def write(self, data: bytes) -> int:
        self.file.write(data)
        self.full.update(data)
        self.check.feed(data)
        if self.header_size is None:
            self.header_size = len(data)
        else:
            self.body.update(data)
        self.size += len(data)
        return len(data)


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
        full, body = hashlib.sha256(head), hashlib.sha256()
        for block in iter(lambda: handle.read(1 << 20), b""):
            full.update(block)
            body.update(block)
    if body.digest() != sink.body.digest():
        return None
    return date, full.hexdigest()


# --- Build and publish ------------------------------------------------------------------


def build_feed(*, run: SyncRun | None = None, force: bool = False, now=None) -> FeedBuild:
    """Build, validate and publish the price list; keep the last good file on any failure."""
    now = now or timezone.now()
    build = FeedBuild.objects.create(run=run, forced=force, started_at=now)
    target = feed_path()
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp_name = None
    try:
        refresh_below_cost()
        refresh_off_sale_marks(now)
        stats = WriteStats()
        fd, tmp_name = tempfile.mkstemp(prefix=".kaspi-", suffix=".xml.tmp", dir=target.parent)
        with os.fdopen(fd, "wb") as stream:
            sink = CheckedSink(stream)
            write_feed(sink, feed_rows(now), now=now, stats=stats, legacy=legacy_feed_offers(now))
            try:
                offers = sink.check.close()
            except OutputCheckError as exc:
                raise FeedValidationError([f"not a valid price list: {exc}"]) from None
            stream.flush()
            os.fsync(stream.fileno())
        if offers != stats.offers + stats.legacy:
            raise FeedValidationError(
                [
                    f"the file holds {offers} offers, the writer counted "
                    f"{stats.offers + stats.legacy}"
                ]
            )
        checked = _checked(offers)
        if run:
            heartbeat(run, done=stats.offers)
        _check_shrink(stats.available, force=force)
        twin = _published_twin(target, sink)
        size = sink.size
        if twin is not None:
            # Same offers as the published file: publish nothing, so its bytes, mtime,
            # ETag, Last-Modified and `date` stay; Kaspi need not download it again.
            published_date, digest = twin
            os.unlink(tmp_name)
            tmp_name = None
            logger.info("price list unchanged since %s: nothing published", published_date)
        else:
            digest = sink.full.hexdigest()
            os.chmod(tmp_name, 0o644)
            os.replace(tmp_name, target)
            tmp_name = None
            _fsync_dir(target.parent)
        if _gzip_stale(target):
            _write_gzip(target)
        removed = _record_published(now, stats)
    except FeedValidationError as exc:
        build.status = FeedBuild.Status.HELD if _is_shrink(exc) else FeedBuild.Status.FAILED
        build.errors = exc.errors
        _finish(build, run, failed=True)
        raise
    except Exception as exc:
        build.status = FeedBuild.Status.FAILED
        build.errors = [f"{type(exc).__name__}: {exc}"]
        _finish(build, run, failed=True)
        raise
    finally:
        if tmp_name and os.path.exists(tmp_name):
            os.unlink(tmp_name)
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
            f"skipped offers with a bad SKU or no name, price, stock or pre-order days: "
            f"{', '.join(stats.skipped[:20])}"
        ]
    _finish(build, run, failed=False)
    logger.info(
        "price list %s: %d offers (%d available), %d bytes, sha256 %s",
        "unchanged, the published file kept" if twin is not None else "published",
        build.offers_total,
        build.offers_available,
        size,
        digest[:12],
    )
    return build


SHRINK_MARK = "offer count fell"


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
        raise FeedValidationError(
            [
                f"{SHRINK_MARK} from {previous.offers_available} to {available} offers on sale "
                f"(below {settings.FEED_SHRINK_FLOOR:.0%} of the last published file); "
                "held back: check the catalog sync, or rebuild with force"
            ]
        )


def _is_shrink(exc: FeedValidationError) -> bool:
    return any(message.startswith(SHRINK_MARK) for message in exc.errors)


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


def _record_published(now, stats: WriteStats) -> int:
    """Remember what the published file says about each product (for diffs and the grace
    period); forget products that left the file. Returns how many left it."""
    if not stats.changed and not stats.skipped:
        # Same offers, prices and availability as last time: one count tells whether any
        # product left the file; if none did, there is nothing to write.
        if Product.objects.filter(feed_available__isnull=False).count() == stats.offers:
            return 0
    in_feed_ids = feed_queryset(now).values("pk")
    offer_price = Coalesce("kaspi_price", "feed_price")
    # Only rows whose published state changed are written: a rebuild of an unchanged
    # catalog touches nothing.
    unchanged = Q(feed_price=F("kaspi_price"))
    with transaction.atomic():
        in_feed = Product.objects.filter(pk__in=in_feed_ids)
        in_feed.filter(OFFERABLE).exclude(unchanged & Q(feed_available=True)).update(
            feed_available=True, feed_price=offer_price
        )
        in_feed.exclude(OFFERABLE).exclude(
            Q(feed_available=False) & (unchanged | Q(kaspi_price__isnull=True))
        ).update(feed_available=False, feed_price=offer_price)
        return (
            Product.objects.filter(feed_available__isnull=False)
            .exclude(pk__in=in_feed_ids)
            .update(feed_available=None, feed_price=None)
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
