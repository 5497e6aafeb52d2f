"""Matching offers of a second supplier to our products (issue 18 item 4).

A new offer of a supplier other than Al-Style (catalog/services/offers.py hands it here)
is linked to the product it is for, if one product and only one is certain (a new
Al-Style offer too, by `find_products`, before it would make its own product):

1. the same part number AND the same brand (both normalised: case, spaces, dashes, dots
   and slashes ignored; "82H8-00FR" = "82h8 00fr"), among the offers of OTHER suppliers
   that already supply a product;
2. else the same barcode (digits only, leading zeros ignored: UPC-A = EAN-13).

Never merged silently: when the part number and the barcode point at different products,
or either points at several, or the offer has a part number but no brand, the offer waits
in the match queue (offer without a product) for staff, who link it to a product or make a
new product of it (both audited). A product that already has an offer from the same
supplier is never a candidate (one supplier's two articles are two items).

An offer that matches nothing: a new product is made from it when the supplier says so
(`Supplier.create_unmatched`, on by default: a second distributor mostly brings items we do
not sell yet), with an SKU from the supplier's SKU prefix; otherwise it waits in the queue.
"""

import contextlib
import contextvars
import logging
import re
from collections import defaultdict
from dataclasses import dataclass, field
from types import SimpleNamespace

from django.db import transaction
from django.db.models import OuterRef, Subquery
from django.utils import timezone
from django.utils.translation import gettext as _

from backoffice.core.audit import audit

from ..models import MatchQueueOffer, Product, Supplier, SupplierOffer
from ..skus import derive_sku
from . import offers as offer_service

logger = logging.getLogger(__name__)

_NOT_ALNUM = re.compile(r"[\W_]+", re.UNICODE)
_NOT_DIGIT = re.compile(r"\D+")
MIN_PART_NUMBER = 3
CHUNK = 500
MIN_BARCODE = 8


def normalise_part_number(value: str) -> str:
    return _NOT_ALNUM.sub("", str(value or "")).upper()


def normalise_brand(value: str) -> str:
    return _NOT_ALNUM.sub("", str(value or "")).casefold()


def normalise_barcode(value: str) -> str:
    digits = _NOT_DIGIT.sub("", str(value or "")).lstrip("0")
    return digits if len(digits) >= MIN_BARCODE - 1 else ""


@dataclass
class Index:
    """Products by normalised (part number, brand) and by barcode, from the offers of the
    suppliers other than the one being matched."""

    by_part: dict = field(default_factory=lambda: defaultdict(set))
    by_part_any_brand: dict = field(default_factory=lambda: defaultdict(set))
    by_barcode: dict = field(default_factory=lambda: defaultdict(set))
    has_supplier: set = field(default_factory=set)  # products with an offer of this supplier


# The index of the sync running in this context (`one_index_per_run`): built once, kept up
# to date with what this supplier's pages link, so matching page 100 does not re-read the
# offers of pages 1-99.
_run_index: contextvars.ContextVar = contextvars.ContextVar("matching_index", default=None)


@contextlib.contextmanager
def one_index_per_run(supplier: Supplier):
    """Within this block match_offers(supplier, …) reuses one index (built lazily). Other
    suppliers' offers are read once: one synced meanwhile is seen by the next run."""
    token = _run_index.set((supplier.pk, None))
    try:
        yield
    finally:
        _run_index.reset(token)


def _index_for(supplier: Supplier) -> Index:
    current = _run_index.get()
    if current is None or current[0] != supplier.pk:
        return build_index(supplier)
    if current[1] is None:
        current = (supplier.pk, build_index(supplier))
        _run_index.set(current)
    return current[1]


def build_index(supplier: Supplier) -> Index:
    """One pass over the linked offers (three short columns each: 50k offers ≈ 0.2 s)."""
    index = Index()
    rows = SupplierOffer.objects.exclude(product=None).values_list(
        "supplier_id", "product_id", "part_number", "brand", "barcode"
    )
    for supplier_id, product_id, part_number, brand, barcode in rows.iterator(chunk_size=5000):
        if supplier_id == supplier.pk:
            index.has_supplier.add(product_id)
            continue
        part = normalise_part_number(part_number)
        if len(part) >= MIN_PART_NUMBER:
            index.by_part[(part, normalise_brand(brand))].add(product_id)
            index.by_part_any_brand[part].add(product_id)
        code = normalise_barcode(barcode)
        if code:
            index.by_barcode[code].add(product_id)
    return index


