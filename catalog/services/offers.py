"""Supplier offers: the one "upsert from remote" for every supplier, and the choice of the
offer each product shows.

The shape (issue 18 item 8): an adapter (catalog/suppliers/) fetches a page and parses it
into plain `OfferRecord`s; `upsert_offers` compares their content hashes with the stored
ones in ONE narrow query, bulk-inserts the new offers, bulk-updates the changed ones,
counts created / updated / unchanged on the run, and refreshes the snapshot of the products
those offers supply. An unchanged page costs one SELECT and no write.

The product snapshot: `Product` keeps the supplier columns it always had (price1, price2,
quantity, quantity_raw, available, listed, price_on_request, is_new, article_pn, name …)
as a copy of its CHOSEN offer (`Product.offer`), so the price list, pricing, the repricer
and the admin read one table; only the naming columns (name, full name, brand) come from
the product's first offer, so the name Kaspi knows does not change when the chosen offer
switches supplier. `write_snapshots` is the only writer of those columns.

The choice rule (`rank_key`, documented in the README):

1. the offer staff pinned (`Product.pinned_offer`), while its supplier still lists it;
2. otherwise: listed offers of enabled suppliers first; among them offers in stock first;
   then the lowest dealer price (a price on request counts as the highest); then the
   supplier's priority (lower first: staff's preferred supplier); then the oldest offer.

New offers of Al-Style create their product as before (SKU derived from the article,
priced by the rules). New offers of other suppliers go to matching
(catalog/services/matching.py, `match_offers`); until something links them they wait with
`product` empty: the match queue.
"""

import json
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from types import SimpleNamespace

from django.db import connection, transaction
from django.utils import timezone

from backoffice.core.db import allocate_ids, insert_rows, refresh_statistics, update_objects

from ..models import Brand, Category, Product, Supplier, SupplierOffer
from ..rules import has_price
from ..skus import derive_sku
from .pricing import PRICING_FIELDS, Pricer, flag_price_anomaly

logger = logging.getLogger(__name__)

# Offer columns an upsert rewrites (first_seen, supplier, article and product stay).
OFFER_FIELDS = [
    "part_number",
    "barcode",
    "name",
    "full_name",
    "brand",
    "category",
    "supplier_category_id",
    "dealer_price",
    "retail_price",
    "quantity",
    "quantity_raw",
    "warehouse_stock",
    "is_new",
    "price_on_request",
    "raw",
    "data_hash",
    "last_seen",
    "listed",
]

# Product columns that are the snapshot of the chosen offer.
SNAPSHOT_FIELDS = [
    "article_pn",
    "name",
    "full_name",
    "category",
    "brand",
    "price1",
    "price2",
    "quantity",
    "quantity_raw",
    "is_new",
    "price_on_request",
    "listed",
    "available",
    "data_hash",
    "raw",
    "last_seen",
    "offer",
]

CHUNK = 500
_NO_PRICE = float("inf")


@dataclass
class Lookups:
    """What turning offers into product columns needs, loaded once per run."""

    pricer: Pricer = field(default_factory=Pricer)
    category_map: dict | None = None  # Al-Style category id → Category pk
    brand_map: dict | None = None  # brand name → Brand pk
    suppliers: dict | None = None  # Supplier pk → Supplier

    def categories(self) -> dict:
        if self.category_map is None:
            self.category_map = dict(Category.objects.values_list("supplier_id", "pk"))
        return self.category_map

    def brands(self) -> dict:
        if self.brand_map is None:
            self.brand_map = dict(Brand.objects.values_list("name", "pk"))
        return self.brand_map

    def supplier(self, pk) -> Supplier:
        if self.suppliers is None or pk not in self.suppliers:
            self.suppliers = {s.pk: s for s in Supplier.objects.all()}
        return self.suppliers[pk]

    def brand_id(self, name: str, *, create: bool) -> int | None:
        if not name:
            return None
        brands = self.brands()
        if name not in brands and create:
            brands[name] = Brand.objects.get_or_create(name=name)[0].pk
        return brands.get(name)


# --- Upsert ----------------------------------------------------------------------------------


