"""Kaspi product cards: classification, card building, local validation, import, results.

An offer in the price list sells only when Kaspi has a card with the same SKU. A card is
built from our product (the same SKU the price list uses), its supplier category's mapping
to a Kaspi category, and the supplier's images/description/properties. It is validated
locally (Kaspi's import JSON Schema + the category's mandatory attributes, types and
allowed values) before anything is sent; unchanged cards are not re-sent (payload hash).
"""

import hashlib
import json
import logging
import re
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext, ngettext
from jsonschema import Draft4Validator

from backoffice.core.exceptions import BackofficeError, ExternalServiceError
from backoffice.core.runs import create_run, enqueue_run, heartbeat, run_queued
from backoffice.models import SyncRun

from ..clients.kaspi_content import KaspiContentClient
from ..models import (
    AttributeSource,
    CardImport,
    CardMapping,
    CardState,
    KaspiAttribute,
    KaspiCategory,
    Product,
    Supplier,
    SupplierOffer,
)

logger = logging.getLogger(__name__)

SCHEMA_FIXTURE = Path(__file__).resolve().parent.parent / "schemas" / "kaspi_import_schema.json"
SCHEMA_CACHE_KEY = "kaspi:import-schema"
MAX_BATCH = 10_000
# Per-SKU `state` in an import result (kaspi-product-import.md §5): only FINISHED is
# documented; SUCCESS/ERROR are plausible. Words that mean failure make an error; accepted
# words and an empty state are accepted; anything else is stored raw, never an error.
ERROR_STATES = frozenset(
    {"ERROR", "ERRORS", "FAILED", "FAILURE", "FAIL", "REJECTED", "DECLINED", "INVALID"}
)
ACCEPTED_STATES = frozenset({"", "SUCCESS", "FINISHED"})
# Import statuses after which /import/result may be read; other statuses are stored and
# polled again (a 4xx from /result before them is not a failure).
DONE_STATUSES = frozenset({"FINISHED", "ABORTED"})


class CardError(BackofficeError):
    pass


# --- Classification ------------------------------------------------------------------------


def refresh_categories(*, client: KaspiContentClient | None = None) -> int:
    client = client or KaspiContentClient()
    rows = {
        str(row.get("code")): str(row.get("title") or row.get("code"))
        for row in client.categories()
        if row.get("code")
    }
    existing = {c.code: c for c in KaspiCategory.objects.all()}
    with transaction.atomic():
        for code, title in rows.items():
            category = existing.get(code)
            if category is None:
                KaspiCategory.objects.create(code=code, title=title[:512])
            elif category.title != title[:512]:
                KaspiCategory.objects.filter(pk=category.pk).update(title=title[:512])
    return len(rows)


def refresh_attributes(
    category: KaspiCategory, *, client: KaspiContentClient | None = None, values: bool = True
) -> int:
    """Attributes of one category, and the allowed values of its enum attributes."""
    client = client or KaspiContentClient()
    rows = client.attributes(category.code)
    now = timezone.now()
    with transaction.atomic():
        for row in rows:
            code = str(row.get("code") or "")
            if not code:
                continue
            attribute, _created = KaspiAttribute.objects.update_or_create(
                category=category,
                code=code[:512],
                defaults={
                    "type": str(row.get("type") or "string")[:10],
                    "mandatory": bool(row.get("mandatory")),
                    "multi_valued": bool(row.get("multiValued")),
                },
            )
            if values and attribute.type == KaspiAttribute.Type.ENUM:
                attribute.values = [
                    str(v.get("code") or v.get("name"))
                    for v in client.attribute_values(category.code, attribute.code)
                ]
                attribute.values_loaded_at = now
                attribute.save(update_fields=["values", "values_loaded_at"])
        KaspiCategory.objects.filter(pk=category.pk).update(attributes_loaded_at=now)
    return len(rows)


def refresh_classification(*, client: KaspiContentClient | None = None, extra_codes=()) -> dict:
    """Kaspi's categories, the attributes of every mapped category (and of `extra_codes`),
    and the live import schema: the command and the admin's button run this."""
    client = client or KaspiContentClient()
    result = {"categories": refresh_categories(client=client), "attributes": {}}
    codes = set(CardMapping.objects.values_list("kaspi_category__code", flat=True))
    codes.update(extra_codes)
    for code in sorted(codes):
        category = KaspiCategory.objects.filter(code=code).first()
        if category is None:
            raise CardError(gettext("unknown Kaspi category %(code)r") % {"code": code})
        result["attributes"][code] = refresh_attributes(category, client=client)
    refresh_schema(client=client)
    return result