def candidates(offer, index: Index) -> tuple[set[int], str]:
    """The products `offer` may be for, and how they were found ('part', 'barcode', or
    'conflict' when the part number and the barcode disagree)."""
    part = normalise_part_number(offer.part_number)
    brand = normalise_brand(offer.brand)
    by_part: set[int] = set()
    if len(part) >= MIN_PART_NUMBER:
        if brand:
            by_part = set(index.by_part.get((part, brand), ()))
        else:
            # No brand: the part number alone is not enough to be sure; staff decide.
            by_part = index.by_part_any_brand.get(part, set()) - index.has_supplier
            if by_part:
                return by_part, "no_brand"
            by_part = set()
    code = normalise_barcode(offer.barcode)
    by_barcode = set(index.by_barcode.get(code, ())) if code else set()
    by_part -= index.has_supplier
    by_barcode -= index.has_supplier
    if by_part and by_barcode and by_part != by_barcode:
        return by_part | by_barcode, "conflict"
    if by_part:
        return by_part, "part"
    return by_barcode, "barcode"


def match_offers(supplier: Supplier, offer_ids: list[int]) -> list[int]:
    """Link the new offers `offer_ids` of `supplier` to products where certain, make new
    products of the unmatched ones when the supplier says so; the rest wait in the match
    queue. Returns the pks of the products an offer was linked to (their snapshot is
    written by the caller, offers.upsert_offers)."""
    pending = list(SupplierOffer.objects.filter(pk__in=offer_ids, product=None))
    if not pending:
        return []
    index = _index_for(supplier)
    links: dict[int, int] = {}
    unmatched: list[SupplierOffer] = []
    queued = 0
    for offer in pending:
        found, how = candidates(offer, index)
        if len(found) == 1 and how in ("part", "barcode"):
            product_id = next(iter(found))
            links[offer.pk] = product_id
            index.has_supplier.add(product_id)  # a second offer of this file is not linked
        elif found:
            queued += 1  # ambiguous: staff decide
        else:
            unmatched.append(offer)
    if links:
        linked = [SupplierOffer(pk=offer_id, product_id=pid) for offer_id, pid in links.items()]
        SupplierOffer.objects.bulk_update(linked, ["product"], batch_size=CHUNK)
    created: list[int] = []
    if unmatched and getattr(supplier, "create_unmatched", True):
        created = create_products_from_offers(supplier, unmatched)
        index.has_supplier.update(created)
    else:
        queued += len(unmatched)
    logger.info(
        "%s: %d new offers: %d matched, %d new products, %d wait in the match queue",
        supplier.code,
        len(pending),
        len(links),
        len(created),
        queued,
    )
    # Linked products re-choose their offer (the caller writes their snapshot); products
    # made here already hold their offer's snapshot, as Al-Style's new products do.
    return sorted(set(links.values()))


def find_products(supplier: Supplier, offers) -> dict[str, int]:
    """For new offers of `supplier` that otherwise make their own product (Al-Style's): the
    product each is certainly for, by the rules above, among the products other suppliers'
    offers supply — {offer article: product pk}. Only a certain match (one product, by part
    number and brand or by barcode, with no offer of `supplier` yet); the rest are not
    returned and make their product as before (a second product, never a silent merge)."""
    if not SupplierOffer.objects.exclude(supplier=supplier).exclude(product=None).exists():
        return {}  # nothing to match against (a shop with Al-Style alone)
    index = _index_for(supplier)
    found: dict[str, int] = {}
    for offer in offers:
        products, how = candidates(offer, index)
        if len(products) == 1 and how in ("part", "barcode"):
            found[offer.article] = product_id = next(iter(products))
            index.has_supplier.add(product_id)  # a second offer of this page is not linked
    if found:
        logger.info("%s: %d new offers joined existing products", supplier.code, len(found))
    return found


