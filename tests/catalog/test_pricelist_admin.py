"""Admin side of the cut-over: upload with preview, import, pick products, report."""

from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from catalog.models import LegacyOffer, PriceListImport, Product
from catalog.services.feed import build_feed
from catalog.services.pricelist_import import import_pricelist
from tests import factories

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "pricelist"


@pytest.fixture
def shop(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.KASPI_STORE_IDS = ["PP1"]
    return {
        "patch": factories.product(
            article="201", article_pn="ST/UPC-ST/UPC MM OM1 62.5/125 Simplex 3.0мм 1 м"
        ),
        "mouse_a": factories.product(article="202", name="Мышь беспроводная Demo M100 чёрная"),
        "mouse_b": factories.product(article="203", name="Мышь беспроводная Demo M100 чёрная"),
    }


def test_upload_previews_without_writing_then_imports(
    staff_client, shop, django_capture_on_commit_callbacks, settings
):
    url = reverse("admin:catalog_pricelistimport_upload")
    upload = SimpleUploadedFile("old.xml", (FIXTURES / "old_kaspi.xml").read_bytes())

    preview = staff_client.post(url, {"file": upload})

    assert preview.status_code == 200
    page = preview.content.decode()
    assert "130342357_673822557" in page
    assert "PP1, PP2" in page
    assert LegacyOffer.objects.count() == 0  # the preview writes nothing
    token = preview.context["token"]
    assert preview.context["result"].counts == {
        "ambiguous": 1,
        "matched": 1,
        "matched_part_number": 1,
        "offers": 3,
        "unmatched": 1,
    }

    with django_capture_on_commit_callbacks(execute=True):
        done = staff_client.post(url, {"token": token, "source": "old.xml"}, follow=True)

    assert done.status_code == 200
    assert PriceListImport.objects.get().source == "old.xml"
    assert Product.objects.get(pk=shop["patch"].pk).sku.startswith("ST/UPC")
    assert list((settings.MEDIA_ROOT / "pricelist-imports").iterdir()) == []  # file removed


def test_bad_upload_says_what_is_wrong_and_writes_nothing(staff_client, shop):
    url = reverse("admin:catalog_pricelistimport_upload")
    upload = SimpleUploadedFile("old.xls", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 600)

    response = staff_client.post(url, {"file": upload})

    assert response.status_code == 200
    assert ".xlsx" in response.content.decode()
    assert response.context["token"] == ""
    assert LegacyOffer.objects.count() == PriceListImport.objects.count() == 0


def test_staff_pick_the_product_of_an_ambiguous_offer(staff_client, shop):
    import_pricelist(path=FIXTURES / "old_kaspi.xml")
    offer = LegacyOffer.objects.get(sku="130342357_673822557")
    assert offer.status == "ambiguous"
    changelist = staff_client.get(reverse("admin:catalog_legacyoffer_changelist"))
    assert changelist.status_code == 200
    assert "202" in changelist.content.decode()  # candidates are linked
    change_url = reverse("admin:catalog_legacyoffer_change", args=[offer.pk])
    assert staff_client.get(change_url).status_code == 200
    # the product field searches as you type (admin autocomplete)
    autocomplete = staff_client.get(
        reverse("admin:autocomplete"),
        {
            "term": "202",
            "app_label": "catalog",
            "model_name": "legacyoffer",
            "field_name": "product",
        },
    )
    assert [r["id"] for r in autocomplete.json()["results"]] == [str(shop["mouse_a"].pk)]

    staff_client.post(change_url, {"product": shop["mouse_b"].pk}, follow=True)

    offer.refresh_from_db()
    assert (offer.status, offer.product_id, offer.rule) == (
        "confirmed",
        shop["mouse_b"].pk,
        "staff",
    )
    assert Product.objects.get(pk=shop["mouse_b"].pk).sku == "130342357_673822557"

    staff_client.post(change_url, {"product": shop["mouse_a"].pk}, follow=True)  # changed mind

    assert Product.objects.get(pk=shop["mouse_a"].pk).sku == "130342357_673822557"
    assert Product.objects.get(pk=shop["mouse_b"].pk).sku == "AS203"


def test_cutover_page_and_import_list_open(staff_client, shop):
    import_pricelist(path=FIXTURES / "old_kaspi.xml")
    build_feed()
    page = staff_client.get(reverse("admin:catalog_pricelistimport_cutover"))
    assert page.status_code == 200
    assert page.context["report"].counts["old_offers"] == 3
    assert staff_client.get(reverse("admin:catalog_pricelistimport_changelist")).status_code == 200
    listing = staff_client.get(reverse("admin:catalog_legacyoffer_changelist"), {"kept": "yes"})
    assert listing.status_code == 200
    assert len(listing.context["cl"].result_list) == 2  # unmatched + ambiguous stay listed