def request_classification_refresh(*, user=None) -> None:
    """Queue refresh_classification as a task (the admin's button), audited."""
    from django_q.tasks import async_task

    from backoffice.core.audit import audit

    transaction.on_commit(lambda: async_task("catalog.tasks.refresh_classification_task"))
    audit(user=user, action="kaspi.classification_refresh")


def refresh_schema(*, client: KaspiContentClient | None = None) -> dict:
    """Fetch Kaspi's live import schema and keep it (it takes precedence over the fixture)."""
    schema = (client or KaspiContentClient()).schema()
    Draft4Validator.check_schema(schema)
    cache.set(SCHEMA_CACHE_KEY, schema, timeout=None)
    return schema


def import_schema() -> dict:
    return cache.get(SCHEMA_CACHE_KEY) or json.loads(SCHEMA_FIXTURE.read_text())


# --- Supplier card data --------------------------------------------------------------------


def alstyle_articles(products) -> tuple[dict[str, Product], list[Product]]:
    """Al-Style's article of each product (its Al-Style offer's, the listed one first), and
    the products Al-Style does not supply. A product made from another supplier's price file
    keeps that supplier's code as its article («acme:A1») even once an Al-Style offer joins
    it, so Al-Style is never asked by our article; a product with no offer row at all is
    Al-Style's by our article (as before offers existed)."""
    products = list(products)
    alstyle = Supplier.alstyle()
    offers = {}
    for offer in SupplierOffer.objects.filter(
        product__in=[p.pk for p in products], supplier=alstyle
    ).order_by("-listed", "pk"):
        offers.setdefault(offer.product_id, offer.article)
    with_offers = set(
        SupplierOffer.objects.filter(product__in=[p.pk for p in products])
        .values_list("product_id", flat=True)
        .distinct()
    )
    by_article, not_alstyle = {}, []
    for product in products:
        if product.pk in offers:
            by_article[offers[product.pk]] = product
        elif product.pk not in with_offers:
            by_article[product.article] = product
        else:
            not_alstyle.append(product)
    return by_article, not_alstyle


def refresh_details(products, *, client=None, chunk: int | None = None, run=None) -> int:
    """Fetch images, description, weight and properties from Al-Style for `products`, asked
    by their Al-Style offers' articles (alstyle_articles); products without an Al-Style
    offer are skipped and, with `run`, counted and named in its report (with `run`, its
    progress is recorded after each call)."""
    from ..suppliers.alstyle import alstyle_client

    chunk = chunk or settings.ALSTYLE_DETAILS_CHUNK
    by_article, not_alstyle = alstyle_articles(products)
    if run is not None and not_alstyle:
        run.count("not_alstyle", len(not_alstyle))
        run.report = gettext(
            "Not Al-Style's (no Al-Style offer), not fetched: %(n)d product(s): %(skus)s"
        ) % {"n": len(not_alstyle), "skus": ", ".join(p.sku for p in not_alstyle[:50])}
    if not by_article:
        return 0
    client = client or alstyle_client()
    articles = list(by_article)
    done = 0
    for start in range(0, len(articles), chunk):
        part = {a: by_article[a] for a in articles[start : start + chunk]}
        for item in client.element_info(list(part)):
            product = part.get(str(item.get("article")))
            if product is None:
                continue
            product.details = normalise_details(item)
            product.save(update_fields=["details"])
            done += 1
        if run is not None:
            heartbeat(run, done=min(start + chunk, len(articles)), total=len(articles))
    return done


MAX_DETAIL_PRODUCTS = 200  # one staff selection


def request_card_data(*, products, user=None, triggered_by: str = "user"):
    """Queue the supplier card data of the ticked products (Al-Style: one call per 5 s for
    each ALSTYLE_DETAILS_CHUNK products, so never inside the web request)."""
    ids = sorted(products.values_list("pk", flat=True)[:MAX_DETAIL_PRODUCTS])
    return enqueue_run(
        kind=SyncRun.Kind.CARD_DATA,
        task="catalog.tasks.card_data_task",
        triggered_by=triggered_by,
        user=user,
        params={"products": ids},
    )