def upsert_offers(
    supplier: Supplier,
    records_with_raw: list,
    *,
    run,
    dry_run: bool = False,
    lookups: Lookups | None = None,
) -> set[int]:
    """Write one page of (OfferRecord, raw) pairs of `supplier`: new offers inserted,
    changed ones updated, unchanged ones skipped, and the snapshot of the products they
    supply refreshed. Counts `created`, `updated`, `unchanged` on `run`. Returns the pks of
    the products whose snapshot was refreshed or created (nothing on a dry run)."""
    if not records_with_raw:
        return set()
    lookups = lookups or Lookups()
    by_article = {record.article: (record, raw) for record, raw in records_with_raw}
    digests = {article: record.data_hash() for article, (record, _raw) in by_article.items()}
    # Cheap first pass: only hashes. Full rows are loaded for changed offers alone.
    # An Al-Style offer without a product (its product was deleted) counts as changed.
    needs_product = supplier.code == Supplier.ALSTYLE
    known = {
        article: (digest, listed and not (needs_product and product_id is None))
        for article, digest, listed, product_id in SupplierOffer.unordered.filter(
            supplier=supplier, article__in=list(by_article)
        ).values_list("article", "data_hash", "listed", "product_id")
    }
    changed = []
    unchanged = 0
    for article, digest in digests.items():
        if known.get(article) == (digest, True):
            unchanged += 1
        else:
            changed.append(article)
    run.count("unchanged", unchanged)
    if not changed:
        return set()
    now = timezone.now()
    new_rows = []
    updated: list[SupplierOffer] = []
    existing = {
        offer.article: offer
        for offer in SupplierOffer.unordered.filter(
            supplier=supplier, article__in=[a for a in changed if a in known]
        )
    }
    for article in changed:
        record, raw = by_article[article]
        values = offer_values(record, raw, digests[article], now)
        offer = existing.get(article)
        if offer is None:
            new_rows.append(
                {"supplier_id": supplier.pk, "article": article, "first_seen": now, **values}
            )
        else:
            if record.warehouse_stock is None:
                # The full listing carries no warehouse field: keep the split the last
                # stock refresh read instead of clearing it until the next one.
                values.pop("warehouse_stock")
            for name, value in values.items():
                setattr(offer, name, value)
            updated.append(offer)
    run.count("created", len(new_rows))
    run.count("updated", len(updated))
    if dry_run:
        return set()
    with transaction.atomic():
        created: list[int] = []
        orphans = [o for o in updated if o.product_id is None]
        if orphans and supplier.code == Supplier.ALSTYLE:
            # Al-Style offers whose product was deleted: they get their product back.
            ids, created = _alstyle_products(supplier, orphans, lookups, now)
            for offer in orphans:
                offer.product_id = ids[offer.article]
        affected: set[int] = {o.product_id for o in updated if o.product_id} - set(created)
        if updated:
            update_objects(SupplierOffer, updated, [*OFFER_FIELDS, "product"])
        if created:
            _link_chosen(supplier, created)
        if new_rows:
            affected |= _insert_new_offers(supplier, new_rows, lookups=lookups, now=now)
        write_snapshots(affected, lookups=lookups)
    if new_rows:  # a first import: the next pages' lookups need plans for a full table
        refresh_statistics(SupplierOffer, Product)
    return affected


def offer_values(record, raw, digest: str, now) -> dict:
    """The supplier-owned columns of an offer, by attribute name."""
    category_id = record.category_id
    return {
        "part_number": record.part_number,
        "barcode": record.barcode,
        "name": record.name,
        "full_name": record.full_name,
        "brand": record.brand,
        "category": record.category[:255],
        "supplier_category_id": "" if category_id is None else str(category_id)[:64],
        "dealer_price": record.dealer_price,
        "retail_price": record.retail_price,
        "quantity": record.quantity,
        "quantity_raw": record.quantity_raw,
        "warehouse_stock": dict(record.warehouse_stock or {}),
        "is_new": record.is_new,
        "price_on_request": record.price_on_request,
        "raw": raw if isinstance(raw, str) else json.dumps(raw, ensure_ascii=False),
        "data_hash": digest,
        "last_seen": now,
        "listed": True,
    }


def _insert_new_offers(supplier, rows: list[dict], *, lookups: Lookups, now) -> set[int]:
    """Insert new offers. Al-Style's bring their product (an existing product of the same
    article is linked, not duplicated); other suppliers' go to matching."""
    affected: set[int] = set()
    created: list[int] = []
    if supplier.code == Supplier.ALSTYLE:
        # On PostgreSQL the offers' ids are taken first, so each new product is inserted
        # pointing at its offer (no UPDATE after); elsewhere they are linked after.
        offer_ids = allocate_ids(SupplierOffer, len(rows))
        for row, pk in zip(rows, offer_ids or (), strict=False):
            row["id"] = pk
        ids, created = _alstyle_products(
            supplier, [SimpleNamespace(**row) for row in rows], lookups, now
        )
        for row in rows:
            row["product_id"] = ids[row["article"]]
        affected |= set(ids.values()) - set(created)
        if offer_ids:
            created = []
    insert_rows(SupplierOffer, rows)
    if created:
        _link_chosen(supplier, created)
    if supplier.code != Supplier.ALSTYLE:
        offer_ids = list(
            SupplierOffer.unordered.filter(
                supplier=supplier, article__in=[row["article"] for row in rows], product=None
            ).values_list("pk", flat=True)
        )
        affected |= set(hand_to_matching(supplier, offer_ids))
    return affected


