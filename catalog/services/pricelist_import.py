"""Cut-over: import the shop's old Kaspi price list and keep every SKU it sells under.

Each old offer is matched to one of our products (rules below, in order); a matched
product takes the old SKU as its own, so the price list, the cards, order-line linking and
the reports use it from then on. Ambiguous and unmatched offers are kept as `LegacyOffer`
rows for staff (and stay in our price list as they were for CUTOVER_GRACE_DAYS, see
catalog/services/legacy_offers.py). A dry run writes nothing; a real run writes in one
transaction, and importing the same file again changes nothing.

Rules (confidence in %):
  sku          the old SKU is already the product's SKU                      100
  part_number  normalised SKU = normalised part number (case, spaces, dashes,
               slashes, Cyrillic/Latin look-alikes)                         100 exact, 95
  article      normalised SKU = the Al-Style article (with or without
               SKU_PREFIX)                                                   90
  model        normalised model name = product name                          80
A rule finding several products is narrowed by the later rules and the brand (confidence
−10); if that leaves several, the offer is "ambiguous" with its candidates.
"""

import csv
import hashlib
import io
import json
import logging
import re
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from backoffice.core.audit import audit
from backoffice.core.db import insert_rows, update_rows

from ..models import LegacyOffer, PriceListImport, Product, PublishedOffer
from ..pricelists import OldOffer, PriceListError, PriceListReader
from ..rules import has_price
from ..skus import derive_sku, sku_errors

logger = logging.getLogger(__name__)

Status, Rule = LegacyOffer.Status, LegacyOffer.Rule

# Cyrillic letters that look like Latin ones (after casefold): part numbers and model
# names typed on a Russian keyboard carry them.
_LOOKALIKES = str.maketrans("авеёкмнорстухіјѕԁһ", "abeekmhopctyxijsdh")
_CODE_NOISE = re.compile(r"[\s\-‐‑‒–—/\\]+")
_NAME_NOISE = re.compile(r"[^0-9a-zа-я]+")


def norm_code(value: str) -> str:
    return _CODE_NOISE.sub("", (value or "").casefold().translate(_LOOKALIKES))


def norm_name(value: str) -> str:
    folded = (value or "").casefold().replace("ё", "е").translate(_LOOKALIKES)
    return _NAME_NOISE.sub(" ", folded).strip()


@dataclass(slots=True)
class Match:
    status: str
    rule: str = ""
    confidence: int = 0
    product_id: int | None = None
    candidates: tuple | list = ()  # a shared empty tuple: 50,000 matches make no lists
    note: str = ""


def _add(index: dict, key: str, pk: int) -> None:
    """A key's products: an int while there is one (most keys), a list beyond."""
    found = index.get(key)
    if found is None:
        index[key] = pk
    elif isinstance(found, list):
        found.append(pk)
    else:
        index[key] = [found, pk]


def _all(found) -> list[int]:
    if found is None:
        return []
    return found if isinstance(found, list) else [found]