def run_card_data(*, run_id: int, client=None):
    def job(run):
        products = Product.objects.filter(pk__in=run.params.get("products") or []).order_by("pk")
        heartbeat(run, done=0, total=products.count(), force=True)
        run.count("updated", refresh_details(products, client=client, run=run))
        heartbeat(run, force=True)

    return run_queued(run_id=run_id, job=job)


def normalise_details(item: dict) -> dict:
    images = item.get("images") or []
    if isinstance(images, str):
        images = [part.strip() for part in images.split(",")]
    urls = []
    for url in images:
        url = str(url or "").strip()
        if url.startswith("//"):
            url = "https:" + url
        elif url.startswith("/"):
            url = "https://al-style.kz" + url
        elif url.startswith("http://"):
            url = "https://" + url[len("http://") :]
        if url.startswith("https://") and url not in urls:
            urls.append(url[:1024])
    properties = {}
    for prop in item.get("properties") or []:
        if isinstance(prop, dict) and prop.get("name") not in (None, ""):
            properties[str(prop["name"]).strip()] = prop.get("value")
    return {
        "images": urls,
        "description": _plain_text(item.get("description") or ""),
        "weight": item.get("weight"),
        "properties": properties,
    }


def _plain_text(html: str) -> str:
    text = re.sub(r"<br\s*/?>|</p>|</li>", "\n", str(html), flags=re.IGNORECASE)
    text = re.sub(r"<[^>]+>", "", text)
    lines = [" ".join(line.split()) for line in text.splitlines()]
    return "\n".join(line for line in lines if line)


# --- Building and validating -----------------------------------------------------------------


class CardProblem(str):
    """A card problem in words, and what fixes it: `fix` names the kind ("map_category",
    "attribute", "brand", "images") and `ids` the records (the admin links them)."""

    def __new__(cls, text: str, fix: str = "", **ids):
        problem = super().__new__(cls, text)
        problem.fix = fix
        problem.ids = ids
        return problem


@dataclass
class CardPreview:
    product: Product
    payload: dict | None
    problems: list[str] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        return self.payload is not None and not self.problems


def load_mappings(category_ids) -> dict[int, CardMapping]:
    """The card mappings of these supplier categories, with their sources and the Kaspi
    category's attributes prefetched: one set of queries for a whole batch of products."""
    mappings = (
        CardMapping.objects.select_related("kaspi_category")
        .prefetch_related("sources__attribute", "kaspi_category__attributes")
        .filter(category_id__in=[c for c in category_ids if c is not None])
    )
    return {mapping.category_id: mapping for mapping in mappings}


def build_card(product: Product, *, mappings: dict[int, CardMapping] | None = None) -> CardPreview:
    """The JSON Kaspi would receive for `product`, and every problem in plain words."""
    problems: list[str] = []
    if mappings is None:
        mappings = load_mappings([product.category_id])
    mapping = mappings.get(product.category_id)
    if mapping is None:
        category = product.category or "—"
        text = gettext("the supplier category «%(category)s» is not mapped to a Kaspi category")
        problem = CardProblem(
            text % {"category": category}, "map_category", category_id=product.category_id
        )
        return CardPreview(product, None, [problem])
    details = product.details or {}
    brand = product.brand.name if product.brand_id else ""
    if not brand:
        problems.append(
            CardProblem(gettext("no brand (Kaspi requires one)"), "brand", product_id=product.pk)
        )
    images = [{"url": url} for url in details.get("images") or []]
    if not images:
        problems.append(
            CardProblem(
                gettext("no images: fetch the supplier data (action «%(action)s»)")
                % {"action": gettext("Fetch supplier card data (images, description)")},
                "images",
                product_id=product.pk,
            )
        )
    attributes = []
    sources = {source.attribute_id: source for source in mapping.sources.all()}
    for attribute in mapping.kaspi_category.attributes.all():
        source = sources.get(attribute.pk)
        raw = _source_value(source, product, details, brand) if source else None
        if raw in (None, "", []):
            if attribute.mandatory:
                text = (
                    gettext("mandatory attribute «%(code)s» has no value")
                    if source
                    else gettext(
                        "mandatory attribute «%(code)s» has no value (no source is set in the "
                        "mapping)"
                    )
                )
                problems.append(
                    CardProblem(
                        text % {"code": attribute.code},
                        "attribute",
                        mapping_id=mapping.pk,
                        attribute_id=attribute.pk,
                        has_source=source is not None,
                    )
                )
            continue
        value, problem = _typed(attribute, raw)
        if problem:
            problems.append(
                CardProblem(
                    problem,
                    "attribute",
                    mapping_id=mapping.pk,
                    attribute_id=attribute.pk,
                    has_source=True,
                )
            )
            continue
        attributes.append({"code": attribute.code, "value": value})
    payload = {
        "sku": product.sku,
        "title": (product.full_name or product.name)[:1024],
        "brand": brand[:256],
        "category": mapping.kaspi_category.code,
        "attributes": attributes,
        "images": images,
    }
    if details.get("description"):
        payload["description"] = details["description"][:1024]
    weight = _number(details.get("weight"))
    if weight is not None:
        payload["weight"] = f"{weight:g}"
    return CardPreview(product, payload, problems)


