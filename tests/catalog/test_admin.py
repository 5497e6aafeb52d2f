import pytest
from django.urls import reverse
from django.utils import translation

from backoffice.models import SyncRun
from catalog.models import PriceRule, Product
from catalog.services.feed import build_feed
from catalog.services.pricing import reprice_products
from tests import factories


@pytest.fixture
def catalog_data():
    category = factories.category(name="Ноутбуки")
    brand = factories.brand(name="Demo")
    factories.rule(markup_percent=10)
    product = factories.product(category=category, brand=brand, quantity_raw=">50", quantity=50)
    reprice_products()
    build_feed()
    product.refresh_from_db()
    return product


@pytest.mark.parametrize(
    "model", ["product", "category", "brand", "pricerule", "feedbuild", "feedfetch"]
)
def test_changelists_open(staff_client, catalog_data, model):
    response = staff_client.get(reverse(f"admin:catalog_{model}_changelist"))
    assert response.status_code == 200


def test_change_forms_open(staff_client, catalog_data):
    for url in [
        reverse("admin:catalog_product_change", args=[catalog_data.pk]),
        reverse("admin:catalog_pricerule_add"),
        reverse("admin:backoffice_syncrun_changelist"),
        reverse("admin:backoffice_joblock_changelist"),
        reverse("admin:index"),
    ]:
        assert staff_client.get(url).status_code == 200, url


def test_product_search_by_article_and_name(staff_client, catalog_data):
    url = reverse("admin:catalog_product_changelist")
    assert catalog_data.name in staff_client.get(url, {"q": catalog_data.article}).text
    assert "0 products" in staff_client.get(url, {"q": "no-such-thing"}).text or (
        catalog_data.name not in staff_client.get(url, {"q": "no-such-thing"}).text
    )


def test_enable_disable_actions(staff_client, catalog_data):
    url = reverse("admin:catalog_product_changelist")
    staff_client.post(url, {"action": "disable_on_kaspi", "_selected_action": [catalog_data.pk]})
    assert Product.objects.get(pk=catalog_data.pk).kaspi_enabled is False
    staff_client.post(url, {"action": "enable_on_kaspi", "_selected_action": [catalog_data.pk]})
    assert Product.objects.get(pk=catalog_data.pk).kaspi_enabled is True


def test_preview_prices_action(staff_client, catalog_data):
    response = staff_client.post(
        reverse("admin:catalog_product_changelist"),
        {"action": "preview_prices_action", "_selected_action": [catalog_data.pk]},
    )
    assert response.status_code == 200
    assert "11000" in response.text


def test_sync_button_queues_one_run(
    staff_client, catalog_data, monkeypatch, django_capture_on_commit_callbacks
):
    queued = []
    monkeypatch.setattr("django_q.tasks.async_task", lambda *a, **kw: queued.append(a) or "t1")
    url = reverse("admin:catalog_product_sync")

    with django_capture_on_commit_callbacks(execute=True):
        first = staff_client.post(url, follow=True)
        second = staff_client.post(url, follow=True)

    assert "queued" in first.text
    assert "already queued or running" in second.text
    assert SyncRun.objects.filter(kind="catalog").count() == 1
    assert queued == [("catalog.tasks.sync_catalog_task",)]


def test_price_rule_save_reprices(staff_client, catalog_data):
    response = staff_client.post(
        reverse("admin:catalog_pricerule_add"),
        {
            "name": "Ноутбуки +20%",
            "active": "on",
            "scope": "category",
            "category": catalog_data.category_id,
            "base": "price1",
            "markup_percent": "20",
            "markup_fixed": "0",
            "min_margin": "0",
            "rounding": "1",
            "priority": "0",
        },
    )
    assert response.status_code == 302, response.content
    assert PriceRule.objects.count() == 2


def test_admin_is_russian_by_default(staff_client, catalog_data, settings):
    settings.LANGUAGE_CODE = "ru"
    with translation.override("ru"):
        response = staff_client.get(reverse("admin:catalog_product_changelist"))
    assert "Товары" in response.text
    assert "Синхронизировать с Al-Style" in response.text


def test_the_product_page_shows_its_prices_as_money(staff_client, settings):
    settings.LANGUAGE_CODE = "ru"
    product = factories.product(article="1", sku="AS1", price1=160500, price2=181000)
    Product.objects.filter(pk=product.pk).update(kaspi_price=215900)
    page = staff_client.get(reverse("admin:catalog_product_change", args=[product.pk])).text
    nbsp = "\u00a0"
    for value in ("160 500", "181 000", "215 900"):
        assert f"{value.replace(' ', nbsp)}{nbsp}₸" in page, value
    assert ">160500<" not in page