class ProductIndex:
    """Our products by each matching key (one query, plain dicts; ~35 MB for 50,000)."""

    def __init__(self, products=None):
        self.by_sku: dict[str, int] = {}
        self.sku_of: dict[int, str] = {}
        self.brand_of: dict[int, str] = {}
        self.pn_of: dict[int, str] = {}
        self.by_pn: dict = {}
        self.by_article: dict = {}
        self.by_name: dict = {}
        brands: dict[str, str] = {}
        rows = products if products is not None else self._rows()
        for pk, sku, article, pn, name, brand in rows:
            self.by_sku[sku] = pk
            self.sku_of[pk] = sku
            if brand:
                if brand not in brands:
                    brands[brand] = sys.intern(norm_name(brand))
                self.brand_of[pk] = brands[brand]
            if pn:
                self.pn_of[pk] = pn
                _add(self.by_pn, norm_code(pn), pk)
            _add(self.by_article, norm_code(article), pk)
            key = norm_name(name)
            if key:
                _add(self.by_name, key, pk)

    @staticmethod
    def _rows():
        return (
            Product.objects.values_list("pk", "sku", "article", "article_pn", "name", "brand__name")
            .order_by("pk")
            .iterator(chunk_size=5000)
        )

    def match(self, offer: OldOffer) -> Match:
        pk = self.by_sku.get(offer.sku)
        if pk is not None:
            return Match(Status.MATCHED, Rule.SKU, 100, pk)
        code = norm_code(offer.sku)
        prefix = norm_code(settings.SKU_PREFIX)
        article_keys = [code]
        if prefix and code.startswith(prefix) and len(code) > len(prefix):
            article_keys.append(code[len(prefix) :])
        name = norm_name(offer.model)
        steps = [
            (Rule.PART_NUMBER, 95, _all(self.by_pn.get(code))),
            (
                Rule.ARTICLE,
                90,
                [pk for key in article_keys for pk in _all(self.by_article.get(key))],
            ),
            (Rule.MODEL, 80, _all(self.by_name.get(name)) if name else []),
        ]
        for position, (rule, confidence, found) in enumerate(steps):
            found = list(dict.fromkeys(found))
            if not found:
                continue
            if len(found) == 1:
                if rule == Rule.PART_NUMBER and self.pn_of.get(found[0]) == offer.sku:
                    confidence = 100
                return Match(Status.MATCHED, rule, confidence, found[0])
            narrowed = self._narrow(found, steps[position + 1 :], offer)
            if len(narrowed) == 1:
                return Match(Status.MATCHED, rule, confidence - 10, narrowed[0])
            return Match(
                Status.AMBIGUOUS,
                rule,
                confidence // 2,
                candidates=sorted(narrowed or found)[:10],
                note=_("%(n)d products share this %(rule)s")
                % {"n": len(found), "rule": rule.label},
            )
        return Match(Status.UNMATCHED)

    def _narrow(self, found: list[int], later, offer: OldOffer) -> list[int]:
        pool = set(found)
        for _rule, _confidence, others in later:
            both = pool & set(others)
            if both:
                pool = both
        brand = norm_name(offer.brand)
        if brand and len(pool) > 1:
            same_brand = {pk for pk in pool if self.brand_of.get(pk) == brand}
            pool = same_brand or pool
        return sorted(pool)


class Row:
    """One old offer and its match: compact (slots, tuples) so 50,000 stay small; reads
    like a dict (`row["sku"]`) for the admin preview and the CSV."""

    __slots__ = (
        "sku",
        "occurrence",
        "row",
        "model",
        "brand",
        "price",
        "city_prices",
        "points",
        "status",
        "rule",
        "confidence",
        "product_id",
        "candidates",
        "note",
    )
    KEYS = (*__slots__[:7], "availabilities", *__slots__[8:])

    def __init__(self, offer: OldOffer, occurrence: int, match: Match):
        self.sku = offer.sku
        self.occurrence = occurrence
        self.row = offer.row
        self.model = offer.model
        self.brand = sys.intern(offer.brand[:255])
        self.price = offer.price
        self.city_prices = offer.city_prices or None
        self.points = tuple(
            (sys.intern(p.store_id), p.available, p.stock, p.preorder) for p in offer.availabilities
        )
        self.status = match.status
        self.rule = match.rule
        self.confidence = match.confidence
        self.product_id = match.product_id
        self.candidates = match.candidates or ()
        self.note = match.note

    @property
    def availabilities(self) -> list[dict]:
        points = []
        for store, available, stock, preorder in self.points:
            item = {"storeId": store, "available": available}
            if stock is not None:
                item["stockCount"] = stock
            if preorder:
                item["preOrder"] = preorder
            points.append(item)
        return points

    def keys(self):
        return self.KEYS

    def __getitem__(self, key):
        value = getattr(self, key)
        return {} if key == "city_prices" and value is None else value

    def __setitem__(self, key, value):
        setattr(self, key, value)


@dataclass
class ImportResult:
    source: str
    file_format: str = ""
    merchant_id: str = ""
    store_ids: list[str] = field(default_factory=list)
    store_warning: str = ""
    dry_run: bool = True
    offers: int = 0
    counts: dict = field(default_factory=dict)
    rows: list[Row] = field(default_factory=list)  # every offer, as written to LegacyOffer
    changed_skus: int = 0
    unchanged: bool = False
    pricelist: PriceListImport | None = None

    @property
    def unresolved(self) -> list[dict]:
        return [row for row in self.rows if row["status"] not in LegacyOffer.RESOLVED]


def file_digest(path) -> str:
    sha = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            sha.update(block)
    return sha.hexdigest()