def _source_value(source: AttributeSource, product, details, brand):
    kind = source.source
    if kind == AttributeSource.Source.FIXED:
        return source.value
    if kind == AttributeSource.Source.BRAND:
        return brand
    if kind == AttributeSource.Source.NAME:
        return product.name
    if kind == AttributeSource.Source.PART_NUMBER:
        return product.article_pn
    if kind == AttributeSource.Source.WEIGHT:
        return details.get("weight")
    return (details.get("properties") or {}).get(source.value)


def _number(value):
    try:
        return float(str(value).replace(",", ".").split()[0])
    except (TypeError, ValueError, IndexError):
        return None


def _typed(attribute: KaspiAttribute, raw):
    """The value in the JSON type Kaspi expects, or a problem in plain words."""
    code = attribute.code
    if attribute.type == KaspiAttribute.Type.BOOLEAN:
        text = str(raw).strip().lower()
        if text in {"true", "да", "yes", "1", "есть"}:
            return True, None
        if text in {"false", "нет", "no", "0"}:
            return False, None
        return None, gettext("«%(code)s» must be yes/no, got «%(raw)s»") % {
            "code": code,
            "raw": raw,
        }
    if attribute.type == KaspiAttribute.Type.NUMBER:
        number = _number(raw)
        if number is None:
            return None, gettext("«%(code)s» must be a number, got «%(raw)s»") % {
                "code": code,
                "raw": raw,
            }
        return (int(number) if number == int(number) else number), None
    values = raw if isinstance(raw, list) else [v.strip() for v in str(raw).split(";")]
    values = [str(v)[:256] for v in values if str(v).strip()]
    if not attribute.multi_valued and len(values) > 1:
        return None, gettext("«%(code)s» takes one value, got %(n)d") % {
            "code": code,
            "n": len(values),
        }
    if attribute.type == KaspiAttribute.Type.ENUM and attribute.values:
        unknown = [v for v in values if v not in attribute.values]
        if unknown:
            return None, gettext("«%(code)s»: «%(value)s» is not one of Kaspi's allowed values") % {
                "code": code,
                "value": unknown[0],
            }
    if attribute.multi_valued:
        return list(dict.fromkeys(values))[:32], None
    return values[0] if values else None, None


def schema_problems(payloads: list[dict]) -> dict[str, list[str]]:
    """Kaspi's JSON Schema errors per SKU (the batch as a whole is an array of products)."""
    schema = import_schema()
    item_schema = schema.get("items", schema)
    validator = Draft4Validator(item_schema)
    problems: dict[str, list[str]] = {}
    for payload in payloads:
        for error in validator.iter_errors(payload):
            where = "/".join(str(part) for part in error.absolute_path) or "card"
            problems.setdefault(payload.get("sku", "?"), []).append(f"{where}: {error.message}")
    return problems


def card_preview(product: Product) -> CardPreview:
    """build_card plus Kaspi's schema check: everything staff see before an upload."""
    preview = build_card(product)
    if preview.payload:
        errors = schema_problems([preview.payload]).get(product.sku, [])
        preview.problems += _unsaid(preview.problems, errors)
    return preview


# The payload key a CardProblem's `fix` is about: its schema errors repeat it in English.
_FIX_KEYS = {"images": "images", "brand": "brand", "attribute": "attributes"}


