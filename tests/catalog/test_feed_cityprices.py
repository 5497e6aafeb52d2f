import os
from datetime import UTC, datetime
from pathlib import Path

import pytest
from lxml import etree

from catalog.models import CityPrice
from catalog.services.feed import build_feed, feed_path
from tests import factories

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "feed"
NOW = datetime(2026, 1, 15, 4, 0, tzinfo=UTC)
NS = {"k": "kaspiShopping"}
ALMATY, ASTANA, SHYMKENT = "750000000", "710000000", "511010000"


@pytest.fixture
def shop(settings):
    settings.KASPI_COMPANY_NAME = "ТОО Демо Электроника"
    settings.KASPI_MERCHANT_ID = "DemoShop"
    settings.KASPI_STORE_IDS = ["PP1"]
    settings.KASPI_HOME_CITY = ALMATY
    settings.KASPI_CITIES = [ALMATY, ASTANA, SHYMKENT]
    differs = factories.product(article="10001", sku="10001", name="Ноутбук", kaspi_price=189990)
    same = factories.product(article="10002", sku="10002", name="Мышь", kaspi_price=4990)
    factories.product(article="10003", sku="10003", name="Монитор", kaspi_price=99990)
    off = factories.product(
        article="10004", sku="10004", name="Кабель", kaspi_price=2490, quantity=0, available=False
    )
    # Astana has its own price; Shymkent has none, so it gets the home price.
    CityPrice.objects.create(product=differs, city=ALMATY, price=189990)
    CityPrice.objects.create(product=differs, city=ASTANA, price=187500)
    # Applied prices equal in every city: one <price>.
    for city in (ALMATY, ASTANA, SHYMKENT):
        CityPrice.objects.create(product=same, city=city, price=4990)
    CityPrice.objects.create(product=off, city=ASTANA, price=2000)
    return settings


def golden(name):
    if os.environ.get("UPDATE_GOLDEN"):
        (FIXTURES / name).write_bytes(feed_path().read_bytes())
    return (FIXTURES / name).read_bytes()


def test_golden_cityprices_for_every_city_when_prices_differ(shop):
    build_feed(now=NOW)

    assert feed_path().read_bytes() == golden("golden_cityprices.xml")
    root = etree.parse(str(feed_path())).getroot()
    laptop = root.find("k:offers/k:offer[@sku='10001']", NS)
    assert laptop.find("k:price", NS) is None
    assert {c.get("cityId"): c.text for c in laptop.iterfind("k:cityprices/k:cityprice", NS)} == {
        ALMATY: "189990",
        ASTANA: "187500",
        SHYMKENT: "189990",
    }
    for offer in root.iterfind("k:offers/k:offer", NS):
        has_price = offer.find("k:price", NS) is not None
        has_city = offer.find("k:cityprices", NS) is not None
        assert has_price != has_city, offer.get("sku")  # exactly one of them


def test_golden_price_when_one_city_or_equal_prices(shop):
    shop.KASPI_CITIES = [ALMATY]

    build_feed(now=NOW)

    assert feed_path().read_bytes() == golden("golden_price_one_city.xml")
    root = etree.parse(str(feed_path())).getroot()
    assert root.find(".//k:cityprices", NS) is None
    assert root.findtext("k:offers/k:offer[@sku='10001']/k:price", namespaces=NS) == "189990"


def test_stale_city_prices_give_way_to_a_changed_home_price(shop):
    from catalog.models import Product

    Product.objects.filter(sku="10001").update(kaspi_price=179990)  # e.g. a manual price

    build_feed(now=NOW)

    root = etree.parse(str(feed_path())).getroot()
    laptop = root.find("k:offers/k:offer[@sku='10001']", NS)
    assert laptop.find("k:cityprices", NS) is None
    assert laptop.findtext("k:price", namespaces=NS) == "179990"
