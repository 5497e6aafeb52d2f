"""In a real browser (Debian's Chromium driven by Playwright): log into the admin, open the
dashboard, start a sync and see it complete; open a demo payment page and see it turn paid
without reloading. Skips with the reason where no Chromium or Playwright can be had.
Screenshots of a failing step are saved in test-artifacts/."""

import os
import shutil
from pathlib import Path

import pytest

from catalog.models import PriceRule
from payments.services.create import create_payment
from payments.services.events import apply_payment_event
from tests.factories import alstyle_handler, element

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"

playwright_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
if not os.path.exists(CHROMIUM):
    pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)", allow_module_level=True)


@pytest.fixture
def browser_page():
    # Playwright's sync API runs an event loop in this thread; the ORM calls the test makes
    # between browser steps are plain synchronous ones.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        page = browser.new_page(locale="en-US")
        try:
            yield page
        finally:
            # ORM calls made while Playwright's loop runs use their own connection (asgiref
            # context): close it here, or PostgreSQL cannot drop the test database.
            from django.db import connections

            connections.close_all()
            browser.close()
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


def _step(page, name, action):
    try:
        return action()
    except Exception:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
        raise


@pytest.mark.django_db(transaction=True)
def test_dashboard_sync_and_demo_payment(
    browser_page, live_server, fake_server, settings, django_user_model
):
    page = browser_page
    settings.ALSTYLE_TOKEN = "browser-test-token-123456"
    settings.ALSTYLE_API_URL = fake_server.url + "/api/"
    fake_server.handler = alstyle_handler([element(1)])
    PriceRule.objects.create(name="10%", markup_percent=10)
    django_user_model.objects.create_superuser("admin", "", "browser-pass-1")

    _step(
        page,
        "login",
        lambda: (
            page.goto(f"{live_server.url}/admin/login/"),
            page.fill("#id_username", "admin"),
            page.fill("#id_password", "browser-pass-1"),
            page.click("input[type=submit]"),
            page.wait_for_url(f"{live_server.url}/admin/"),
        ),
    )
    _step(
        page,
        "dashboard",
        lambda: (
            page.click("text=Dashboard"),
            page.wait_for_selector("text=Catalog sync"),
        ),
    )
    _step(
        page,
        "sync",
        lambda: (
            page.click("button[value=catalog]"),
            page.wait_for_selector("table >> text=Catalog sync"),
        ),
    )
    row = page.locator("table tr", has_text="Catalog sync").first
    _step(page, "sync-done", lambda: playwright_api.expect(row).to_contain_text("success"))

    payment = create_payment(amount=4990, description="Browser test")
    _step(
        page,
        "pay-page",
        lambda: (
            page.goto(f"{live_server.url}/pay/{payment.id}/"),
            page.wait_for_selector("svg"),
            playwright_api.expect(page.locator("#status")).to_have_text("awaiting payment"),
        ),
    )
    page.evaluate("window.__sameDocument = true")
    apply_payment_event(payment_id=payment.pk, source="test", key="paid", status="paid")
    _step(
        page,
        "paid",
        lambda: playwright_api.expect(page.locator("#status")).to_have_text("paid", timeout=15000),
    )
    assert page.evaluate("window.__sameDocument") is True  # no reload happened
    assert page.locator("svg").count() == 0  # the QR is gone


@pytest.mark.django_db(transaction=True)
def test_russian_search_reports_and_price_list(browser_page, live_server, django_user_model):
    """In Russian: lowercase Cyrillic search finds products and orders, the reports page
    shows its charts and named top products, /feed.xml shows as an XML tree."""
    from catalog.services.feed import feed_path
    from orders.models import Order, OrderEntry
    from tests import factories

    page = browser_page.context.browser.new_page(
        locale="ru-RU", viewport={"width": 1366, "height": 900}
    )
    laptop = factories.product(name="Ноутбук Demo 15 8/512 серый")
    factories.product(name="Мышь Qazaq Tech")
    order = Order.objects.create(
        kaspi_id="B1", code="7001", status="COMPLETED", customer_name="Айгерим Сапарова"
    )
    from django.utils import timezone

    order.creation_date = timezone.now()
    order.save()
    OrderEntry.objects.create(
        order=order, offer_code=laptop.sku, name=laptop.name, quantity=1,
        base_price=185150, total_price=185150, product=laptop,
    )  # fmt: skip
    django_user_model.objects.create_superuser("owner", "", "browser-pass-2")

    _step(
        page,
        "ru-login",
        lambda: (
            page.goto(f"{live_server.url}/"),  # the site root leads to the admin
            page.fill("#id_username", "owner"),
            page.fill("#id_password", "browser-pass-2"),
            page.click("input[type=submit]"),
            page.wait_for_url(f"{live_server.url}/admin/"),
        ),
    )
    _step(
        page,
        "ru-product-search",
        lambda: (
            page.goto(f"{live_server.url}/admin/catalog/product/"),
            page.fill("#searchbar", "ноутбук"),
            page.press("#searchbar", "Enter"),
            playwright_api.expect(page.locator("#result_list")).to_contain_text("Ноутбук Demo"),
        ),
    )
    assert "Мышь" not in page.locator("#result_list").inner_text()
    _step(
        page,
        "ru-order-search",
        lambda: (
            page.goto(f"{live_server.url}/admin/orders/order/"),
            page.fill("#searchbar", "айгерим"),
            page.press("#searchbar", "Enter"),
            playwright_api.expect(page.locator("#result_list")).to_contain_text("7001"),
        ),
    )
    _step(
        page,
        "ru-order-page",
        lambda: (
            page.click("#result_list a >> text=7001"),
            playwright_api.expect(page.locator("body")).to_contain_text("Заполняет магазин"),
        ),
    )
    assert page.locator("a.deletelink").count() == 0  # a Kaspi order is never deleted
    _step(
        page,
        "ru-reports",
        lambda: (
            page.goto(f"{live_server.url}/admin/reports/"),
            playwright_api.expect(page.locator("h2", has_text="Лучшие товары")).to_be_visible(),
        ),
    )
    top = page.locator("table.report").nth(1)
    playwright_api.expect(top).to_contain_text("Ноутбук Demo 15")
    playwright_api.expect(top).to_contain_text("185\u00a0150\u00a0₸")
    assert page.locator("svg[role=img]").count() == 4

    path = feed_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        '<?xml version="1.0" encoding="utf-8"?><kaspi_catalog xmlns="kaspiShopping">'
        '<company>Demo</company><offers><offer sku="AS1"><model>Ноутбук</model></offer>'
        "</offers></kaspi_catalog>",
        encoding="utf-8",
    )
    blocked = []
    page.on("console", lambda m: blocked.append(m.text) if "Content Security" in m.text else 0)
    _step(
        page,
        "ru-feed",
        lambda: (
            page.goto(f"{live_server.url}/feed.xml"),
            page.wait_for_timeout(500),
        ),
    )
    assert blocked == []  # the browser's XML viewer was allowed to style its tree
    page.close()
