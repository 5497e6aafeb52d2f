"""Kaspi XML price list: build, validate, publish (docs/kaspi-price-list.md).

The file is written with `lxml.etree.xmlfile` straight from a database iterator, so memory
stays flat whatever the catalog size. It is then validated by streaming it back through
`iterparse` (structure, SKU pattern and uniqueness, prices, store ids, offer-count floor)
and published with fsync + `os.replace`, so Kaspi always downloads either the previous good
file or the new one, never a half-written or empty one.
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

from ..models import OFFERABLE, FeedBuild, Product

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
    "available",
    "preorder_days",
    "listed",
    "kaspi_enabled",
    "price_on_request",
    "kaspi_price",
    "feed_price",
    "feed_available",
    "offer_price",
)


def feed_rows(now=None):
    """The rows the writer needs, as plain dicts (no model instances: 3× faster)."""
    return feed_queryset(now).values(*ROW_FIELDS).iterator(chunk_size=5000)


def is_offerable(row: dict) -> bool:
    """The Python twin of OFFERABLE, for a row of feed_rows()."""
    return bool(
        row["listed"]
        and row["kaspi_enabled"]
        and not row["price_on_request"]
        and (row["kaspi_price"] or 0) > 1
        and (row["available"] or row["preorder_days"] > 0)
    )


# --- Writing --------------------------------------------------------------------------------


@dataclass
class WriteStats:
    offers: int = 0
    available: int = 0
    skipped: list[str] = field(default_factory=list)
    added: int = 0
    price_changed: int = 0
    availability_changed: int = 0


def write_feed(stream, rows, *, now=None, stats: WriteStats | None = None) -> WriteStats:
    """Stream the price list for `rows` (dicts from feed_rows()) to the binary `stream`."""
    stats = stats or WriteStats()
    now = now or timezone.now()
    stores = [store.strip() for store in settings.KASPI_STORE_IDS if store.strip()]
    model_limit = settings.FEED_MODEL_MAX_LENGTH
    preorder_cap = settings.FEED_PREORDER_MAX_DAYS
    placeholder = settings.FEED_BRAND_PLACEHOLDER
    sku_re = re.compile(settings.SKU_PATTERN)
    with etree.xmlfile(stream, encoding="utf-8") as xf:
        xf.write_declaration()
        root_attrs = {
            "date": timezone.localtime(now).isoformat(timespec="seconds"),
            f"{{{XSI}}}schemaLocation": SCHEMA_LOCATION,
        }
        with xf.element(f"{{{NS}}}kaspi_catalog", root_attrs, nsmap={None: NS, "xsi": XSI}):
            with xf.element(f"{{{NS}}}company"):
                xf.write(xml_text(settings.KASPI_COMPANY_NAME))
            with xf.element(f"{{{NS}}}merchantid"):
                xf.write(xml_text(settings.KASPI_MERCHANT_ID))
            with xf.element(f"{{{NS}}}offers"):
                for row in rows:
                    sku = row["sku"] or ""
                    model = xml_text(row["name"], model_limit)
                    if not sku_re.fullmatch(sku) or not model:
                        stats.skipped.append(sku or f"#{row['pk']}")
                        continue
                    offerable = is_offerable(row)
                    price = row["kaspi_price"] if offerable else row["offer_price"]
                    if offerable:
                        in_stock = row["available"] and row["quantity"] > 0
                        stock = row["quantity"] if in_stock else 0
                        preorder = 0 if in_stock else min(row["preorder_days"], preorder_cap)
                        stats.available += 1
                    else:
                        stock, preorder = 0, 0
                    _count_diff(stats, row, offerable, price)
                    stats.offers += 1
                    brand = xml_text(row["brand__name"] or "", 255)
                    with xf.element(f"{{{NS}}}offer", {"sku": sku}):
                        with xf.element(f"{{{NS}}}model"):
                            xf.write(model)
                        if brand or placeholder:
                            with xf.element(f"{{{NS}}}brand"):
                                xf.write(brand or placeholder)
                        with xf.element(f"{{{NS}}}availabilities"):
                            for store in stores:
                                attrs = {
                                    "available": "yes" if offerable else "no",
                                    "storeId": store,
                                    "stockCount": str(stock),
                                }
                                if preorder:
                                    attrs["preOrder"] = str(preorder)
                                # An empty element through xf.element keeps the default
                                # namespace (a detached Element would redeclare it).
                                with xf.element(f"{{{NS}}}availability", attrs):
                                    pass
                        with xf.element(f"{{{NS}}}price"):
                            xf.write(str(int(price)))
                    if stats.offers % 5000 == 0:
                        xf.flush()
    return stats


def _count_diff(stats: WriteStats, row: dict, offerable: bool, price: int) -> None:
    if row["feed_available"] is None:
        stats.added += 1
        return
    if row["feed_price"] != price:
        stats.price_changed += 1
    if row["feed_available"] != offerable:
        stats.availability_changed += 1


# --- Validation -----------------------------------------------------------------------------


def validate_feed_file(path: Path, *, max_errors: int = 50) -> dict:
    """Stream-parse `path` against our XSD and the price-list rules; raise on any error."""
    errors: list[str] = []
    sku_re = re.compile(settings.SKU_PATTERN)
    stores = {store.strip() for store in settings.KASPI_STORE_IDS if store.strip()}
    seen: set[str] = set()
    offers = available = 0
    schema = etree.XMLSchema(etree.parse(str(SCHEMA_PATH)))
    offer_tag = f"{{{NS}}}offer"

    def error(message: str) -> None:
        if len(errors) < max_errors:
            errors.append(message)

    try:
        context = etree.iterparse(
            str(path), events=("end",), tag=offer_tag, schema=schema, huge_tree=False
        )
        for _event, offer in context:
            offers += 1
            sku = offer.get("sku", "")
            if not sku_re.fullmatch(sku):
                error(f"offer {sku!r}: SKU does not match {settings.SKU_PATTERN}")
            if sku in seen:
                error(f"offer {sku}: duplicate SKU")
            seen.add(sku)
            model = offer.findtext(f"{{{NS}}}model") or ""
            if not model.strip():
                error(f"offer {sku}: empty model")
            price_text = offer.findtext(f"{{{NS}}}price") or ""
            if not price_text.isdigit() or int(price_text) <= 1:
                error(f"offer {sku}: price {price_text!r} is not a whole amount above 1")
            is_available = False
            for availability in offer.iter(f"{{{NS}}}availability"):
                if availability.get("storeId") not in stores:
                    error(f"offer {sku}: unknown storeId {availability.get('storeId')!r}")
                if availability.get("available") == "yes":
                    is_available = True
                elif availability.get("stockCount", "0") != "0":
                    error(f"offer {sku}: available='no' with stock")
            available += is_available
            offer.clear()
            while offer.getprevious() is not None:
                del offer.getparent()[0]
    except etree.XMLSyntaxError as exc:
        error(f"not a valid price list: {exc}")
    if offers == 0 and not errors:
        error("the price list has no offers")
    if errors:
        raise FeedValidationError(errors)
    return {"offers": offers, "available": available}


# --- Build and publish ------------------------------------------------------------------


def build_feed(*, run: SyncRun | None = None, force: bool = False, now=None) -> FeedBuild:
    """Build, validate and publish the price list; keep the last good file on any failure."""
    now = now or timezone.now()
    build = FeedBuild.objects.create(run=run, forced=force, started_at=now)
    target = feed_path()
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp_name = None
    try:
        refresh_off_sale_marks(now)
        stats = WriteStats()
        fd, tmp_name = tempfile.mkstemp(prefix=".kaspi-", suffix=".xml.tmp", dir=target.parent)
        with os.fdopen(fd, "wb") as stream:
            write_feed(stream, feed_rows(now), now=now, stats=stats)
            stream.flush()
            os.fsync(stream.fileno())
        if run:
            heartbeat(run, done=stats.offers)
        checked = validate_feed_file(Path(tmp_name))
        _check_shrink(checked["offers"], force=force)
        digest, size = _digest(Path(tmp_name))
        os.chmod(tmp_name, 0o644)
        os.replace(tmp_name, target)
        tmp_name = None
        _fsync_dir(target.parent)
        _write_gzip(target)
        removed = _record_published(now)
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
    build.offers_available = checked["available"]
    build.size_bytes = size
    build.sha256 = digest
    build.file_name = target.name
    build.diff = {
        "added": stats.added,
        "removed": removed,
        "price_changed": stats.price_changed,
        "availability_changed": stats.availability_changed,
        "skipped_bad_sku": len(stats.skipped),
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


def _check_shrink(offers: int, *, force: bool) -> None:
    previous = (
        FeedBuild.objects.filter(status=FeedBuild.Status.PUBLISHED).order_by("-started_at").first()
    )
    if force or previous is None or previous.offers_total == 0:
        return
    floor = previous.offers_total * settings.FEED_SHRINK_FLOOR
    if offers < floor:
        raise FeedValidationError(
            [
                f"{SHRINK_MARK} from {previous.offers_total} to {offers} "
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
            gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, compresslevel=5) as gz,
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


def _record_published(now) -> int:
    """Remember what the published file says about each product (for diffs and the grace
    period); forget products that left the file. Returns how many left it."""
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
