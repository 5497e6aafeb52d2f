from decimal import Decimal

import pytest

from catalog.models import PriceRule, Product
from catalog.services.pricing import (
    Pricer,
    break_even_price,
    flag_price_anomaly,
    kaspi_price,
    reprice_products,
    round_price,
)
from tests import factories


def make(**kw) -> Product:
    defaults = {"price1": 10000, "price2": 12000, "category_id": None, "brand_id": None}
    defaults.update(kw)
    return Product(**defaults)


def rule(pk, **kw) -> PriceRule:
    kw.setdefault("name", f"r{pk}")
    return PriceRule(pk=pk, **kw)


@pytest.mark.parametrize(
    ("value", "rounding", "expected"),
    [
        ("11500", 1, 11500),
        ("11500.01", 1, 11501),
        ("11501", 10, 11510),
        ("11500", 10, 11500),
        ("11501", 100, 11600),
        ("11500", 990, 11990),
        ("11990", 990, 11990),
        ("11991", 990, 12990),
        ("500", 990, 990),
    ],
)
def test_round_price(value, rounding, expected):
    assert round_price(Decimal(value), rounding) == expected


@pytest.mark.parametrize(
    ("product_kw", "rule_kw", "expected"),
    [
        ({}, {"markup_percent": Decimal("15")}, 11500),
        ({}, {"markup_percent": Decimal("12.5"), "rounding": 100}, 11300),
        ({}, {"markup_fixed": 1990}, 11990),
        ({}, {"markup_percent": Decimal("1"), "min_margin": 2000}, 12000),
        ({}, {"base": "price2", "markup_percent": Decimal("0")}, 12000),
        ({}, {"markup_percent": Decimal("10"), "rounding": 990}, 11990),
        ({"price1": 1}, {"markup_percent": Decimal("10")}, None),
        ({"price_on_request": True}, {"markup_percent": Decimal("10")}, None),
        ({"price2": None}, {"base": "price2"}, None),
        ({"manual_price": 5555}, {"markup_percent": Decimal("10")}, 5555),
        ({"manual_price": 1}, {"markup_percent": Decimal("10")}, None),
    ],
    ids=[
        "markup-15%",
        "12.5%-round-100",
        "fixed-1990",
        "min-margin-wins",
        "base-retail",
        "ending-990",
        "price1-is-1",
        "price-on-request",
        "no-price2",
        "manual-override",
        "manual-1-refused",
    ],
)
def test_kaspi_price_table(product_kw, rule_kw, expected):
    quote = kaspi_price(make(**product_kw), [rule(1, **rule_kw)])
    assert quote.price == expected
    assert isinstance(quote.price, int | type(None))


def test_no_rule_means_no_price():
    quote = kaspi_price(make(), [])
    assert quote.price is None
    assert quote.reason == "no price rule applies"


def test_most_specific_rule_wins():
    rules = [
        rule(1, scope="all", markup_percent=Decimal(10), priority=100),
        rule(2, scope="band", band_min=5000, band_max=20000, markup_percent=Decimal(20)),
        rule(3, scope="brand", brand_id=7, markup_percent=Decimal(30)),
        rule(4, scope="category", category_id=50, markup_percent=Decimal(40)),
        rule(5, scope="category", category_id=51, markup_percent=Decimal(50)),
    ]
    path = (50, 51)  # 51 is a subcategory of 50

    assert kaspi_price(make(brand_id=7, category_id=51), rules, category_path=path).price == 15000
    assert kaspi_price(make(brand_id=7, category_id=50), rules, category_path=(50,)).price == 14000
    assert kaspi_price(make(brand_id=7), rules).price == 13000
    assert kaspi_price(make(), rules).price == 12000
    assert kaspi_price(make(price1=30000), rules).price == 33000


def test_ties_broken_by_priority_then_oldest():
    rules = [
        rule(1, markup_percent=Decimal(10), priority=1),
        rule(2, markup_percent=Decimal(20), priority=5),
        rule(3, markup_percent=Decimal(30), priority=5),
    ]
    assert kaspi_price(make(), rules).price == 12000


def test_inactive_rule_ignored():
    rules = [rule(1, markup_percent=Decimal(10), active=False)]
    assert kaspi_price(make(), rules).price is None


def test_reprice_stores_results_and_respects_frozen():
    category = factories.category()
    child = factories.category(parent=category)
    factories.rule(scope="category", category=category, markup_percent=20)
    normal = factories.product(category=child, price1=1000)
    frozen = factories.product(category=child, price1=1000, price_review=True, kaspi_price=1500)

    counts = reprice_products()

    normal.refresh_from_db()
    frozen.refresh_from_db()
    assert counts == {"checked": 2, "changed": 1}
    assert normal.kaspi_price == 1200
    assert frozen.kaspi_price == 1500

    reprice_products(queryset=Product.objects.filter(pk=frozen.pk), approve=True)
    frozen.refresh_from_db()
    assert (frozen.kaspi_price, frozen.price_review) == (1200, False)


def test_second_reprice_changes_nothing():
    factories.rule(markup_percent=10)
    factories.product()
    reprice_products()
    assert reprice_products()["changed"] == 0


# --- Break-even (issue 14.3) --------------------------------------------------------------


def test_break_even_covers_commission_and_tax(settings):
    settings.KASPI_COMMISSION_PERCENT = Decimal("12.5")
    settings.SALES_TAX_PERCENT = Decimal("3")
    # 100,000 / (1 - 0.155) = 118,343.19… → ceil
    assert break_even_price(dealer_price=100_000) == 118_344
    assert break_even_price(dealer_price=100_000, commission_percent=Decimal("10.9")) == 116_145
    assert break_even_price(dealer_price=845, tax_percent=Decimal(0), commission_percent=0) == 845
    assert break_even_price(dealer_price=1000, extra_costs=500) == 1776
    value = break_even_price(dealer_price=161_000)
    assert isinstance(value, int)
    assert value * (1 - 0.155) >= 161_000 > (value - 1) * (1 - 0.155)


def test_break_even_refuses_a_commission_that_takes_everything():
    with pytest.raises(ValueError, match="below 100"):
        break_even_price(dealer_price=1000, commission_percent=Decimal(97), tax_percent=3)


def test_frozen_price_below_break_even_is_held_until_approved():
    """Seen: a frozen price 92,621 ₸ below cost kept selling with available="yes"."""
    factories.rule(markup_percent=20)
    product = factories.product(price1=100_000, kaspi_price=120_000)
    Pricer().apply(product)
    assert product.below_cost is False

    product.price1 = 212_621  # dealer price more than doubled: the anomaly guard freezes
    assert flag_price_anomaly(product, 100_000) is True
    Pricer().apply(product)
    assert product.kaspi_price == 120_000  # still frozen
    assert product.below_cost is True
    product.save()

    reprice_products(queryset=Product.objects.filter(pk=product.pk), approve=True)
    product.refresh_from_db()
    assert product.price_review is False
    assert product.below_cost is False
    assert product.kaspi_price == 255_146  # 212,621 × 1.2, rounded up


def test_frozen_price_above_break_even_keeps_selling():
    product = factories.product(price1=100_000, kaspi_price=150_000, price_review=True)
    Pricer().apply(product)
    assert product.below_cost is False