def _unsaid(problems, schema_errors) -> list[str]:
    """The schema errors not already said in words: those about a whole key (an empty
    `images`, `brand` or `attributes`) that a plain-words problem covers are dropped;
    deeper ones (`images/0/url`, `attributes/2/value`) are kept."""
    said = {_FIX_KEYS.get(getattr(problem, "fix", "")) for problem in problems}
    return [error for error in schema_errors if error.split(":", 1)[0] not in said]


def payload_hash(payload: dict) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


# --- Import ----------------------------------------------------------------------------------


@dataclass
class ImportSummary:
    sent: int = 0  # cards in batches Kaspi's POST accepted
    failed: int = 0  # cards in batches whose POST failed (recorded as errors)
    unchanged: int = 0
    invalid: int = 0
    batches: list[CardImport] = field(default_factory=list)
    previews: list[CardPreview] = field(default_factory=list)


def cards_import(
    products,
    *,
    dry_run: bool = False,
    user=None,
    batch_size: int | None = None,
    client: KaspiContentClient | None = None,
    run=None,
) -> ImportSummary:
    """Validate and send cards in batches; skip unchanged ones; record what happened
    (with `run`, its progress after validation and after each batch, counted in products)."""
    batch_size = max(1, min(batch_size or settings.KASPI_CARDS_BATCH, MAX_BATCH))
    summary = ImportSummary()
    ready: list[tuple[Product, dict, str]] = []
    products = list(products)
    mappings = load_mappings({product.category_id for product in products})
    previews = [build_card(product, mappings=mappings) for product in products]
    schema_errors = schema_problems([p.payload for p in previews if p.payload])
    for preview in previews:
        product = preview.product
        if preview.payload:
            preview.problems += _unsaid(preview.problems, schema_errors.get(product.sku, []))
        summary.previews.append(preview)
        if not preview.valid:
            summary.invalid += 1
            if not dry_run:
                Product.objects.filter(pk=product.pk).update(
                    card_state=CardState.INVALID, card_message="\n".join(preview.problems)
                )
            continue
        digest = payload_hash(preview.payload)
        if digest == product.card_hash and product.card_state in (
            CardState.SENT,
            CardState.ACCEPTED,
            CardState.UNKNOWN,
        ):
            summary.unchanged += 1
            continue
        ready.append((product, preview.payload, digest))
    if dry_run:
        summary.sent = len(ready)
        return summary
    done = len(products) - len(ready)  # invalid and unchanged cards need no request
    if run is not None:
        heartbeat(run, done=done, total=len(products), force=True)
    client = client or KaspiContentClient() if ready else None
    for start in range(0, len(ready), batch_size):
        batch = ready[start : start + batch_size]
        record = _send_batch(batch, client=client, user=user)
        summary.batches.append(record)
        if record.status == CardImport.Status.FAILED:
            summary.failed += len(batch)
        else:
            summary.sent += len(batch)
        done += len(batch)
        if run is not None:
            heartbeat(run, done=done, total=len(products))
    return summary


# --- Upload as a run (the admin action, its task and push_kaspi_cards) ---------------------

MAX_UPLOAD_PRODUCTS = 5000  # one staff selection
REPORT_LINES = 500  # of the run's report; the rest are counted


def request_card_upload(*, products, user=None, triggered_by: str = "user"):
    """Queue the card upload of the ticked products as a run of its own; return
    `(run, started)`. The same selection clicked again while its run still waits in the
    queue joins that run (`started` False) instead of sending the same cards twice; another
    selection is another run (a kind lock would drop it)."""
    ids = sorted(products.values_list("pk", flat=True)[:MAX_UPLOAD_PRODUCTS])
    params = {"products": ids}
    waiting = SyncRun.objects.filter(
        kind=SyncRun.Kind.CARD_UPLOAD,
        status=SyncRun.Status.QUEUED,
        created_at__gte=timezone.now() - timedelta(seconds=settings.JOB_LOCK_STALE_SECONDS),
    ).order_by("-created_at")
    for run in waiting:
        if run.params == params:
            return run, False
    run = enqueue_run(
        kind=SyncRun.Kind.CARD_UPLOAD,
        task="catalog.tasks.push_cards_task",
        triggered_by=triggered_by,
        user=user,
        params=params,
    )
    return run, True


