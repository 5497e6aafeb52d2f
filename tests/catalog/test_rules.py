""" "Price on request" is one rule (catalog/rules.py, issue 18.9); the parser uses it too."""

import pytest

from catalog.clients.records import ProductRecord
from catalog.rules import has_price, is_price_on_request


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
