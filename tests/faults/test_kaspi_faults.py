"""Kaspi Shop API faults over real HTTP."""

import base64
from datetime import UTC, datetime, timedelta

import pytest

from backoffice.core.exceptions import ExternalServiceError
from backoffice.models import SyncRun
from catalog.clients.kaspi_shop import KaspiShopClient, Window, to_ms, windows
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


def test_5xx_in_window_4_of_7_keeps_the_others_and_the_next_run_resumes(fake_server):
    failing = {"index": 3, "on": True}
    fake_server.handler = kaspi(fail_window=failing)

    run = run_order_import(since=T0, until=T0 + timedelta(days=90))

    assert run.status == SyncRun.Status.PARTIAL
    assert run.error.startswith("window 4 of 7")
    assert sorted(Order.objects.values_list("code", flat=True)) == [
        "1000",
        "1001",
        "1002",
        "1004",
        "1005",
        "1006",
    ]

    failing["on"] = False
    fake_server.requests.clear()
    resumed = run_order_import()  # incremental: continues at window 4
    assert resumed.status == SyncRun.Status.OK, resumed.error
    assert Order.objects.count() == 7
    entries = [path for path, _q, _h in fake_server.requests if path.endswith("/entries")]
    assert entries == [f"/shop/api/v2/orders/{order_id(1003)}/entries"]


def order_id(code):
    return base64.b64encode(str(code).encode()).decode()


def three_orders_one_page(*, entries_fail, created=None):
    """Orders 1, 2, 3 on one page; the entries of the codes in `entries_fail` answer 503."""
    created = created or T0 + timedelta(days=1)
    orders = [order(code, created + timedelta(minutes=code)) for code in (1, 2, 3)]

    def handler(path, query, headers, body):
        if path.endswith("/entries"):
            code = base64.b64decode(path.split("/")[-2]).decode()
            if code in entries_fail:
                return 503, b"<html>502 Bad Gateway</html>", 0
            return 200, {"data": [{"type": "orderentries", "id": f"E{code}", "attributes": {}}]}, 0
        ge = int(query["filter[orders][creationDate][$ge]"])
        le = int(query["filter[orders][creationDate][$le]"])
        hits = [o for o in orders if ge <= o["attributes"]["creationDate"] <= le]
        return 200, {"data": hits, "meta": {"pageCount": 1, "totalCount": len(hits)}}, 0

    return handler


def test_an_order_whose_entries_fail_costs_that_order_not_its_page(fake_server):
    broken = {"2"}
    fake_server.handler = three_orders_one_page(entries_fail=broken)

    run = run_order_import(since=T0, until=T0 + timedelta(days=3))

    assert run.status == SyncRun.Status.PARTIAL
    assert "order 2:" in run.error
    assert "HTTP 503" in run.error
    assert sorted(Order.objects.values_list("code", flat=True)) == ["1", "3"]
    assert all(o.entries.count() == 1 for o in Order.objects.all())
    assert run.params["resume_from"] == T0.isoformat()

    broken.clear()
    fake_server.requests.clear()
    again = run_order_import()
    assert again.status == SyncRun.Status.OK, again.error
    assert sorted(Order.objects.values_list("code", flat=True)) == ["1", "2", "3"]
    entries = [path for path, _q, _h in fake_server.requests if path.endswith("/entries")]
    assert entries == [f"/shop/api/v2/orders/{order_id(2)}/entries"]  # 1 and 3 are kept


def test_read_timeout_and_cut_off_answer_are_retried_through_the_kaspi_client(fake_server):
    answers = {"list": 0, "entries": 0}
    listing = {
        "data": [order(7, T0 + timedelta(hours=1))],
        "meta": {"pageCount": 1, "totalCount": 1},
    }

    def handler(path, query, headers, body):
        if path.endswith("/entries"):
            answers["entries"] += 1
            if answers["entries"] == 1:
                return 200, {"data": []}, 1.5  # longer than HTTP_READ_TIMEOUT (1 s)
            return 200, {"data": []}, 0
        answers["list"] += 1
        if answers["list"] == 1:
            return 200, b'{"data": [{"type": "orders", "id": "Nw==", "attri', 0  # cut off
        return 200, listing, 0

    fake_server.handler = handler

    run = run_order_import(since=T0, until=T0 + timedelta(days=1))

    assert run.status == SyncRun.Status.OK, run.error
    assert answers == {"list": 2, "entries": 2}
    assert Order.objects.get().code == "7"


def test_a_backfill_failing_in_its_first_window_is_resumed_by_the_next_incremental_run(
    fake_server, settings
):
    settings.ORDERS_INITIAL_DAYS = 14
    since = datetime.now(tz=UTC) - timedelta(days=60)
    down = {"on": True}
    healthy = three_orders_one_page(entries_fail=set(), created=since + timedelta(days=1))

    def handler(path, query, headers, body):
        if down["on"]:
            return 503, b"<html>503</html>", 0
        return healthy(path, query, headers, body)

    fake_server.handler = handler
    backfill = run_order_import(since=since)
    assert backfill.status == SyncRun.Status.FAILED
    assert Order.objects.count() == 0

    down["on"] = False
    run = run_order_import()

    assert run.status == SyncRun.Status.OK, run.error
    # not now - ORDERS_INITIAL_DAYS: where the backfill wanted to start
    assert to_ms(datetime.fromisoformat(run.params["since"])) == to_ms(since)
    assert sorted(Order.objects.values_list("code", flat=True)) == ["1", "2", "3"]


def test_kaspi_down_stops_the_run_after_three_failures_in_a_row(fake_server):
    fake_server.handler = lambda *a: (503, b"<html>503</html>", 0)

    run = run_order_import(since=T0, until=T0 + timedelta(days=90))

    assert run.status == SyncRun.Status.FAILED
    assert run.counts["errors"] == 3
    assert len(fake_server.requests) == 3 * 2  # three windows, each tried twice (1 retry)


def test_a_rejected_token_stops_the_run_at_once(fake_server):
    fake_server.handler = lambda *a: (401, {"errors": [{"title": "Unauthorized"}]}, 0)

    run = run_order_import(since=T0, until=T0 + timedelta(days=90))

    assert run.status == SyncRun.Status.FAILED
    assert len(fake_server.requests) == 1
    assert "token was rejected" in run.error