def run_for_legacy_upload(product_ids, user_id=None) -> SyncRun:
    """The run for a card upload task queued in the old form (product ids, the user's id)
    before uploads were runs; a task handed out twice finds the run made the first time."""
    from django.contrib.auth import get_user_model

    ids = sorted(product_ids)[:MAX_UPLOAD_PRODUCTS]
    user = get_user_model().objects.filter(pk=user_id).first() if user_id else None
    params = {"products": ids, "legacy_task": True}
    earlier = SyncRun.objects.filter(
        kind=SyncRun.Kind.CARD_UPLOAD, params=params, user=user
    ).first()
    if earlier is not None:
        return earlier
    return start_card_upload(params=params, user=user, triggered_by="user")


def upload_selection(params: dict):
    """The products of a card upload run: the ticked ones (`products`), or, for the
    command, the mapped products on sale (`category`: a supplier id, `only_missing`)."""
    if "products" in params:
        products = Product.objects.filter(pk__in=params["products"] or [])
    else:
        products = Product.objects.filter(
            listed=True, kaspi_enabled=True, category__card_mapping__isnull=False
        )
        if params.get("category") is not None:
            products = products.filter(category__supplier_id=params["category"])
        if params.get("only_missing"):
            products = products.exclude(card_state=CardState.ACCEPTED)
    return products.select_related("brand", "category").order_by("pk")


def start_card_upload(*, params: dict, user=None, triggered_by: str = "command") -> SyncRun:
    """A queued card upload run for `run_card_upload` to run here and now (the command)."""
    return create_run(
        kind=SyncRun.Kind.CARD_UPLOAD, triggered_by=triggered_by, user=user, params=params
    )


def run_card_upload(*, run_id: int, client: KaspiContentClient | None = None) -> SyncRun:
    """Validate and upload the run's cards (cards_import): counts, progress per batch, the
    problem cards and failed batches in the report. Some batches not sent: partial; none
    of those that had to go sent: failed, with Kaspi's reason."""

    def job(run):
        products = list(upload_selection(run.params))
        dry_run = bool(run.params.get("dry_run"))
        heartbeat(run, done=0, total=len(products), force=True)
        summary = cards_import(products, dry_run=dry_run, user=run.user, client=client, run=run)
        run.count("would_send" if dry_run else "sent", summary.sent)
        run.count("failed", summary.failed)
        run.count("unchanged", summary.unchanged)
        run.count("invalid", summary.invalid)
        heartbeat(run, done=len(products), total=len(products), force=True)
        failed = [b for b in summary.batches if b.status == CardImport.Status.FAILED]
        sent = [b.code for b in summary.batches if b.code]
        lines = [gettext("card imports: %(codes)s") % {"codes": ", ".join(sent)}] if sent else []
        lines += [
            gettext("batch of %(n)d card(s) not sent: %(error)s")
            % {"n": batch.total, "error": batch.description}
            for batch in failed
        ]
        lines += [
            f"{preview.product.sku}: " + "; ".join(preview.problems)
            for preview in summary.previews
            if preview.problems
        ]
        if len(lines) > REPORT_LINES:
            rest = len(lines) - REPORT_LINES
            lines = lines[:REPORT_LINES] + [gettext("… and %(n)d more") % {"n": rest}]
        run.report = "\n".join(lines)
        if not failed:
            return
        reason = ngettext(
            "%(failed)d of %(total)d card batch could not be sent to Kaspi: %(error)s "
            "(see the card imports)",
            "%(failed)d of %(total)d card batches could not be sent to Kaspi: %(error)s "
            "(see the card imports)",
            len(summary.batches),
        ) % {"failed": len(failed), "total": len(summary.batches), "error": failed[0].description}
        if len(failed) == len(summary.batches):
            raise CardError(reason)
        run.status = SyncRun.Status.PARTIAL
        run.error = reason

    return run_queued(run_id=run_id, job=job)


def _send_batch(batch, *, client, user) -> CardImport:
    skus = [product.sku for product, _payload, _digest in batch]
    record = CardImport(skus=skus, total=len(batch), created_by=user if user and user.pk else None)
    record.payload_hash = hashlib.sha256(
        "".join(digest for _p, _payload, digest in batch).encode()
    ).hexdigest()
    try:
        answer = client.import_products([payload for _p, payload, _d in batch])
    except ExternalServiceError as exc:
        record.status = CardImport.Status.FAILED
        record.description = str(exc)
        record.save()
        Product.objects.filter(sku__in=skus).update(
            card_state=CardState.ERROR, card_message=str(exc), card_import=record
        )
        return record
    record.code = str(answer.get("code") or "")[:128]
    record.status = str(answer.get("status") or CardImport.Status.UPLOADED)[:10]
    record.save()
    for product, _payload, digest in batch:
        Product.objects.filter(pk=product.pk).update(
            card_state=CardState.SENT, card_message="", card_hash=digest, card_import=record
        )
    return record


