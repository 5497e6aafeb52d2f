"""Kaspi Shop API faults over real HTTP."""

import base64
from datetime import UTC, datetime, timedelta

import pytest

from backoffice.exceptions import ExternalServiceError
from backoffice.models import SyncRun
from orders.clients.kaspi_shop import KaspiShopClient, Window, to_ms, windows
from orders.models import Order
from orders.services.diagnostics import check_kaspi_connection
from orders.services.imports import run_order_import

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _kaspi(settings, fake_server):
    settings.KASPI_SHOP_API_URL = fake_server.url + "/shop/api/v2"
    settings.HTTP_READ_TIMEOUT = 1.0
    settings.HTTP_RETRIES = 1


def order(code, created):
    return {
        "type": "orders",
        "id": base64.b64encode(str(code).encode()).decode(),
        "attributes": {
            "code": str(code),
            "totalPrice": 1000.0,
            "status": "COMPLETED",
            "state": "ARCHIVE",
            "creationDate": to_ms(created),
        },
    }


def kaspi(*, fail_window=None, hang_without_agent=True):
    """Seven orders, one an hour into each 14-day window of T0 + 90 days, served by creation
    date like Kaspi; `fail_window` makes requests covering that order answer 500."""
    plan = windows(T0, T0 + timedelta(days=90))
    orders = [
        order(1000 + i, datetime.fromtimestamp(w.start_ms / 1000 + 3600, tz=UTC))
        for i, w in enumerate(plan)
    ]

    def handler(path, query, headers, body):
        if hang_without_agent and "Mozilla" not in headers.get("User-Agent", ""):
            return 200, {}, 3  # Kaspi's silence
        if path.endswith("/entries"):
            return 200, {"data": []}, 0
        ge = int(query["filter[orders][creationDate][$ge]"])
        le = int(query["filter[orders][creationDate][$le]"])
        hits = [o for o in orders if ge <= o["attributes"]["creationDate"] <= le]
        failing = orders[fail_window["index"]] if fail_window and fail_window["on"] else None
        if failing in hits:
            return 500, {"errors": [{"title": "Internal error"}]}, 0
        return 200, {"data": hits, "meta": {"pageCount": 1, "totalCount": len(hits)}}, 0

    return handler


def test_never_hangs_because_the_agent_is_always_browser_like(fake_server, settings):
    settings.HTTP_USER_AGENT = ""  # even a blank setting keeps a browser agent
    fake_server.handler = kaspi()
    pages = list(KaspiShopClient().order_pages(Window(to_ms(T0), to_ms(T0) + 7_200_000)))
    assert pages[0]["data"]
    assert "Mozilla" in fake_server.requests[0][2]["User-Agent"]


@pytest.mark.parametrize(
    ("status", "body", "words"),
    [
        (401, {"errors": [{"title": "Unauthorized"}]}, "Token rejected (HTTP 401)"),
        (
            400,
            {"errors": [{"title": "Required filter [orders][creationDate][$ge] is empty."}]},
            "Required filter [orders][creationDate][$ge] is empty.",
        ),
    ],
)
def test_401_and_400_in_plain_words(fake_server, status, body, words):
    fake_server.handler = lambda *a: (status, body, 0)
    ok, message = check_kaspi_connection()
    assert not ok
    assert words in message
    assert "kaspi-shop-test-token" not in message


def test_timeout_is_reported_as_a_hang(fake_server):
    fake_server.handler = lambda *a: (200, {}, 3)
    with pytest.raises(ExternalServiceError, match="no answer within"):
        list(KaspiShopClient().order_pages(Window(0, 1)))


def test_5xx_in_window_4_of_7_keeps_1_to_3_and_resumes(fake_server):
    failing = {"index": 3, "on": True}
    fake_server.handler = kaspi(fail_window=failing)

    run = run_order_import(since=T0, until=T0 + timedelta(days=90))

    assert run.status == SyncRun.Status.PARTIAL
    assert run.error.startswith("window 4 of 7")
    assert sorted(Order.objects.values_list("code", flat=True)) == ["1000", "1001", "1002"]

    failing["on"] = False
    resumed = run_order_import(
        since=datetime.fromisoformat(run.params["covered_until"]), until=T0 + timedelta(days=90)
    )
    assert resumed.status == SyncRun.Status.OK
    assert Order.objects.count() == 7
