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