def poll_card_imports(*, client: KaspiContentClient | None = None) -> int:
    """Check imports Kaspi is still processing; read the result only once the status is
    FINISHED or ABORTED, and record each SKU's state. Any other status (e.g. PROCESSING) is
    stored and polled again next time. Returns the number of imports finished now.

    A failed check of one import is recorded on it and the others are still checked; the
    failures are raised together at the end, so the task's outcome tells the truth."""
    pending = list(
        CardImport.objects.exclude(code="")
        .exclude(status=CardImport.Status.FAILED)
        .filter(result="")
    )
    if not pending:
        return 0
    client = client or KaspiContentClient()
    finished = 0
    problems = []
    for record in pending:
        try:
            finished += _poll_one(record, client=client)
        except ExternalServiceError as exc:
            record.checked_at = timezone.now()
            record.description = str(exc)[:2000]
            record.save(update_fields=["checked_at", "description"])
            logger.warning("card import %s: status check failed: %s", record.code, exc)
            problems.append(f"{record.code}: {exc}")
    if problems:
        raise CardError(
            f"{len(problems)} of {len(pending)} card import checks failed: " + "; ".join(problems)
        )
    return finished


def _poll_one(record: CardImport, *, client: KaspiContentClient) -> int:
    status = client.import_status(record.code)
    record.checked_at = timezone.now()
    record.status = str(status.get("status") or record.status)[:10]
    record.description = str(status.get("description") or "")
    if record.status not in DONE_STATUSES:
        record.save(update_fields=["checked_at", "status", "description"])
        return 0
    try:
        result = client.import_result(record.code)
    except ExternalServiceError as exc:
        if exc.status is None or not 400 <= exc.status < 500:
            raise
        if record.status == CardImport.Status.FINISHED:
            # Kaspi says finished but has no result yet: not a failure, ask again later.
            record.description = f"result not available yet: {exc}"[:2000]
            record.save(update_fields=["checked_at", "status", "description"])
            return 0
        result = {}  # ABORTED without a result: the SKUs still waiting become errors
    apply_import_result(record, result if isinstance(result, dict) else {})
    return 1


def sku_outcome(entry: dict) -> str:
    """A SKU's card state from its result entry (kaspi-product-import.md §5)."""
    state = str(entry.get("state") or "").strip().upper()
    if state in ERROR_STATES or any(entry.get(key) for key in ("errors", "error")):
        return CardState.ERROR
    if state in ACCEPTED_STATES:
        return CardState.ACCEPTED
    return CardState.UNKNOWN


def apply_import_result(record: CardImport, result: dict) -> None:
    """Store the counters and raw result; set each SKU's card state."""
    record.total = _count(result.get("total"), record.total)
    record.errors = _count(result.get("errors"), 0)
    record.warnings = _count(result.get("warnings"), 0)
    record.skipped = _count(result.get("skipped"), 0)
    record.result = json.dumps(result, ensure_ascii=False) or "{}"
    per_sku = result.get("result") if isinstance(result.get("result"), dict) else {}
    with transaction.atomic():
        record.save()
        for sku in record.skus:
            entry = per_sku.get(sku)
            if not isinstance(entry, dict):
                continue  # Kaspi does not always list every SKU: keep "sent"
            outcome = sku_outcome(entry)
            messages = [
                json.dumps(entry.get(key), ensure_ascii=False)
                for key in ("errors", "warnings", "error", "warning", "message")
                if entry.get(key)
            ]
            if outcome == CardState.UNKNOWN:
                messages.insert(0, f"Kaspi state: {entry.get('state')}")
            Product.objects.filter(sku=sku, card_import=record).update(
                card_state=outcome, card_message="\n".join(messages)[:5000]
            )
        if record.status == CardImport.Status.ABORTED:
            Product.objects.filter(card_import=record, card_state=CardState.SENT).update(
                card_state=CardState.ERROR, card_message=record.description or "import aborted"
            )


def _count(value, default: int) -> int:
    if isinstance(value, list):
        return len(value)
    try:
        return int(value)
    except (TypeError, ValueError):
        return default
