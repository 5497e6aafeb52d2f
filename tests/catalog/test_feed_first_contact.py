"""Issue 14.2 (shrink floor), 14.3 (frozen price below break-even) and 14.6 (several
pickup points never promise one unit twice)."""

import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from lxml import etree

from catalog.models import FeedBuild, Product
from catalog.services.feed import FeedValidationError, build_feed, feed_path, store_plan
from catalog.services.pricing import reprice_products
from tests import factories

NS = {"k": "kaspiShopping"}
ROOT = Path(__file__).resolve().parents[2]


def availabilities(sku):
    tree = etree.parse(str(feed_path()))
    offer = tree.getroot().find(f"k:offers/k:offer[@sku='{sku}']", NS)
    return {
        a.get("storeId"): (a.get("available"), int(a.get("stockCount")), a.get("preOrder"))
        for a in offer.iterfind("k:availabilities/k:availability", NS)
    }


# --- 14.2: the shrink floor counts offers on sale -----------------------------------------


def test_shrink_floor_counts_available_offers_not_listed_skus():
    """A supplier answer that unlists most products keeps them in the file with
    available="no": the offer count stays, but the offers on sale collapse."""
    for n in range(10):
        factories.product(article=str(n), sku=f"AS{n}", kaspi_price=5000)
    build_feed()
    before = feed_path().read_bytes()
    Product.objects.exclude(article__in=["0", "1", "2"]).update(listed=False, available=False)

    with pytest.raises(FeedValidationError, match="from 10 to 3 offers on sale"):
        build_feed()

    assert feed_path().read_bytes() == before
    assert FeedBuild.objects.first().status == FeedBuild.Status.HELD
    build = build_feed(force=True)
    assert (build.offers_total, build.offers_available) == (10, 3)


# --- 14.3: a frozen price below break-even is not sold ------------------------------------


def test_frozen_price_below_break_even_is_published_unavailable_until_approved(settings):
    settings.KASPI_STORE_IDS = ["PP1"]
    factories.rule(markup_percent=20)
    product = factories.product(article="1", sku="AS1", price1=100_000, kaspi_price=120_000)
    factories.product(article="2", sku="AS2", price1=1000, kaspi_price=1500, price_review=True)
    build_feed()
    assert availabilities("AS1") == {"PP1": ("yes", 5, None)}
    # The anomaly guard froze 120,000 ₸ while the dealer price rose to 212,621 ₸.
    Product.objects.filter(pk=product.pk).update(price1=212_621, price_review=True)

    build_feed()

    assert availabilities("AS1") == {"PP1": ("no", 0, None)}
    assert availabilities("AS2") == {"PP1": ("yes", 5, None)}  # frozen but above break-even
    product.refresh_from_db()
    assert product.below_cost is True

    reprice_products(queryset=Product.objects.filter(pk=product.pk), approve=True)
    build_feed()
    assert availabilities("AS1") == {"PP1": ("yes", 5, None)}


# --- 14.6: pickup points ---------------------------------------------------------------------


def test_two_points_by_default_all_units_at_the_first(settings):
    settings.KASPI_STORE_IDS = ["PP1", "PP2"]
    settings.KASPI_STORE_SHARES = {}
    factories.product(article="1", sku="AS1", quantity=5, kaspi_price=5000)

    build_feed()

    assert availabilities("AS1") == {"PP1": ("yes", 5, None), "PP2": ("no", 0, None)}


def test_two_points_with_shares_split_the_units(settings):
    settings.KASPI_STORE_IDS = ["PP1", "PP2"]
    settings.KASPI_STORE_SHARES = {"PP1": Decimal(70), "PP2": Decimal(30)}
    factories.product(article="1", sku="AS1", quantity=5, kaspi_price=5000)
    factories.product(article="2", sku="AS2", quantity=1, kaspi_price=5000)
    factories.product(article="3", sku="AS3", quantity=9, reserved_quantity=2, kaspi_price=5000)

    build_feed()

    assert availabilities("AS1") == {"PP1": ("yes", 4, None), "PP2": ("yes", 1, None)}
    assert availabilities("AS2") == {"PP1": ("yes", 1, None), "PP2": ("no", 0, None)}
    assert availabilities("AS3") == {"PP1": ("yes", 5, None), "PP2": ("yes", 2, None)}