def request_pricelist_import(*, path, source: str, user=None) -> None:
    """Queue the import of a saved (previewed) price list for the worker; audited here."""
    from django_q.tasks import async_task

    user_id = getattr(user, "pk", None)
    transaction.on_commit(
        lambda: async_task("catalog.tasks.import_pricelist_task", str(path), source, user_id)
    )
    audit(user=user, action="pricelist.import_queued", note=source[:200])


def import_pricelist(
    *, path, source: str = "", dry_run: bool = False, user=None, now=None
) -> ImportResult:
    """Read, match and (unless dry_run) apply an old price list. Raises PriceListError
    before anything is written when the file cannot be read."""
    now = now or timezone.now()
    source = source or str(path)
    reader = PriceListReader(path, name=source)
    result = ImportResult(source=source, file_format=reader.format, dry_run=dry_run)
    index = ProductIndex()
    stored = _stored_offers()
    occurrences: dict[str, int] = defaultdict(int)
    for offer in reader:  # PriceListError (truncated, bad row…) aborts before any write
        occurrences[offer.sku] += 1
        occurrence = occurrences[offer.sku]
        problems = sku_errors(offer.sku)
        earlier = stored.get((offer.sku, occurrence))
        if earlier is not None:
            earlier = earlier[3]
            if earlier is not None:
                status, rule, confidence, product_id, model_hash = earlier
                earlier = None  # the row changed: match it afresh
                if model_hash == hash(offer.model):
                    earlier = Match(status, rule, confidence, product_id)
        if problems:
            match = Match(Status.CONFLICT, note=" ".join(problems))
        elif earlier is not None and earlier.status == Status.CONFIRMED:
            match = earlier
        else:
            match = index.match(offer)
            if (
                earlier is not None
                and match.rule == Rule.SKU
                and match.product_id == earlier.product_id
            ):
                # The product has this SKU because an earlier import gave it: say how.
                match = earlier
        result.rows.append(Row(offer, occurrence, match))
    result.offers = reader.offers
    result.merchant_id = reader.merchant_id
    result.store_ids = reader.store_ids
    result.store_warning = store_mapping_warning(reader.store_ids)
    _resolve_conflicts(result.rows, index)
    result.counts = _counts(result.rows)
    if dry_run:
        return result
    _apply(result, path=path, user=user, now=now, index=index, existing=stored)
    return result


def store_mapping_warning(store_ids: list[str]) -> str:
    configured = [store.strip() for store in settings.KASPI_STORE_IDS if store.strip()]
    if not store_ids or store_ids == configured:
        return ""
    return _(
        "the old price list uses pickup points %(old)s, but KASPI_STORE_ID is %(ours)s: set "
        "KASPI_STORE_ID=%(proposed)s so our price list keeps offering at the same points"
    ) % {
        "old": ", ".join(store_ids),
        "ours": ",".join(configured) or "—",
        "proposed": ",".join(store_ids),
    }


def _stored_offers() -> dict[tuple[str, int], tuple]:
    """The rows of earlier imports: (pk, row_hash, import id, resolved Match or None).

    The Match (the model's hash in `note`, to see whether the row changed) keeps staff
    choices, and reports a product holding its SKU because of an earlier import with the
    rule that gave it, so a re-import changes nothing. Only ids and digests are loaded:
    50,000 rows compare in memory without model instances."""
    stored = {}
    rows = LegacyOffer.objects.values_list(
        "pk",
        "sku",
        "occurrence",
        "row_hash",
        "pricelist_id",
        "status",
        "rule",
        "confidence",
        "product",
        "model",
    ).iterator(chunk_size=5000)
    for pk, sku, occurrence, row_hash, pricelist_id, status, rule, conf, product, model in rows:
        match = None
        if status in LegacyOffer.RESOLVED and product is not None:
            match = (status, rule, conf, product, hash(model))
        stored[sku, occurrence] = (pk, row_hash, pricelist_id, match)
    return stored


