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
def test_russian_search_reports_and_price_list(
    browser_page, live_server, django_user_model, settings
):
    """In Russian: lowercase Cyrillic search finds products and orders, the reports page
    shows its charts and named top products, /feed.xml shows as an XML tree."""
    settings.LANGUAGE_CODE = "ru"  # the shop's language, not the browser's, decides
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


# --- The «done when» walk of issue 17, in Russian, one role after another ------------------


def _role_page(browser_page, live_server, django_user_model, username, role=None):
    """A fresh browser context (its own cookies) logged in as `username` of `role`."""
    from django.contrib.auth.models import Group

    user = django_user_model.objects.create_user(
        username, password="walk-pass-1", is_staff=True, is_superuser=role is None
    )
    if role:
        user.groups.add(Group.objects.get(name=role))
    context = browser_page.context.browser.new_context(
        locale="ru-RU", viewport={"width": 1366, "height": 900}
    )
    page = context.new_page()
    _step(
        page,
        f"walk-login-{username}",
        lambda: (
            page.goto(f"{live_server.url}/admin/login/"),
            page.fill("#id_username", username),
            page.fill("#id_password", "walk-pass-1"),
            page.click("input[type=submit]"),
            page.wait_for_url(f"{live_server.url}/admin/"),
        ),
    )
    return page


def _kaspi_and_alstyle(path, query, headers, body):
    """Kaspi accepts the order; Al-Style has 5 of article 201; its catalog refuses the token."""
    if path.endswith("/orders"):
        return 200, {"data": {"attributes": {"status": "ACCEPTED_BY_MERCHANT"}}}, 0
    if path.endswith("/quantity-price"):
        return 200, {"data": {"201": {"quantity": 5, "price1": 1500, "price2": 1}}}, 0
    return 401, {"message": "invalid token"}, 0


@pytest.mark.django_db(transaction=True)
def test_issue17_walk_in_russian(
    browser_page, live_server, fake_server, settings, django_user_model
):
    from backoffice.ops.roles import ACCOUNTANT, CATALOG_MANAGER, ORDER_MANAGER, setup_roles
    from catalog.services.sync import run_catalog_sync
    from orders.models import Order, OrderEntry
    from payments.models import Payment
    from tests import factories

    setup_roles()  # a transactional test flushes what the data migration made
    expect = playwright_api.expect
    settings.LANGUAGE_CODE = "ru"
    settings.SITE_URL = live_server.url
    settings.PAYMENTS_PROVIDER = "demo"
    settings.KASPI_SHOP_API_URL = fake_server.url + "/shop/api/v2"
    settings.ALSTYLE_API_URL = fake_server.url + "/api/"
    fake_server.handler = _kaspi_and_alstyle
    cable = factories.product(
        article="201",
        sku="AS201",
        name="Кабель USB-C Demo",
        category=factories.category(name="Кабели"),
    )
    order = Order.objects.create(
        kaspi_id="MjAx", code="201", status="APPROVED_BY_BANK", state="PICKUP",
        total_price=4000, delivery_mode="DELIVERY_PICKUP", customer_name="Айгерим Сапарова",
    )  # fmt: skip
    OrderEntry.objects.create(
        order=order, offer_code="AS201", name=cable.name, quantity=2,
        base_price=2000, total_price=4000, product=cable,
    )  # fmt: skip

    # Order manager: find the order by a lowercase name, accept it, check stock, assemble.
    page = _role_page(browser_page, live_server, django_user_model, "om", ORDER_MANAGER)
    _step(
        page,
        "walk-om-search",
        lambda: (
            page.goto(f"{live_server.url}/admin/orders/order/"),
            page.fill("#searchbar", "айгерим"),
            page.press("#searchbar", "Enter"),
            page.click("#result_list a >> text=201"),
            expect(page.locator("button", has_text="Принять")).to_be_visible(),
        ),
    )
    _step(
        page,
        "walk-om-accept",
        lambda: (
            page.click("button:has-text('Принять')"),
            expect(page.locator("ul.messagelist")).to_contain_text("Принято в Kaspi: 1."),
        ),
    )
    _step(
        page,
        "walk-om-stock",
        lambda: (
            page.click("button:has-text('Проверить остаток у поставщика')"),
            expect(page.locator("fieldset", has_text="Позиции")).to_contain_text("✓"),
        ),
    )
    _step(
        page,
        "walk-om-assembled",
        lambda: (
            page.click("button:has-text('Собран')"),
            expect(page.locator("ul.messagelist")).to_contain_text("Переведено: 1."),
        ),
    )
    order.refresh_from_db()
    assert (order.status, order.fulfilment) == ("ACCEPTED_BY_MERCHANT", "assembled")
    page.context.close()

    # Accountant: a payment from the admin, paid on the public page (demo), refunded.
    page = _role_page(browser_page, live_server, django_user_model, "buh", ACCOUNTANT)
    _step(
        page,
        "walk-buh-new",
        lambda: (
            page.goto(f"{live_server.url}/admin/payments/payment/"),
            page.click("text=Новый платёж"),
            page.fill("#id_amount", "4990"),
            page.fill("#id_description", "Чехол, покупатель в магазине"),
            page.click("input[value='Создать платёж']"),
            expect(page.locator("ul.messagelist")).to_contain_text("4\u00a0990\u00a0₸"),
            expect(page.locator("#payment-link")).to_be_visible(),
        ),
    )
    assert page.locator("svg").count() >= 1  # the QR to show the customer
    link = page.locator("#payment-link").get_attribute("href")
    admin_url = page.url
    _step(
        page,
        "walk-buh-pay",
        lambda: (
            page.goto(link),
            page.click("button:has-text('Оплатить (демо)')"),
            expect(page.locator("#status")).to_have_text("оплачен"),
        ),
    )
    _step(
        page,
        "walk-buh-refund",
        lambda: (
            page.goto(admin_url),
            page.click("text=Возврат…"),
            page.click("input[value='Да, записать возврат']"),
            expect(page.locator("ul.messagelist")).to_contain_text("Kaspi Pay"),
        ),
    )
    assert Payment.objects.get().status == "refunded"
    page.context.close()

    # Catalog manager: a product by a lowercase word, its card problems, the link to the fix.
    page = _role_page(browser_page, live_server, django_user_model, "cm", CATALOG_MANAGER)
    _step(
        page,
        "walk-cm-card",
        lambda: (
            page.goto(f"{live_server.url}/admin/catalog/product/"),
            page.fill("#searchbar", "кабель"),
            page.press("#searchbar", "Enter"),
            page.click("#result_list a >> text=Кабель USB-C Demo"),
            page.click("#card-preview-link"),
            expect(page.locator("#card-problems")).to_contain_text("«Кабели» не сопоставлена"),
        ),
    )
    _step(
        page,
        "walk-cm-fix",
        lambda: (
            page.click("a.card-fix"),
            expect(page.locator("h1")).to_contain_text("Добавить: соответствие"),
            expect(page.locator("#id_category")).to_have_value(str(cable.category_id)),
        ),
    )
    page.context.close()

    # Owner: the dashboard after a failed run shows its reason.
    settings.ALSTYLE_TOKEN = "walk-token-123456"
    run_catalog_sync(triggered_by="test")
    page = _role_page(browser_page, live_server, django_user_model, "owner")
    _step(
        page,
        "walk-owner-dashboard",
        lambda: (
            page.goto(f"{live_server.url}/admin/dashboard/"),
            expect(page.locator(".card", has_text="Ошибки запусков")).to_contain_text("401"),
        ),
    )
    page.context.close()