def _alstyle_products(
    alstyle: Supplier, offers, lookups: Lookups, now
) -> tuple[dict[str, int], list[int]]:
    """The product of each Al-Style offer (by article): the existing product of that
    article; else the one product another supplier's offer already supplies that matching
    is certain of (same part number and brand, or barcode: a product first made from a
    price file); else a new one made from the offer (SKU derived from the article, priced
    by the rules). Returns ({article: product pk}, pks of the products created)."""
    articles = [offer.article for offer in offers]
    ids = dict(Product.objects.filter(article__in=articles).values_list("article", "pk"))
    unknown = [offer for offer in offers if offer.article not in ids]
    if unknown and _finders:
        for find in _finders:
            ids.update(find(alstyle, [o for o in unknown if o.article not in ids]))
    to_create = []
    for offer in offers:
        if offer.article in ids:
            continue
        values = snapshot_values(offer, lookups, alstyle=True, create=True)
        if values["offer_id"] is None:
            values.pop("offer_id")
        quote = lookups.pricer.quote(SimpleNamespace(manual_price=None, **values))
        to_create.append(
            {
                "article": offer.article,
                "sku": derive_sku(offer.article),
                "first_seen": now,
                "kaspi_price": quote.price,
                "price_rule_id": quote.rule.pk if quote.rule else None,
                **values,
            }
        )
    if not to_create:
        return ids, []
    create_products(to_create)
    made = dict(
        Product.objects.filter(article__in=[row["article"] for row in to_create]).values_list(
            "article", "pk"
        )
    )
    ids.update(made)
    return ids, list(made.values())


def _link_chosen(supplier, product_ids: list[int]) -> None:
    """New products made from one offer: that offer is the chosen one. One UPDATE … FROM
    per chunk (PostgreSQL, and SQLite ≥ 3.33): a correlated subquery made PostgreSQL scan
    a freshly filled table per row, and bulk_update's CASE costs ~0.5 ms a row in Python."""
    product = connection.ops.quote_name(Product._meta.db_table)
    offer = connection.ops.quote_name(SupplierOffer._meta.db_table)
    # Only quoted model table names are formatted in; the values travel as parameters.
    sql = (
        f"UPDATE {product} SET offer_id = o.id FROM {offer} o "  # noqa: S608
        f"WHERE o.product_id = {product}.id AND o.supplier_id = %s AND {product}.id IN ({{}})"
    )
    with connection.cursor() as cursor:
        for start in range(0, len(product_ids), CHUNK):
            chunk = product_ids[start : start + CHUNK]
            cursor.execute(sql.format(", ".join(["%s"] * len(chunk))), [supplier.pk, *chunk])


def create_products(rows: list[dict]) -> None:
    """Insert new products; a derived SKU that is already taken gets a numeric suffix."""
    taken = set(
        Product.objects.filter(sku__in=[row["sku"] for row in rows]).values_list("sku", flat=True)
    )
    for row in rows:
        if row["sku"] in taken:
            base = row["sku"][:16]
            suffix = 2
            while f"{base}X{suffix}" in taken:
                suffix += 1
            logger.warning("SKU clash for article %s; using %sX%s", row["article"], base, suffix)
            row["sku"] = f"{base}X{suffix}"
        taken.add(row["sku"])
    insert_rows(Product, rows)


def product_article(supplier: Supplier, article: str) -> str:
    """`Product.article` of a product first created from `supplier`'s offer: the Al-Style
    code itself for Al-Style, `<code>:<article>` for the others (hashed to fit 32)."""
    if supplier.code == Supplier.ALSTYLE:
        return article
    value = f"{supplier.code}:{article}"
    if len(value) <= 32:
        return value
    import hashlib

    digest = hashlib.md5(value.encode(), usedforsecurity=False).hexdigest()[:10]
    return f"{value[:21]}~{digest}"


# The matcher new offers of other suppliers are handed to: catalog/services/matching.py
# registers `match_offers` here when the app is ready (catalog/apps.py), so this module
# does not import the one that builds on it (no import cycle, tests/test_layers.py).
_matchers: list = []


def register_matcher(match) -> None:
    """`match(supplier, offer_ids)` → pks of the products it linked offers to."""
    if match not in _matchers:
        _matchers.append(match)