def _resolve_conflicts(rows: list[dict], index: ProductIndex) -> None:
    """One SKU per product and one product per SKU; the better match wins each clash."""

    def rank(row):
        return (row["status"] == Status.CONFIRMED, row["confidence"], -row["row"])

    matched = [row for row in rows if row["status"] in LegacyOffer.RESOLVED]
    # A SKU twice in the file: the best-matching row gives it to its product.
    by_sku: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        by_sku[row["sku"]].append(row)
    for sku, same in by_sku.items():
        if len(same) < 2:
            continue
        others = ", ".join(str(row["row"]) for row in same)
        winners = sorted((r for r in same if r["status"] in LegacyOffer.RESOLVED), key=rank)
        best = winners[-1] if winners else None
        for row in same:
            if row is best:
                row["note"] = _("SKU %(sku)r is in rows %(rows)s; this row's product takes it") % {
                    "sku": sku,
                    "rows": others,
                }
                continue
            if row["status"] in LegacyOffer.RESOLVED:
                row["candidates"] = [row["product_id"]]
                row["product_id"] = None
            row["status"] = Status.DUPLICATE
            row["note"] = (
                _("SKU %(sku)r is in rows %(rows)s; a better match takes it")
                if best
                else _("SKU %(sku)r is in rows %(rows)s; no row matched a product")
            ) % {"sku": sku, "rows": others}
    # Two old offers for one product: the better match wins.
    by_product: dict[int, list[dict]] = defaultdict(list)
    for row in matched:
        if row["status"] in LegacyOffer.RESOLVED:
            by_product[row["product_id"]].append(row)
    for product_id, same in by_product.items():
        if len(same) < 2:
            continue
        same.sort(key=rank)
        best = same[-1]
        for row in same[:-1]:
            row["status"] = Status.CONFLICT
            row["candidates"] = [product_id]
            row["product_id"] = None
            row["note"] = _(
                "the product also matches row %(row)s (SKU %(sku)r), which matched better"
            ) % {"row": best["row"], "sku": best["sku"]}
    # A SKU already used by a product that does not get another SKU from this file.
    moving = {row["product_id"] for row in rows if row["status"] in LegacyOffer.RESOLVED}
    for row in rows:
        if row["status"] not in LegacyOffer.RESOLVED:
            continue
        holder = index.by_sku.get(row["sku"])
        if holder is not None and holder != row["product_id"] and holder not in moving:
            row["status"] = Status.CONFLICT
            row["candidates"] = [row["product_id"]]
            row["product_id"] = None
            row["note"] = _("SKU %(sku)r is already used by product %(article)s") % {
                "sku": row["sku"],
                "article": Product.objects.filter(pk=holder).values_list("article", flat=True)[0],
            }


def _counts(rows: list[dict]) -> dict:
    counts: dict = defaultdict(int)
    for row in rows:
        if row["status"] in LegacyOffer.RESOLVED:
            counts[f"matched_{row['rule']}"] += 1
            counts["matched"] += 1
        else:
            counts[row["status"]] += 1
    counts["offers"] = len(rows)
    return dict(sorted(counts.items()))


FIELDS = (  # LegacyOffer columns written from a Row (see _values)
    "row",
    "model",
    "brand",
    "price",
    "city_prices",
    "availabilities",
    "status",
    "rule",
    "confidence",
    "product",
    "candidates",
    "note",
)


@transaction.atomic
def _apply(result: ImportResult, *, path, user, now, index: ProductIndex, existing: dict) -> None:
    digest = file_digest(path)
    pricelist, created = PriceListImport.objects.get_or_create(
        sha256=digest,
        defaults={
            "created_by": user if user is not None and user.pk else None,
            "created_at": now,
            "source": result.source[:500],
            "file_format": result.file_format,
            "merchant_id": result.merchant_id[:255],
            "store_ids": result.store_ids,
            "counts": result.counts,
        },
    )
    if not created and pricelist.counts != result.counts:
        pricelist.counts = result.counts
        pricelist.save(update_fields=["counts"])
    result.pricelist = pricelist
    keep_until = now + timedelta(days=settings.CUTOVER_GRACE_DAYS)
    to_create, to_update = [], []
    created_or_updated = 0  # rows written in batches as the loop goes (memory stays flat)
    for row in result.rows:
        values = _values(row)
        row_hash = _row_hash(values)
        stored = existing.pop((row.sku, row.occurrence), None)  # what is left is gone
        if len(to_create) >= 2000:
            insert_rows(LegacyOffer, to_create)
            to_create = []
        if len(to_update) >= 2000:
            update_rows(LegacyOffer, to_update, ["pricelist_id", "row_hash", *FIELDS])
            created_or_updated += len(to_update)
            to_update = []
        if stored is None:
            created_or_updated += 1
            to_create.append(
                {
                    "pricelist_id": pricelist.pk,
                    "sku": row.sku,
                    "occurrence": row.occurrence,
                    "keep_until": keep_until,
                    "row_hash": row_hash,
                    **values,
                }
            )
        elif stored[1] != row_hash or stored[2] != pricelist.pk:
            to_update.append(
                {"id": stored[0], "pricelist_id": pricelist.pk, "row_hash": row_hash, **values}
            )
    gone = [stored[0] for stored in existing.values()]
    insert_rows(LegacyOffer, to_create)
    update_rows(LegacyOffer, to_update, ["pricelist_id", "row_hash", *FIELDS])
    for start in range(0, len(gone), 5000):
        LegacyOffer.objects.filter(pk__in=gone[start : start + 5000]).delete()
    result.changed_skus = _give_skus(result.rows, index, now)
    created_or_updated += len(to_update)
    result.unchanged = not (created or created_or_updated or gone or result.changed_skus)
    if not result.unchanged:
        audit(
            user=user,
            action="pricelist.import",
            obj=pricelist,
            after={"counts": result.counts, "skus_changed": result.changed_skus},
            note=result.source[:200],
        )


