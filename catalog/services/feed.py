"""Kaspi XML price list: build, validate, publish (docs/kaspi-price-list.md).

The file is written with `lxml.etree.xmlfile` straight from a database iterator, so memory
stays flat whatever the catalog size. It is then validated by streaming it back through
`iterparse` (structure, SKU pattern and uniqueness, prices, store ids, offer-count floor)
and published with fsync + `os.replace`, so Kaspi always downloads either the previous good
file or the new one, never a half-written or empty one.
"""

import gzip
import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.db.models.functions import Coalesce
from django.utils import timezone
from lxml import etree

from backoffice.exceptions import BackofficeError
from backoffice.models import SyncRun
from backoffice.runs import enqueue_job, heartbeat, run_job

from ..feedcheck import FeedCheckError, count_valid_offers
from ..models import OFFERABLE, FeedBuild, Product
from ..skus import sku_is_valid
from .feed_prices import applied_city_prices, offer_city_prices, write_price
from .legacy_offers import legacy_feed_offers, legacy_store_ids, write_legacy_offers
from .pricing import refresh_below_cost

logger = logging.getLogger(__name__)

NS = "kaspiShopping"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
SCHEMA_LOCATION = "kaspiShopping http://kaspi.kz/kaspishopping.xsd"
# Characters XML 1.0 forbids; one of them in a supplier name breaks the whole file.
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")
SCHEMA_PATH = Path(__file__).resolve().parent.parent / "schemas" / "kaspi_catalog.xsd"


class FeedError(BackofficeError):
    pass


class FeedValidationError(FeedError):
    def __init__(self, errors: list[str]):
        self.errors = errors
        super().__init__("; ".join(errors[:5]) + (" …" if len(errors) > 5 else ""))


def xml_text(value: str, limit: int | None = None) -> str:
    text = _XML_ILLEGAL.sub("", value or "")
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
    """The rows the writer needs, as tuples in ROW_FIELDS order (no model instances)."""
    return feed_queryset(now).values_list(*ROW_FIELDS).iterator(chunk_size=5000)


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


T_OFFER, T_MODEL, T_BRAND, T_AVAILABILITIES, T_AVAILABILITY, T_PRICE = (
    f"{{{NS}}}{name}"
    for name in ("offer", "model", "brand", "availabilities", "availability", "price")
)


def write_feed(stream, rows, *, now=None, stats: WriteStats | None = None, legacy=()) -> WriteStats:
    """Stream the price list for `rows` (tuples from feed_rows()) to the binary `stream`,
    then the `legacy` old offers (LegacyOffer rows from legacy_feed_offers()).

    The OFFERABLE query's twin is evaluated per row here: offerable rows get
    available="yes" (with stock or a capped pre-order), the rest available="no", stock 0.
    """
    stats = stats or WriteStats()
    now = now or timezone.now()
    plan = store_plan()
    stores = plan.stores
    model_limit = settings.FEED_MODEL_MAX_LENGTH
    preorder_cap = settings.FEED_PREORDER_MAX_DAYS
    placeholder = settings.FEED_BRAND_PLACEHOLDER
    brands: dict[str | None, str] = {}
    city_prices = applied_city_prices()
    with etree.xmlfile(stream, encoding="utf-8") as xf:
        element, write = xf.element, xf.write
        xf.write_declaration()
        root_attrs = {
            "date": timezone.localtime(now).isoformat(timespec="seconds"),
            f"{{{XSI}}}schemaLocation": SCHEMA_LOCATION,
        }
        with element(f"{{{NS}}}kaspi_catalog", root_attrs, nsmap={None: NS, "xsi": XSI}):
            with element(f"{{{NS}}}company"):
                write(xml_text(settings.KASPI_COMPANY_NAME))
            with element(f"{{{NS}}}merchantid"):
                write(xml_text(settings.KASPI_MERCHANT_ID))
            with element(f"{{{NS}}}offers"):
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
                    if not sku_is_valid(sku) or not model:
                        stats.skipped.append(sku or f"#{pk}")
                        continue
                    free = quantity - reserved
                    offerable = bool(
                        listed
                        and enabled
                        and not on_request
                        and not below_cost
                        and (kaspi_price or 0) > 1
                        and ((available and free > 0) or preorder_days > 0)
                    )
                    if offerable:
                        price = kaspi_price
                        in_stock = available and free > 0
                        stock = free if in_stock else 0
                        preorder = 0 if in_stock else min(preorder_days, preorder_cap)
                        stats.available += 1
                    else:
                        price, stock, preorder = offer_price, 0, 0
                    if feed_available is None:
                        stats.added += 1
                    else:
                        stats.price_changed += feed_price != price
                        stats.availability_changed += feed_available != offerable
                    stats.offers += 1
                    brand = brands.get(brand_name)
                    if brand is None:
                        brand = brands[brand_name] = xml_text(brand_name or "", 255) or placeholder
                    with element(T_OFFER, {"sku": sku}):
                        with element(T_MODEL):
                            write(model)
                        if brand:
                            with element(T_BRAND):
                                write(brand)
                        units = plan.split(stock)
                        with element(T_AVAILABILITIES):
                            for store, share, sells in zip(stores, units, plan.sells, strict=True):
                                # A point sells only the units it was given, so no unit is
                                # promised at two points; a pre-order goes to the points
                                # that have a share.
                                here = offerable and (share > 0 or bool(preorder and sells))
                                attrs = {
                                    "available": "yes" if here else "no",
                                    "storeId": store,
                                    "stockCount": str(share if here else 0),
                                }
                                if preorder and here:
                                    attrs["preOrder"] = str(preorder)
                                # An empty element through xf.element keeps the default
                                # namespace (a detached Element would redeclare it).
                                with element(T_AVAILABILITY, attrs):
                                    pass
                        applied = city_prices.get(pk) if offerable else None
                        write_price(element, write, price, offer_city_prices(price, applied))
                stats.legacy = write_legacy_offers(
                    element, write, legacy, ns=NS, text=xml_text, preorder_cap=preorder_cap
                )
    return stats


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