# Finders (matching.find_products): {article: product pk} for new Al-Style offers that a
# product of another supplier's offer certainly is, so no second product is made.
_finders: list = []


def register_finder(find) -> None:
    """`find(supplier, offers)` → {offer article: product pk} for the offers it is sure of."""
    if find not in _finders:
        _finders.append(find)


def hand_to_matching(supplier: Supplier, offer_ids: list[int]):
    """New offers of a supplier other than Al-Style go to the registered matcher (it links
    them to products, returning the pks of the products it linked); without one they wait
    in the match queue."""
    if not offer_ids or not _matchers:
        return ()
    linked: set[int] = set()
    for match in _matchers:
        linked |= set(match(supplier, offer_ids) or ())
    return linked


# --- Vanished offers ---------------------------------------------------------------------------


def listed_articles(supplier: Supplier) -> set[str]:
    return set(
        SupplierOffer.unordered.filter(supplier=supplier, listed=True).values_list(
            "article", flat=True
        )
    )


def mark_offers_vanished(
    supplier: Supplier,
    seen: set[str] | None = None,
    *,
    articles: list[str] | None = None,
    lookups: Lookups | None = None,
) -> int:
    """Unlist `supplier`'s offers a complete listing did not return (`seen`: the articles
    it returned), or exactly `articles`; refresh the products they supplied (a product with
    another listed offer switches to it, one without goes off sale). Returns how many
    offers went. Never deletes: orders reference the products."""
    if articles is None:
        articles = sorted(listed_articles(supplier) - set(seen or ()))
    now = timezone.now()
    gone = 0
    products: set[int] = set()
    for start in range(0, len(articles), CHUNK):
        chunk = articles[start : start + CHUNK]
        offers = SupplierOffer.unordered.filter(supplier=supplier, article__in=chunk, listed=True)
        products |= set(offers.exclude(product=None).values_list("product_id", flat=True))
        gone += offers.update(listed=False, quantity=0, data_hash="", last_seen=now)
    write_snapshots(products, lookups=lookups)
    return gone


# --- Stock and price checks --------------------------------------------------------------------


def apply_stock(
    supplier: Supplier,
    articles: list[str],
    answer: dict,
    *,
    run,
    dry_run: bool = False,
    lookups: Lookups | None = None,
) -> None:
    """Quick stock-and-price answers (`StockPrice` by article) onto the offers of
    `articles`; counts fetched / updated / unchanged / missing. A changed offer loses its
    hash (the next full listing rewrites it once) and its product's snapshot is refreshed."""
    changed = []
    for offer in SupplierOffer.unordered.filter(supplier=supplier, article__in=articles):
        stock = answer.get(offer.article)
        if stock is None:
            run.count("missing")
            continue
        run.count("fetched")
        new = (stock.dealer_price, stock.retail_price, stock.quantity, stock.quantity_raw)
        old = (offer.dealer_price, offer.retail_price, offer.quantity, offer.quantity_raw)
        warehouses = stock.warehouse_stock
        if warehouses is None:  # the answer does not say: what we had stays
            warehouses = offer.warehouse_stock
        if new == old and warehouses == offer.warehouse_stock:
            run.count("unchanged")
            continue
        offer.dealer_price, offer.retail_price, offer.quantity, offer.quantity_raw = new
        offer.warehouse_stock = warehouses
        offer.price_on_request = stock.price_on_request
        offer.data_hash = ""
        changed.append(offer)
    run.count("updated", len(changed))
    if changed and not dry_run:
        with transaction.atomic():
            update_objects(
                SupplierOffer,
                changed,
                ["dealer_price", "retail_price", "quantity", "quantity_raw", "price_on_request"]
                + ["warehouse_stock", "data_hash"],
            )
            write_snapshots({o.product_id for o in changed if o.product_id}, lookups=lookups)


# --- The chosen offer and the product snapshot -------------------------------------------------


def rank_key(offer: SupplierOffer, supplier: Supplier) -> tuple:
    """Sort key of the choice rule (smallest wins; the pin is applied before)."""
    listed = offer.listed and supplier.enabled
    price = offer.dealer_price if has_price(offer.dealer_price) else _NO_PRICE
    return (
        not listed,
        not (listed and offer.quantity > 0),
        price,
        supplier.priority,
        offer.first_seen,
        offer.pk,
    )


def pick_offer(product: Product, offers: list[SupplierOffer], lookups: Lookups):
    """The offer `product` shows, by the choice rule; None when it has no offer."""
    if not offers:
        return None
    for offer in offers:
        if (
            offer.pk == product.pinned_offer_id
            and offer.listed
            and lookups.supplier(offer.supplier_id).enabled
        ):
            return offer
    return min(offers, key=lambda o: rank_key(o, lookups.supplier(o.supplier_id)))