def _values(row: Row) -> dict:
    return {
        "row": row.row,
        "model": row.model,
        "brand": row.brand,
        "price": row.price,
        "city_prices": row.city_prices or {},
        "availabilities": row.availabilities,
        "status": row.status,
        "rule": row.rule,
        "confidence": row.confidence,
        "product_id": row.product_id,
        "candidates": row.candidates,
        "note": row.note,
    }


def _offer_hash(offer: LegacyOffer) -> str:
    """The row_hash of a stored offer after staff changed it (same keys as _values)."""
    names = [("product_id" if name == "product" else name) for name in FIELDS]
    return _row_hash({name: getattr(offer, name) for name in names})


def _row_hash(values: dict) -> str:
    text = json.dumps(values, ensure_ascii=False, sort_keys=True, default=str)
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


def _give_skus(rows: list[Row], index: ProductIndex, now) -> int:
    """Set each matched product's SKU to the old one, and mark it as in the last published
    file, so a product off sale at cut-over is still sent (available="no") through the
    feed's grace period instead of vanishing from Kaspi. One UPDATE per 5,000 products."""
    wanted = {
        row.product_id: (row.sku, row.price or min((row.city_prices or {}).values(), default=0))
        for row in rows
        if row.status in LegacyOffer.RESOLVED
    }
    changes = {pk: sku for pk, (sku, _price) in wanted.items() if index.sku_of.get(pk) != sku}
    # A product taking a SKU another changing product holds now: park those first.
    held = {index.sku_of.get(pk) for pk in changes}
    parked = ({"id": pk, "sku": f"~{pk}~"} for pk, sku in changes.items() if sku in held)
    update_rows(Product, parked, ["sku"])
    fresh = _never_published([pk for pk, (_sku, price) in wanted.items() if has_price(price)])
    renamed = ({"id": pk, "sku": sku} for pk, sku in changes.items())
    update_rows(Product, renamed, ["sku"])
    _publish_as_off_sale({pk: price for pk, (_sku, price) in wanted.items() if pk in fresh}, now)
    index.sku_of.update(changes)
    return len(changes)


def _never_published(ids: list[int]) -> set[int]:
    fresh: set[int] = set(ids)
    for start in range(0, len(ids), 5000):
        chunk = PublishedOffer.objects.filter(pk__in=ids[start : start + 5000])
        fresh.difference_update(chunk.values_list("pk", flat=True))
    return fresh


def _mark_as_published(prices: dict[int, int], now) -> None:
    """Products we never published: the old file is the last published file."""
    fresh = _never_published([pk for pk, price in prices.items() if has_price(price)])
    _publish_as_off_sale({pk: prices[pk] for pk in fresh}, now)


def _publish_as_off_sale(prices: dict[int, int], now) -> None:
    """Record these products as in the last published file with available="no" since
    `now` (PublishedOffer), so the price list keeps sending them through its grace period."""
    PublishedOffer.objects.bulk_create(
        [
            PublishedOffer(product_id=pk, available=False, price=price, off_since=now)
            for pk, price in prices.items()
        ],
        batch_size=2000,
        ignore_conflicts=True,
    )


