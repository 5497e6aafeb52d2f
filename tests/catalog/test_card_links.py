import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
import responses
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse
from django.utils import timezone

from catalog.clients.kaspi_offers import KaspiOffersClient
from catalog.models import KaspiCardLink, MarketState, PriceChange, RepricingRule
from catalog.services.card_links import (
    confirm_candidate,
    link_from_orders,
    link_from_skus,
    run_link_cards,
    search_candidates,
)
from tests import factories

ROOT = Path(__file__).resolve().parents[2]
BASE = "http://kaspi.test"
FIXTURES = ROOT / "tests" / "fixtures" / "kaspi_offers"


@pytest.fixture
def offers_client():
    return KaspiOffersClient(base_url=BASE, min_interval=0, sleep=lambda s: None)


def test_csv_links_by_url_and_reports_bad_rows(tmp_path):
    factories.product(sku="AS10001", article="10001")
    factories.product(sku="AS10002", article="10002")
    path = tmp_path / "links.csv"
    path.write_text(
        "sku,url\n"
        "AS10001,https://kaspi.kz/shop/p/noutbuk-demo-123456789/?c=750000000\n"
        "AS10002,https://kaspi.kz/shop/search/?text=x\n"
        "AS99999,https://kaspi.kz/shop/p/-111111111/\n",
        encoding="utf-8",
    )

    run = run_link_cards(file=str(path))

    link = KaspiCardLink.objects.get()
    assert (link.product.sku, link.card_id, link.status) == ("AS10001", "123456789", "unverified")
    assert run.status == "partial"
    assert "line 3: 'https://kaspi.kz/shop/search/?text=x' is not a Kaspi card URL" in run.error
    assert "line 4: no product with SKU 'AS99999'" in run.error
    # Run twice: nothing changes.
    again = run_link_cards(file=str(path))
    assert again.counts["new_links"] == 0
    assert again.counts["unchanged_links"] == 1


def test_a_file_without_the_columns_is_refused(tmp_path):
    path = tmp_path / "links.csv"
    path.write_text("article;link\n1;2\n", encoding="utf-8")

    with pytest.raises(CommandError, match="sku,url"):
        call_command("kaspi_link_cards", "--file", str(path))


def test_kaspi_made_skus_carry_the_card_id():
    factories.product(sku="130342357_673822557", article="1")
    factories.product(sku="AS2", article="2")

    assert link_from_skus().linked == 1
    assert KaspiCardLink.objects.get().card_id == "130342357"


@responses.activate
def test_search_candidates_then_staff_confirm(offers_client, settings):
    settings.KASPI_HOME_CITY = "750000000"
    factories.product(sku="AS1", article="1", name="Ноутбук Demo 15")
    responses.get(
        f"{BASE}/yml/product-view/pl/results",
        json={"data": [{"id": "123456789", "title": "Ноутбук Demo 15", "unitPrice": 1.0}]},
    )

    assert search_candidates(client=offers_client).candidates == 1
    link = KaspiCardLink.objects.get()
    assert (link.status, link.card_id) == ("candidates", "")
    assert confirm_candidate(link)
    link.refresh_from_db()
    assert (link.status, link.card_id) == ("unverified", "123456789")


@responses.activate
def test_from_orders_uses_the_entry_product(settings):
    from orders.models import Order, OrderEntry

    settings.KASPI_SHOP_API_URL = "http://shop.test/shop/api/v2"
    product = factories.product(sku="AS1", article="1")
    order = Order.objects.create(channel="kaspi", code="100", kaspi_id="O1")
    OrderEntry.objects.create(order=order, kaspi_id="E1", offer_code="AS1", product=product)
    responses.get(
        "http://shop.test/shop/api/v2/orderentries/E1/product",
        json={"data": {"type": "masterproducts", "id": "X", "attributes": {"code": "123456789"}}},
    )

    assert link_from_orders().linked == 1
    assert KaspiCardLink.objects.get().card_id == "123456789"


