"""Kaspi Excel export (/feed.xlsx): opens, keeps the cabinet's layout, round-trips."""

import io

import openpyxl
import pytest
from django.test import Client
from django.urls import reverse

from catalog.models import LegacyOffer
from catalog.pricelists import read_all
from catalog.services.feed import build_feed, feed_path
from catalog.services.pricelist_export import ExcelExportError, build_excel
from catalog.services.pricelist_import import import_pricelist
from tests import factories
from tests.catalog.test_pricelist_import import FIXTURES


@pytest.fixture
def published(settings):
    settings.KASPI_STORE_IDS = ["PP1", "PP2"]
    settings.KASPI_HOME_CITY_ID = "750000000"
    factories.product(article="1", sku="AS1", name="Ноутбук Demo", kaspi_price=189990)
    factories.product(
        article="2", sku="ST/UPC 3.0мм 1 м", kaspi_price=2490, quantity=0, preorder_days=5
    )
    import_pricelist(path=FIXTURES / "old_kaspi.xml")  # mouse (cityprices), monitor
    LegacyOffer.objects.filter(sku="ST/UPC-ST/UPC MM OM1 62.5/125 Simplex 3.0мм 1 м").delete()
    build_feed()
    return feed_path()


def test_export_opens_with_the_cabinet_layout(published):
    export = build_excel()

    sheet = openpyxl.load_workbook(io.BytesIO(export.data)).worksheets[0]
    rows = [list(row) for row in sheet.iter_rows(values_only=True)]
    assert rows[0] == [
        "SKU",
        "model",
        "brand",
        "price",
        "PP1",
        "PP2",
        "PP3",
        "PP4",
        "PP5",
        "preorder",
    ]
    by_sku = {row[0]: row for row in rows[1:]}
    assert by_sku["AS1"][3:5] == [189990, 5]
    # a pre-order: offered at the first point (KASPI_STORE_STOCK default), "no" at the other
    assert by_sku["ST/UPC 3.0мм 1 м"][3:] == [2490, "yes", "no", None, None, None, 5]
    assert by_sku["130342357_673822557"][3:] == [5990, 3, None, None, None, None, 5]  # Almaty
    assert by_sku["AS10003"][4] == "no"
    assert export.city_price_offers == 1
    assert export.offers == 4


def test_export_round_trips_through_the_importer(published, tmp_path):
    path = tmp_path / "export.xlsx"
    path.write_bytes(build_excel().data)

    _reader, from_excel = read_all(path)
    _reader, from_xml = read_all(published)

    def key(offer):
        points = sorted((p.store_id, p.available, p.stock or 0) for p in offer.availabilities)
        return offer.sku, offer.model, offer.brand, offer.price_in("750000000"), points

    assert sorted(map(key, from_excel)) == sorted(map(key, from_xml))


def test_more_than_five_points_is_refused_with_the_list(settings):
    settings.KASPI_STORE_IDS = [f"PP{n}" for n in range(1, 7)]
    factories.product(article="1", sku="AS1", kaspi_price=5000)
    build_feed()
    with pytest.raises(ExcelExportError, match="6 points: PP1, PP2, PP3, PP4, PP5, PP6"):
        build_excel()


def test_feed_xlsx_is_staff_only_and_the_admin_page_says_home_city(published, staff_client):
    assert Client().get("/feed.xlsx").status_code == 302  # to the admin login
    response = staff_client.get("/feed.xlsx")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/vnd.openxmlformats")
    openpyxl.load_workbook(io.BytesIO(response.content))
    page = staff_client.get(reverse("admin:catalog_feedbuild_excel"))
    assert page.status_code == 200
    assert "750000000" in page.content.decode()
    assert staff_client.get(reverse("admin:catalog_feedbuild_changelist")).status_code == 200


def test_feed_xlsx_before_any_build_says_so(staff_client):
    response = staff_client.get("/feed.xlsx")
    assert response.status_code == 409
    assert "not been built" in response.content.decode()