def snapshot_values(offer, lookups: Lookups, *, alstyle: bool, create: bool) -> dict:
    """Product columns (attribute names) copied from the chosen offer. The category tree
    is Al-Style's: only an Al-Style offer sets the product's category."""
    values = {
        "article_pn": offer.part_number[:255],
        "name": offer.name,
        "full_name": offer.full_name,
        "brand_id": lookups.brand_id(offer.brand, create=create),
        "price1": offer.dealer_price,
        "price2": offer.retail_price,
        "quantity": offer.quantity,
        "quantity_raw": offer.quantity_raw,
        "is_new": offer.is_new,
        "price_on_request": offer.price_on_request,
        "listed": offer.listed,
        "available": offer.listed and offer.quantity > 0,
        "data_hash": offer.data_hash,
        "raw": offer.raw,
        "last_seen": offer.last_seen,
        "offer_id": getattr(offer, "pk", None) or getattr(offer, "id", None),
    }
    if alstyle:
        code = offer.supplier_category_id
        values["category_id"] = lookups.categories().get(int(code)) if code.isdigit() else None
    return values


def naming_offer(product: Product, supplied: list, lookups: Lookups):
    """The offer the product was made from: the one whose product article it carries
    (`product_article`), else its earliest offer. Not simply the earliest `first_seen`: an
    offer that waited in the match queue for weeks is older than the product it joins."""
    for offer in supplied:
        if product_article(lookups.supplier(offer.supplier_id), offer.article) == product.article:
            return offer
    return min(supplied, key=lambda o: (o.first_seen, o.pk))


def naming_values(offer, lookups: Lookups) -> dict:
    """The product columns that name it, from `offer` (the product's first offer)."""
    return {
        "name": offer.name,
        "full_name": offer.full_name,
        "brand_id": lookups.brand_id(offer.brand, create=True),
    }


def write_snapshots(product_ids, *, lookups: Lookups | None = None) -> int:
    """Choose each product's offer and copy it onto the product (with pricing, as a changed
    supplier price has always been handled); products whose snapshot is already right are
    not written. Returns how many products were written."""
    ids = sorted(pk for pk in product_ids if pk)
    if not ids:
        return 0
    lookups = lookups or Lookups()
    written = 0
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        offers = defaultdict(list)
        for offer in SupplierOffer.unordered.filter(product_id__in=chunk):
            offers[offer.product_id].append(offer)
        changed = []
        for product in Product.objects.filter(pk__in=chunk):
            supplied = offers.get(product.pk, [])
            offer = pick_offer(product, supplied, lookups)
            if offer is None:
                continue
            alstyle = lookups.supplier(offer.supplier_id).code == Supplier.ALSTYLE
            values = snapshot_values(offer, lookups, alstyle=alstyle, create=True)
            origin = naming_offer(product, supplied, lookups)
            if origin.pk != offer.pk:
                # The name Kaspi knows the product by stays when the chosen offer switches
                # supplier: name, full name and brand follow the offer it was made from.
                values.update(naming_values(origin, lookups))
            if all(getattr(product, name) == value for name, value in values.items()):
                continue
            old_price1 = product.price1
            for name, value in values.items():
                setattr(product, name, value)
            flag_price_anomaly(product, old_price1)
            lookups.pricer.apply(product)
            changed.append(product)
        if changed:
            update_objects(Product, changed, SNAPSHOT_FIELDS + PRICING_FIELDS)
            written += len(changed)
    return written


def choose_offer(product: Product, *, lookups: Lookups | None = None):
    """Re-choose `product`'s offer by the rule and write its snapshot; returns the offer."""
    write_snapshots([product.pk], lookups=lookups)
    product.refresh_from_db()
    return product.offer


def pin_offer(product: Product, offer: SupplierOffer | None, *, user=None) -> Product:
    """Staff pin one of the product's offers (None: back to the rule); audited."""
    from backoffice.core.audit import audit

    if offer is not None and offer.product_id != product.pk:
        raise ValueError("the offer does not supply this product")
    before = {"pinned_offer": product.pinned_offer_id, "offer": product.offer_id}
    with transaction.atomic():
        Product.objects.filter(pk=product.pk).update(pinned_offer=offer)
        product.pinned_offer = offer
        choose_offer(product)
    audit(
        user=user,
        action="product.pin_offer",
        obj=product,
        before=before,
        after={"pinned_offer": product.pinned_offer_id, "offer": product.offer_id},
    )
    return product
