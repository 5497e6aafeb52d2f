"""Small factories for tests (plain functions: no extra dependency)."""

import itertools

from catalog.models import Brand, Category, PriceRule, Product

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
    return Product.objects.create(**kw)


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