@responses.activate
def test_verify_reads_the_home_city(offers_client, settings, tmp_path):
    settings.KASPI_OFFERS_MERCHANT_ID = "30999001"
    settings.KASPI_HOME_CITY = "750000000"
    settings.KASPI_CITIES = ["750000000", "710000000"]
    factories.product(sku="AS10001", article="10001")
    path = tmp_path / "links.csv"
    path.write_text("sku,url\nAS10001,https://kaspi.kz/shop/p/-123456789/\n")
    responses.post(
        f"{BASE}/yml/offer-view/offers/123456789",
        json=json.loads((FIXTURES / "page_almaty.json").read_text()),
    )

    run = run_link_cards(file=str(path), verify=True, client=offers_client)

    assert KaspiCardLink.objects.get().status == "linked"
    assert run.counts["new_links"] == 1
    assert run.counts["linked"] == 1  # status total after verification
    assert run.counts["verify_reads"] == 1
    assert [json.loads(c.request.body)["cityId"] for c in responses.calls] == ["750000000"]


def _settings_value(env, name):
    clean = {k: v for k, v in os.environ.items() if not k.startswith("KASPI_")}
    code = f"import backoffice.settings as s; print(s.{name})"
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**clean, "DEBUG": "1", **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.strip()


def test_public_url_follows_a_local_shop_api():
    local = {"KASPI_SHOP_API_URL": "http://127.0.0.1:8702/shop/api/v2"}
    assert _settings_value(local, "KASPI_PUBLIC_URL") == "http://127.0.0.1:8702"
    assert _settings_value({}, "KASPI_PUBLIC_URL") == "https://kaspi.kz"
    explicit = {**local, "KASPI_PUBLIC_URL": "http://127.0.0.1:8704/"}
    assert _settings_value(explicit, "KASPI_PUBLIC_URL") == "http://127.0.0.1:8704"
    assert _settings_value({"KASPI_MERCHANT_ID": "777"}, "KASPI_OFFERS_MERCHANT_ID") == "777"
    assert _settings_value({"KASPI_HOME_CITY": "710000000"}, "KASPI_CITIES") == "['710000000']"


@pytest.mark.parametrize(
    "model",
    [
        "kaspicardlink",
        "marketstate",
        "marketobservation",
        "kaspicommission",
        "repricingrule",
        "pricechange",
    ],
)
def test_repricer_admin_pages_open(staff_client, model):
    product = factories.product(sku="AS1", article="1", kaspi_price=5000)
    link = KaspiCardLink.objects.create(product=product, card_id="123", source="url")
    MarketState.objects.create(
        product=product, city="750000000", card_id="123", status="ok", ok_at=timezone.now()
    )
    rule = RepricingRule.objects.create(name="r")
    PriceChange.objects.create(
        product=product,
        city="750000000",
        old_price=5000,
        new_price=4900,
        reason="x",
        rule=rule,
        status="applied",
        applied_at=timezone.now() - timedelta(hours=2),
    )
    PriceChange.objects.create(
        product=product,
        city="750000000",
        old_price=4900,
        new_price=4800,
        reason="y",
        status="applied",
        applied_at=timezone.now(),
    )

    response = staff_client.get(reverse(f"admin:catalog_{model}_changelist"))
    assert response.status_code == 200
    page = staff_client.get(reverse("admin:catalog_product_change", args=[product.pk]))
    assert page.status_code == 200
    assert b"<svg" in page.content
    assert b"<polyline" in page.content
    assert link.pk


def test_staff_paste_a_card_url_in_the_admin(staff_client):
    product = factories.product(sku="AS1", article="1", kaspi_price=5000)
    url = reverse("admin:catalog_kaspicardlink_add")
    form = {"product": product.pk, "source": "url", "floor_price": "", "ceiling_price": ""}

    bad = staff_client.post(url, {**form, "card_id": "https://kaspi.kz/shop/search/?q=1"})
    assert bad.status_code == 200
    assert not KaspiCardLink.objects.exists()
    staff_client.post(url, {**form, "card_id": "https://kaspi.kz/shop/p/noutbuk-123456789/?c=1"})

    link = KaspiCardLink.objects.get()
    assert (link.card_id, link.status) == ("123456789", "unverified")


def test_approve_action_applies(staff_client):
    product = factories.product(sku="AS1", article="1", kaspi_price=5000)
    change = PriceChange.objects.create(
        product=product, city="750000000", old_price=5000, new_price=4900, reason="x"
    )

    staff_client.post(
        reverse("admin:catalog_pricechange_changelist"),
        {"action": "approve", "_selected_action": [change.pk]},
    )

    change.refresh_from_db()
    product.refresh_from_db()
    assert change.status == "applied"
    assert product.kaspi_price == 4900
