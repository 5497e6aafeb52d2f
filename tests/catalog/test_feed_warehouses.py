"""Pickup points sell the units of their supplier warehouses (KASPI_STORE_WAREHOUSES):
Al-Style's `warehouse` field (shape unconfirmed: an object or a list) fills the offer's
stock per warehouse; the price list gives each point its warehouses' free units, never
more than the product's free units in all; products without warehouse data keep the
shares (issue 14 item 6)."""

import logging
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from lxml import etree

from catalog.clients.records import parse_warehouse_stock
from catalog.models import SupplierOffer
from catalog.services.feed import build_feed, feed_path
from catalog.services.sync import run_stock_sync
from tests import factories

API = "https://api.al-style.kz/api/"
NS = {"k": "kaspiShopping"}


def points(sku):
    tree = etree.parse(str(feed_path()))
    offer = next(o for o in tree.getroot().iterfind("k:offers/k:offer", NS) if o.get("sku") == sku)
    return {
        a.get("storeId"): (a.get("available"), int(a.get("stockCount")))
        for a in offer.iterfind(".//k:availability", NS)
    }


@pytest.fixture
def two_points(settings):
    settings.KASPI_STORE_IDS = ["PP1", "PP2"]
    settings.KASPI_STORE_SHARES = {"PP1": Decimal(70), "PP2": Decimal(30)}
    settings.KASPI_STORE_WAREHOUSES = {"PP1": ("panfilov",), "PP2": ("almaty2", "almaty3")}
    return settings


def with_warehouses(stock, **kw):
    product = factories.product(**kw)
    SupplierOffer.objects.filter(pk=product.offer_id).update(warehouse_stock=stock)
    return product


@pytest.mark.parametrize(
    "field",
    [
        {"panfilov": 3, "almaty2": ">50"},
        [{"code": "panfilov", "quantity": 3}, {"name": "almaty2", "quantity": ">50"}],
    ],
)
def test_both_shapes_of_the_warehouse_field_read_the_same(field):
    assert parse_warehouse_stock(field) == {"panfilov": 3, "almaty2": 50}


@pytest.mark.parametrize("field", ["panfilov", 7, [1, 2], {"panfilov": "many"}, [{"q": 1}]])
def test_anything_else_is_no_warehouse_data_with_a_warning(field, caplog):
    with caplog.at_level(logging.WARNING, logger="catalog.clients.records"):
        assert parse_warehouse_stock(field, article="20908") == {}
    assert "20908" in caplog.text


def test_the_stock_sync_fills_the_offers_stock_per_warehouse(mocked_http):
    factories.product(article="1", quantity=5, price1=100, price2=150)
    factories.product(article="2", quantity=5, price1=100, price2=150)
    mocked_http.get(
        API + "quantity-price",
        json={
            "data": {
                "1": {"quantity": 5, "price1": 100, "price2": 150, "warehouse": {"panfilov": 5}},
                "2": {
                    "quantity": 5,
                    "price1": 100,
                    "price2": 150,
                    "warehouse": [{"code": "almaty2", "quantity": 2}, {"code": "x", "quantity": 3}],
                },
            }
        },
    )

    run_stock_sync()

    stock = dict(SupplierOffer.objects.values_list("article", "warehouse_stock"))
    assert stock == {"1": {"panfilov": 5}, "2": {"almaty2": 2, "x": 3}}


def test_each_point_sells_its_warehouses_units_within_the_free_units(two_points):
    # 6 in stock, 1 reserved: 5 free. PP1's warehouse has 4, PP2's two have 1 + 2.
    with_warehouses(
        {"panfilov": 4, "almaty2": 1, "almaty3": 2, "other": 9},
        sku="AS1",
        quantity=6,
        reserved_quantity=1,
        kaspi_price=5000,
    )
    with_warehouses({"panfilov": 1, "almaty2": 1}, sku="AS2", quantity=2, kaspi_price=5000)

    build_feed()

    assert points("AS1") == {"PP1": ("yes", 4), "PP2": ("yes", 1)}  # 5 free, not 7
    assert points("AS2") == {"PP1": ("yes", 1), "PP2": ("yes", 1)}


def test_a_product_without_warehouse_data_keeps_the_shares(two_points):
    factories.product(sku="AS3", quantity=10, kaspi_price=5000)  # no warehouse data
    with_warehouses({"elsewhere": 10}, sku="AS4", quantity=10, kaspi_price=5000)  # unmapped

    build_feed()

    assert points("AS3") == {"PP1": ("yes", 7), "PP2": ("yes", 3)}
    assert points("AS4") == {"PP1": ("yes", 7), "PP2": ("yes", 3)}


def test_without_the_setting_warehouse_data_changes_nothing(two_points):
    two_points.KASPI_STORE_WAREHOUSES = {}
    with_warehouses({"panfilov": 1, "almaty2": 9}, sku="AS5", quantity=10, kaspi_price=5000)

    build_feed()

    assert points("AS5") == {"PP1": ("yes", 7), "PP2": ("yes", 3)}


def _settings_with(**env):
    clean = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    code = "import backoffice.settings as s; print(s.KASPI_STORE_WAREHOUSES)"
    return subprocess.run(  # noqa: S603
        [sys.executable, "-c", code],
        cwd=Path(__file__).resolve().parents[2],
        env={**clean, "DEBUG": "1", **env},
        capture_output=True,
        text=True,
    )


def test_the_setting_is_read_and_checked_at_start_up():
    good = _settings_with(KASPI_STORE_ID="PP1,PP2", KASPI_STORE_WAREHOUSES="PP1=a+b,PP2=c")
    assert good.returncode == 0, good.stderr
    assert "{'PP1': ('a', 'b'), 'PP2': ('c',)}" in good.stdout
    bad = _settings_with(KASPI_STORE_ID="PP1", KASPI_STORE_WAREHOUSES="PP9=a")
    assert bad.returncode != 0
    assert "KASPI_STORE_WAREHOUSES" in bad.stderr


def test_the_product_page_shows_the_points_warehouse_units(two_points, staff_client):
    product = with_warehouses({"panfilov": 2, "almaty3": 1}, sku="AS6", quantity=3)

    page = staff_client.get(f"/admin/catalog/product/{product.pk}/change/").content.decode()

    assert "PP1 (panfilov): 2 · PP2 (almaty2+almaty3): 1" in page