def create_products_from_offers(supplier: Supplier, offers: list[SupplierOffer]) -> list[int]:
    """New products, one per offer, priced by the rules; SKU from the supplier's prefix;
    the offer is their chosen offer from the start (so the snapshot written here is
    already right and the caller's snapshot pass writes nothing). A product already stored
    under the offer's product article is linked instead, not doubled."""
    lookups = offer_service.Lookups()
    now = timezone.now()
    by_article = {offer_service.product_article(supplier, o.article): o for o in offers}
    have = dict(Product.objects.filter(article__in=list(by_article)).values_list("article", "pk"))
    rows = []
    for article, offer in by_article.items():
        if article in have:
            continue
        values = offer_service.snapshot_values(offer, lookups, alstyle=False, create=True)
        values.setdefault("category_id", None)  # the category tree is Al-Style's
        quote = lookups.pricer.quote(SimpleNamespace(manual_price=None, **values))
        rows.append(
            {
                "article": article,
                "sku": derive_sku(offer.article, supplier.sku_prefix or supplier.code[:4]),
                "first_seen": now,
                "kaspi_price": quote.price,
                "price_rule_id": quote.rule.pk if quote.rule else None,
                **values,
            }
        )
    if rows:
        offer_service.create_products(rows)
    ids = dict(Product.objects.filter(article__in=list(by_article)).values_list("article", "pk"))
    made = [by_article[row["article"]].pk for row in rows]
    for start in range(0, len(made), CHUNK):
        # One statement per chunk: each new product names its offer (Product.offer); no
        # ORDER BY in the subquery, or PostgreSQL walks the ordering index per offer.
        SupplierOffer.objects.filter(pk__in=made[start : start + CHUNK]).update(
            product_id=Subquery(
                Product.objects.filter(offer_id=OuterRef("pk")).order_by().values("pk")[:1]
            )
        )
    relinked = [
        SupplierOffer(pk=offer.pk, product_id=ids[article])
        for article, offer in by_article.items()
        if article in have
    ]
    if relinked:
        SupplierOffer.objects.bulk_update(relinked, ["product"], batch_size=CHUNK)
    for article, offer in by_article.items():
        offer.product_id = ids[article]
    return sorted(ids.values())


# --- Staff: the match queue ------------------------------------------------------------------


def queue(supplier: Supplier | None = None):
    """Offers waiting for staff: listed, of a supplier other than Al-Style, no product."""
    offers = MatchQueueOffer.objects.all()
    return offers.filter(supplier=supplier) if supplier else offers


class MatchError(ValueError):
    pass


def link_offer(*, offer: SupplierOffer, product: Product, user=None) -> Product:
    """Staff link a queued offer to a product; the product re-chooses its offer; audited."""
    with transaction.atomic():
        offer = SupplierOffer.objects.select_for_update().get(pk=offer.pk)
        if offer.product_id is not None:
            raise MatchError(_("The offer already supplies a product."))
        if SupplierOffer.objects.filter(product=product, supplier_id=offer.supplier_id).exists():
            raise MatchError(_("The product already has an offer from this supplier."))
        offer.product = product
        offer.save(update_fields=["product"])
        offer_service.write_snapshots([product.pk])
    audit(
        user=user,
        action="offer.link",
        obj=product,
        after={"offer": offer.pk, "supplier": offer.supplier_id, "article": offer.article},
    )
    return product


def create_product_from_offer(*, offer: SupplierOffer, user=None) -> Product:
    """Staff make a new product of a queued offer (SKU from the supplier's prefix); audited."""
    with transaction.atomic():
        offer = (
            SupplierOffer.objects.select_for_update().select_related("supplier").get(pk=offer.pk)
        )
        if offer.product_id is not None:
            raise MatchError(_("The offer already supplies a product."))
        (product_id,) = create_products_from_offers(offer.supplier, [offer]) or (None,)
        offer_service.write_snapshots([product_id])
        product = Product.objects.get(pk=product_id)
    audit(
        user=user,
        action="offer.create_product",
        obj=product,
        after={"offer": offer.pk, "supplier": offer.supplier_id, "sku": product.sku},
    )
    return product