@transaction.atomic
def release_offer(*, offer: LegacyOffer, user=None) -> None:
    """Staff unlinked an old offer: its product gets its derived SKU back, and the old
    offer goes back to the list (and to the price list, while its grace period lasts)."""
    product = offer.product
    if product is not None and product.sku == offer.sku:
        derived = base = derive_sku(product.article)
        suffix = 2
        while Product.objects.filter(sku=derived).exclude(pk=product.pk).exists():
            derived, suffix = f"{base[:16]}X{suffix}", suffix + 1
        product.sku = derived
        product.save(update_fields=["sku"])
        audit(
            user=user,
            action="pricelist.release",
            obj=product,
            before={"sku": offer.sku},
            after={"sku": derived},
        )
    offer.product = None
    offer.status = Status.UNMATCHED
    offer.rule = ""
    offer.confidence = 0
    offer.row_hash = _offer_hash(offer)
    offer.save()


def unresolved_csv(rows) -> str:
    """The rows staff must look at, as CSV (UTF-8 with BOM, so Excel shows Cyrillic)."""
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out, delimiter=";")
    writer.writerow(["row", "SKU", "model", "brand", "price", "status", "candidates", "note"])
    for row in rows:
        writer.writerow(
            [
                row["row"],
                row["sku"],
                row["model"],
                row["brand"],
                row["price"] if row["price"] is not None else "",
                row["status"],
                " ".join(str(pk) for pk in row["candidates"]),
                row["note"],
            ]
        )
    return out.getvalue()


def resolve_offer(*, offer: LegacyOffer, product: Product, user=None) -> None:
    """Staff picked (or confirmed) the product of an old offer: it takes the old SKU."""
    problems = sku_errors(offer.sku)
    if problems:
        raise PriceListError(" ".join(problems))
    with transaction.atomic():
        holder = Product.objects.filter(sku=offer.sku).exclude(pk=product.pk).first()
        if holder is not None:
            raise PriceListError(
                _(
                    "SKU %(sku)r is already used by product %(article)s; give that product "
                    "its own SKU first"
                )
                % {"sku": offer.sku, "article": holder.article}
            )
        other = (
            LegacyOffer.objects.filter(product=product, status__in=LegacyOffer.RESOLVED)
            .exclude(pk=offer.pk)
            .first()
        )
        if other is not None:
            raise PriceListError(
                _(
                    "product %(article)s already has SKU %(sku)r from the old price list "
                    "(row %(row)s); unlink that offer first"
                )
                % {"article": product.article, "sku": other.sku, "row": other.row}
            )
        before = product.sku
        offer.product = product
        offer.status = Status.CONFIRMED
        offer.rule = Rule.STAFF
        offer.confidence = 100
        offer.candidates = []
        offer.note = ""
        offer.row_hash = _offer_hash(offer)
        offer.save()
        if product.sku != offer.sku:
            product.sku = offer.sku
            product.save(update_fields=["sku"])
        _mark_as_published(
            {product.pk: offer.price or min(offer.city_prices.values(), default=0)}, timezone.now()
        )
        audit(
            user=user,
            action="pricelist.resolve",
            obj=product,
            before={"sku": before},
            after={"sku": offer.sku},
        )


def import_from_source(*, source: str, dry_run: bool = False, user=None) -> ImportResult:
    """A file path or an http(s) URL; the size limit is checked before parsing."""
    from ..clients.pricelist_url import download_pricelist

    if source.startswith(("http://", "https://")):
        path = download_pricelist(source)
        try:
            return import_pricelist(path=path, source=source, dry_run=dry_run, user=user)
        finally:
            path.unlink(missing_ok=True)
    check_size(Path(source))
    return import_pricelist(path=source, source=source, dry_run=dry_run, user=user)


def check_size(path: Path) -> None:
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise PriceListError(
            _("cannot read %(path)s: %(error)s") % {"path": path, "error": exc.strerror}
        ) from None
    if size > settings.PRICELIST_IMPORT_MAX_MB * 1024 * 1024:
        raise PriceListError(
            _("the file is %(size)d MB, larger than %(max)d MB (PRICELIST_IMPORT_MAX_MB)")
            % {"size": size // (1024 * 1024), "max": settings.PRICELIST_IMPORT_MAX_MB}
        )