class ConcurrentValidator:
    """A `python -m catalog.feedcheck` child fed everything the writer writes.

    (libxml2 keeps the GIL while it validates, so a thread would not overlap; a process
    does, and costs ~0.1 s to start.)

    Use as the writer's stream: `write()` goes to the file and to the child's stdin. The
    child validates on the other core while we keep writing; `result()` waits for it.
    """

    peak_rss_mb: float | None = None  # of the last child, for the benchmark
    write_error: OSError | None = None

    def __init__(self, file, schema_dir: Path):
        feed_schema()
        fd, self.schema_path = tempfile.mkstemp(prefix=".schema-", suffix=".xsd", dir=schema_dir)
        with os.fdopen(fd, "wb") as handle:
            handle.write(_schema_cache["text"])
        self.file = file
        self.child = subprocess.Popen(  # noqa: S603 - our own module, fixed arguments
            [sys.executable, "-m", "catalog.feedcheck", self.schema_path],
            cwd=settings.BASE_DIR,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self.pipe = self.child.stdin

    def write(self, data) -> int:
        try:
            self.file.write(data)
        except OSError as exc:
            # lxml's xmlfile swallows exceptions raised by the stream's write(); keep the
            # first one so build_feed can report it ("No space left on device"), not the
            # truncated XML it causes.
            self.write_error = self.write_error or exc
            raise
        if self.pipe is not None:
            try:
                self.pipe.write(data)
            except BrokenPipeError:  # the child stopped early: it has an error to tell
                self.pipe = None
        return len(data)

    def result(self, timeout: float = 300) -> dict:
        try:
            if self.pipe is not None:
                try:
                    self.pipe.close()
                except BrokenPipeError:
                    pass
            self.child.stdin = None  # closed above; communicate() must not flush it
            out, err = self.child.communicate(timeout=timeout)
        finally:
            os.unlink(self.schema_path)
        try:
            answer = json.loads(out or b"{}")
        except ValueError:
            answer = {}
        ConcurrentValidator.peak_rss_mb = answer.get("peak_rss_mb")
        if "offers" in answer:
            logger.info(
                "price list validated: %s offers, validator peak RSS %s MB",
                answer["offers"],
                self.peak_rss_mb,
            )
            return _checked(answer["offers"])
        if "error" in answer:
            raise FeedValidationError([f"not a valid price list: {answer['error']}"])
        raise FeedValidationError(
            [f"the validator failed: {err.decode(errors='replace').strip()[-500:]}"]
        )

    def abort(self) -> None:
        if self.child.poll() is None:
            self.child.kill()
            self.child.wait()
        if os.path.exists(self.schema_path):
            os.unlink(self.schema_path)


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
            validator = ConcurrentValidator(stream, target.parent)
            try:
                write_feed(
                    validator, feed_rows(now), now=now, stats=stats, legacy=legacy_feed_offers(now)
                )
                if validator.write_error is not None:
                    raise validator.write_error
            except BaseException:
                validator.abort()
                raise
            checked = validator.result()
            stream.flush()
            os.fsync(stream.fileno())
        if run:
            heartbeat(run, done=stats.offers)
        _check_shrink(stats.available, force=force)
        digest, size = _digest(Path(tmp_name))
        os.chmod(tmp_name, 0o644)
        os.replace(tmp_name, target)
        tmp_name = None
        _fsync_dir(target.parent)
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
    }
    if stats.skipped:
        build.errors = [
            f"skipped offers with a bad SKU or no name: {', '.join(stats.skipped[:20])}"
        ]
    _finish(build, run, failed=False)
    logger.info(
        "price list published: %d offers (%d available), %d bytes, sha256 %s",
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
