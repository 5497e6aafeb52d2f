"""Small factories for tests (plain functions: no extra dependency)."""

import itertools

from catalog.models import Brand, Category, PriceRule, Product, Supplier, SupplierOffer

_seq = itertools.count(1)


def category(**kw) -> Category:
    n = next(_seq)
    kw.setdefault("supplier_id", 1000 + n)
    kw.setdefault("name", f"Category {n}")
    return Category.objects.create(**kw)


def brand(**kw) -> Brand:
    kw.setdefault("name", f"Brand {next(_seq)}")
    return Brand.objects.create(**kw)


def product(**kw) -> Product:
    n = next(_seq)
    kw.setdefault("article", str(50000 + n))
    kw.setdefault("sku", f"AS{kw['article']}")
    kw.setdefault("name", f"Product {n}")
    kw.setdefault("price1", 10000)
    kw.setdefault("price2", 12000)
    kw.setdefault("quantity", 5)
    kw.setdefault("available", kw["quantity"] > 0)
    with_offer = kw.pop("with_offer", True)
    product = Product.objects.create(**kw)
    if with_offer:
        offer_for(product)
    return product


def offer_for(product: Product, supplier: Supplier | None = None, **kw) -> SupplierOffer:
    """The supplier offer a product has (as the data migration gives every product):
    Al-Style's by default, copied from the product's columns and chosen."""
    supplier = supplier or Supplier.alstyle()
    values = {
        "article": product.article,
        "part_number": product.article_pn,
        "name": product.name,
        "full_name": product.full_name,
        "brand": product.brand.name if product.brand_id else "",
        "supplier_category_id": str(product.category.supplier_id) if product.category_id else "",
        "dealer_price": product.price1,
        "retail_price": product.price2,
        "quantity": product.quantity,
        "quantity_raw": product.quantity_raw,
        "is_new": product.is_new,
        "price_on_request": product.price_on_request,
        "raw": product.raw,
        "data_hash": product.data_hash,
        "first_seen": product.first_seen,
        "last_seen": product.last_seen,
        "listed": product.listed,
        **kw,
    }
    offer = SupplierOffer.objects.create(supplier=supplier, product=product, **values)
    if product.offer_id is None:
        Product.objects.filter(pk=product.pk).update(offer=offer)
        product.offer = offer
    return offer


def supplier(**kw) -> Supplier:
    n = next(_seq)
    kw.setdefault("code", f"sup{n}")
    kw.setdefault("name", f"Supplier {n}")
    kw.setdefault("kind", Supplier.Kind.PRICEFILE)
    kw.setdefault("sku_prefix", f"S{n}")
    return Supplier.objects.create(**kw)


def rule(**kw) -> PriceRule:
    kw.setdefault("name", f"Rule {next(_seq)}")
    return PriceRule.objects.create(**kw)


def element(article, **kw) -> dict:
    """A raw Al-Style element as the API sends it."""
    data = {
        "article": article,
        "article_pn": f"PN-{article}",
        "name": f"Товар {article}",
        "full_name": f"Товар {article} полное имя",
        "category": 3500,
        "brand": "Demo",
        "price1": 10000,
        "price2": 12000,
        "quantity": 5,
        "isnew": 0,
    }
    data.update(kw)
    return data


def alstyle_handler(elements: list[dict]):
    """A fake_server handler for a one-page Al-Style catalog of `elements`."""

    def handler(path, query, headers, body):
        if path.endswith("/categories"):
            return 200, [], 0
        if path.endswith("/brands"):
            return 200, {"data": []}, 0
        pagination = {"totalCount": len(elements), "totalPages": 1, "currentPage": 1}
        return 200, {"elements": elements, "pagination": pagination}, 0

    return handler


def alstyle_row(**kw) -> Supplier:
    """Set fields of Al-Style's Supplier row (its rate budget and schedule win over the
    ALSTYLE_* settings once it exists)."""
    supplier = Supplier.alstyle()
    Supplier.objects.filter(pk=supplier.pk).update(**kw)
    supplier.refresh_from_db()
    return supplier