def test_three_points_never_promise_more_than_the_free_units(settings):
    settings.KASPI_STORE_IDS = ["PP1", "PP2", "PP3"]
    settings.KASPI_STORE_SHARES = {"PP1": Decimal(50), "PP2": Decimal(30), "PP3": Decimal(20)}
    for n, quantity in enumerate([0, 1, 2, 3, 7, 10, 99], start=1):
        factories.product(
            article=str(n), sku=f"AS{n}", quantity=quantity, kaspi_price=5000, preorder_days=0
        )

    build_feed()

    for n, quantity in enumerate([0, 1, 2, 3, 7, 10, 99], start=1):
        promised = availabilities(f"AS{n}") if quantity else {}
        assert sum(count for _yes, count, _p in promised.values()) == quantity
    assert availabilities("AS5") == {
        "PP1": ("yes", 4, None),
        "PP2": ("yes", 2, None),
        "PP3": ("yes", 1, None),
    }
    assert availabilities("AS6") == {
        "PP1": ("yes", 5, None),
        "PP2": ("yes", 3, None),
        "PP3": ("yes", 2, None),
    }


def test_three_points_default_and_pre_order_only_where_a_point_sells(settings):
    settings.KASPI_STORE_IDS = ["PP1", "PP2", "PP3"]
    settings.KASPI_STORE_SHARES = {}
    factories.product(article="1", sku="AS1", quantity=7, kaspi_price=5000)
    factories.product(
        article="2", sku="AS2", quantity=0, available=False, preorder_days=5, kaspi_price=5000
    )

    build_feed()

    assert availabilities("AS1") == {
        "PP1": ("yes", 7, None),
        "PP2": ("no", 0, None),
        "PP3": ("no", 0, None),
    }
    assert availabilities("AS2") == {
        "PP1": ("yes", 0, "5"),
        "PP2": ("no", 0, None),
        "PP3": ("no", 0, None),
    }


def test_store_plan_reads_the_settings(settings):
    settings.KASPI_STORE_IDS = ["PP1", "PP2"]
    settings.KASPI_STORE_SHARES = {"PP2": Decimal(100)}
    plan = store_plan()
    assert plan.sells == (False, True)
    assert plan.split(3) == [0, 3]


def _import_settings(**env):
    clean = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    return subprocess.run(  # noqa: S603
        [sys.executable, "-c", "import backoffice.settings as s; print(s.KASPI_STORE_SHARES)"],
        cwd=ROOT,
        env={**clean, "DEBUG": "1", **env},
        capture_output=True,
        text=True,
    )


@pytest.mark.parametrize(
    "value", ["PP1=70,PP2=20", "PP1=70,PP9=30", "PP1=abc,PP2=30", "PP1=120,PP2=-20"]
)
def test_bad_store_shares_are_refused_at_start_up(value):
    result = _import_settings(KASPI_STORE_ID="PP1,PP2", KASPI_STORE_STOCK=value)
    assert result.returncode != 0
    assert "KASPI_STORE_STOCK" in result.stderr


def test_store_shares_parsed():
    result = _import_settings(KASPI_STORE_ID="PP1,PP2", KASPI_STORE_STOCK="PP1=70,PP2=30")
    assert result.returncode == 0, result.stderr
    assert "'PP1': Decimal('70')" in result.stdout


def test_admin_shows_the_split_per_pickup_point(settings, staff_client):
    settings.KASPI_STORE_IDS = ["PP1", "PP2"]
    settings.KASPI_STORE_SHARES = {"PP1": Decimal(70), "PP2": Decimal(30)}
    product = factories.product(article="1", sku="AS1", quantity=5, kaspi_price=5000)

    page = staff_client.get(f"/admin/catalog/product/{product.pk}/change/").content.decode()

    assert "PP1 (70 %): 4 · PP2 (30 %): 1" in page
