""" "Price on request" and "offerable" are each one rule (catalog/rules.py, issue 18.9): the
query the services filter by and the per-row check the price-list writer uses agree."""

import itertools

import pytest

from catalog.clients.records import ProductRecord
from catalog.models import OFFERABLE, Product
from catalog.rules import has_price, is_offerable, is_price_on_request
from tests import factories

FIELDS = [
    "listed",
    "kaspi_enabled",
    "price_on_request",
    "kaspi_price",
    "below_cost",
    "available",
    "quantity",
    "reserved_quantity",
    "preorder_days",
]


@pytest.mark.parametrize(
    ("price", "on_request"), [(None, True), (0, True), (1, True), (2, False), (15990, False)]
)
def test_price_on_request_is_one_or_less(price, on_request):
    assert is_price_on_request(price) is on_request
    assert has_price(price) is not on_request


def test_the_parsed_record_uses_the_rule():
    record = ProductRecord(**{**_record_fields(), "price1": 1})
    assert record.price_on_request
    assert not ProductRecord(**{**_record_fields(), "price1": 2}).price_on_request


def test_the_query_and_the_row_check_agree():
    grid = itertools.product(
        [True, False],  # listed
        [True, False],  # kaspi_enabled
        [False, True],  # price_on_request
        [None, 1, 5000],  # kaspi_price
        [False, True],  # below_cost
        [True, False],  # available
        [(3, 0), (3, 3), (0, 0)],  # quantity, reserved
        [0, 5],  # preorder_days
    )
    expected = {}
    for n, (listed, enabled, on_request, price, below, avail, (qty, res), pre) in enumerate(grid):
        product = factories.product(
            article=str(90000 + n),
            listed=listed,
            kaspi_enabled=enabled,
            price_on_request=on_request,
            kaspi_price=price,
            below_cost=below,
            available=avail,
            quantity=qty,
            reserved_quantity=res,
            preorder_days=pre,
        )
        expected[product.pk] = is_offerable(**{f: getattr(product, f) for f in FIELDS})

    queried = set(Product.objects.filter(OFFERABLE).values_list("pk", flat=True))

    assert queried == {pk for pk, yes in expected.items() if yes}
    assert 0 < len(queried) < len(expected)


def _record_fields() -> dict:
    return {
        "article": "1",
        "article_pn": "",
        "name": "x",
        "full_name": "x",
        "category_id": None,
        "brand": "",
        "price1": 10,
        "price2": None,
        "quantity": 0,
        "quantity_raw": "0",
        "is_new": False,
    }
