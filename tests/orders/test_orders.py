import base64
from datetime import UTC, datetime, timedelta

import pytest
import requests
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse
from responses import matchers

from backoffice.core.exceptions import ExternalServiceError
from backoffice.models import SyncRun
from catalog.clients.kaspi_shop import KaspiShopClient, Window, to_ms, windows
from catalog.models import Product
from orders.models import Order, OrderAction, OrderEntry
from orders.services.diagnostics import check_kaspi_connection
from orders.services.imports import open_order_windows, refresh_reservations, run_order_import
from orders.services.status import OrderActionRefused, accept_order, cancel_order, complete_order
from tests import factories

API = "https://kaspi.kz/shop/api/v2/"
T0 = datetime(2026, 1, 1, tzinfo=UTC)
DAY_MS = 86_400_000


def order_json(code, *, created, status="APPROVED_BY_BANK", total=10000.0, **attrs):
    return {
        "type": "orders",
        "id": base64.b64encode(str(code).encode()).decode(),
        "attributes": {
            "code": str(code),
            "totalPrice": total,
            "paymentMode": "PREPAID",
            "creationDate": to_ms(created),
            "state": "KASPI_DELIVERY",
            "status": status,
            "deliveryMode": "DELIVERY_LOCAL",
            "isKaspiDelivery": True,
            "deliveryCost": 0.0,
            "customer": {"name": "Тест Покупатель", "cellPhone": "7001234567"},
            "deliveryAddress": {"formattedAddress": "Алматы, ул. Примерная, 1"},
            **attrs,
        },
        "relationships": {},
    }


def entries_json(*lines):
    return {
        "data": [
            {
                "type": "orderentries",
                "id": f"E{n}",
                "attributes": {
                    "quantity": qty,
                    "basePrice": float(price),
                    "totalPrice": float(price * qty),
                    "entryNumber": n,
                    "offer": {"code": sku, "name": f"Товар {sku}"},
                },
            }
            for n, (sku, qty, price) in enumerate(lines)
        ]
    }


def page(orders, page_count=1):
    return {"data": orders, "meta": {"pageCount": page_count, "totalCount": len(orders)}}


def register_orders(rsps, orders_by_page, *, entries=None):
    for number, orders in enumerate(orders_by_page):
        rsps.get(
            API + "orders",
            match=[matchers.query_param_matcher({"page[number]": str(number)}, strict_match=False)],
            json=page(orders, len(orders_by_page)),
        )
    for order in [o for p in orders_by_page for o in p]:
        if entries is not None and order["id"] in entries:
            rsps.get(API + f"orders/{order['id']}/entries", json=entries[order["id"]])


# --- Windows ----------------------------------------------------------------------------


def test_90_days_make_7_windows_without_gap_or_overlap():
    result = windows(T0, T0 + timedelta(days=90))

    assert len(result) == 7
    assert result[0].start_ms == to_ms(T0)
    assert result[-1].end_ms == to_ms(T0 + timedelta(days=90))
    for before, after in zip(result, result[1:], strict=False):
        assert after.start_ms == before.end_ms + 1
    assert all(w.end_ms - w.start_ms <= 14 * DAY_MS for w in result)


def test_window_length_is_capped_at_14_days(settings):
    settings.KASPI_ORDERS_WINDOW_DAYS = 30
    assert all(w.end_ms - w.start_ms < 14 * DAY_MS for w in windows(T0, T0 + timedelta(days=60)))
    assert len(windows(T0, T0 + timedelta(days=60), days=30)) == 5


def test_boundary_order_falls_in_exactly_one_window():
    result = windows(T0, T0 + timedelta(days=28))
    boundary = result[0].end_ms + 1
    assert sum(w.start_ms <= boundary <= w.end_ms for w in result) == 1


# --- Client ------------------------------------------------------------------------------


def test_headers_and_filters_always_sent(mocked_http, settings):
    mocked_http.get(
        API + "orders",
        match=[
            matchers.query_param_matcher(
                {
                    "page[number]": "0",
                    "page[size]": "100",
                    "filter[orders][creationDate][$ge]": str(to_ms(T0)),
                    "filter[orders][creationDate][$le]": str(to_ms(T0) + 1000),
                    "filter[orders][status]": "APPROVED_BY_BANK",
                    "include[orders]": "user",
                }
            ),
            matchers.header_matcher(
                {
                    "X-Auth-Token": "kaspi-shop-test-token-1a2b3c4d5e",
                    "Accept": "application/vnd.api+json",
                    "Content-Type": "application/vnd.api+json",
                }
            ),
        ],
        json=page([]),
    )
    pages = list(
        KaspiShopClient().order_pages(
            Window(to_ms(T0), to_ms(T0) + 1000), status="APPROVED_BY_BANK"
        )
    )
    assert len(pages) == 1
    assert "Mozilla/5.0" in mocked_http.calls[0].request.headers["User-Agent"]


def test_user_agent_cannot_be_configured_away(mocked_http, settings):
    settings.HTTP_USER_AGENT = ""
    mocked_http.get(API + "orders", json=page([]))
    list(KaspiShopClient().order_pages(Window(0, 1)))
    assert "Mozilla/5.0" in mocked_http.calls[0].request.headers["User-Agent"]


def test_pagination_until_page_count(mocked_http):
    register_orders(mocked_http, [[], [], []])
    pages = list(KaspiShopClient().order_pages(Window(0, 1)))
    assert len(pages) == 1  # an empty page ends the walk

    mocked_http.reset()
    orders = [[order_json(n, created=T0)] for n in range(3)]
    register_orders(mocked_http, orders)
    pages = list(KaspiShopClient().order_pages(Window(0, 1)))
    assert [p["data"][0]["attributes"]["code"] for p in pages] == ["0", "1", "2"]


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (
            400,
            {
                "errors": [
                    {
                        "status": "400",
                        "title": "Exceeded the maximum difference for the "
                        "filter[orders][creationDate] (in days). Actual [30], max [14].",
                    }
                ]
            },
            "Exceeded the maximum difference for the filter[orders][creationDate] (in days). "
            "Actual [30], max [14].",
        ),
        (401, {"errors": [{"title": "Unauthorized"}]}, "the token was rejected"),
    ],
)
def test_errors_in_plain_words(mocked_http, status, body, expected):
    mocked_http.get(API + "orders", status=status, json=body)
    with pytest.raises(ExternalServiceError) as err:
        list(KaspiShopClient().order_pages(Window(0, 1)))
    assert expected in str(err.value)
    assert "kaspi-shop-test-token" not in str(err.value)


def test_timeout_names_the_user_agent_cause(mocked_http):
    mocked_http.get(API + "orders", body=requests.ReadTimeout())
    with pytest.raises(ExternalServiceError, match="without a browser User-Agent"):
        list(KaspiShopClient().order_pages(Window(0, 1)))


# --- Import -------------------------------------------------------------------------------


def test_import_creates_orders_with_entries_linked_by_sku(mocked_http):
    factories.product(article="12345", sku="AS12345")
    order = order_json(100000001, created=T0 + timedelta(days=1))
    register_orders(
        mocked_http,
        [[order]],
        entries={order["id"]: entries_json(("AS12345", 2, 5000), ("AS99999_1", 1, 100))},
    )

    run = run_order_import(since=T0, until=T0 + timedelta(days=3))

    assert run.status == SyncRun.Status.OK, run.error
    assert run.counts["new"] == 1
    saved = Order.objects.get(code="100000001")
    assert (saved.total_price, saved.customer_phone, saved.status) == (
        10000,
        "+77001234567",
        "APPROVED_BY_BANK",
    )
    lines = list(saved.entries.order_by("entry_number"))
    assert lines[0].product.sku == "AS12345"
    assert (lines[0].quantity, lines[0].base_price, lines[0].total_price) == (2, 5000, 10000)
    assert lines[1].offer_code == "AS99999"
    assert lines[1].product is None
    assert Product.objects.get(sku="AS12345").reserved_quantity == 2


def test_entries_link_to_kept_skus_with_underscore_spaces_and_cyrillic(mocked_http):
    # A shop's kept SKUs (issue 16): Kaspi-made `<card>_<n>` and a part number.
    kaspi_made = factories.product(article="1", sku="130342357_673822557")
    part_number = factories.product(article="2", sku="ST/UPC 3.0мм 1 м")
    factories.product(article="3", sku="AS3")
    order = order_json(100000002, created=T0 + timedelta(days=1))
    register_orders(
        mocked_http,
        [[order]],
        entries={
            order["id"]: entries_json(
                ("130342357_673822557", 1, 100), ("ST/UPC 3.0мм 1 м", 1, 100), ("AS3_7", 1, 100)
            )
        },
    )

    run_order_import(since=T0, until=T0 + timedelta(days=3))

    lines = list(Order.objects.get(code="100000002").entries.order_by("entry_number"))
    assert [(line.offer_code, line.product_id) for line in lines] == [
        ("130342357_673822557", kaspi_made.pk),
        ("ST/UPC 3.0мм 1 м", part_number.pk),
        ("AS3", Product.objects.get(sku="AS3").pk),
    ]


def test_reimport_is_idempotent_and_fetches_no_entries(mocked_http):
    order = order_json(1, created=T0 + timedelta(days=1))
    register_orders(mocked_http, [[order]], entries={order["id"]: entries_json(("X1", 1, 10))})
    run_order_import(since=T0, until=T0 + timedelta(days=2))
    mocked_http.reset()
    register_orders(mocked_http, [[order]])  # no entries endpoint registered

    run = run_order_import(since=T0, until=T0 + timedelta(days=2))

    assert run.counts["unchanged"] == 1
    assert run.counts["new"] == run.counts["updated"] == 0
    assert Order.objects.count() == 1
    assert OrderEntry.objects.count() == 1


def test_status_change_updates_the_row(mocked_http):
    order = order_json(1, created=T0 + timedelta(days=1))
    register_orders(mocked_http, [[order]], entries={order["id"]: entries_json(("X1", 1, 10))})
    run_order_import(since=T0, until=T0 + timedelta(days=2))
    mocked_http.reset()
    changed = order_json(1, created=T0 + timedelta(days=1), status="COMPLETED")
    register_orders(mocked_http, [[changed]], entries={changed["id"]: entries_json(("X1", 1, 10))})

    run = run_order_import(since=T0, until=T0 + timedelta(days=2))

    assert run.counts["updated"] == 1
    assert Order.objects.get().status == "COMPLETED"
    assert Order.objects.count() == 1


def test_malformed_order_is_recorded_and_the_rest_of_its_page_written(mocked_http):
    good = order_json(1, created=T0 + timedelta(days=1))
    bad = {"type": "orders", "id": "X", "attributes": {"totalPrice": 1}}  # no code
    register_orders(mocked_http, [[good, bad]], entries={good["id"]: entries_json()})

    run = run_order_import(since=T0, until=T0 + timedelta(days=2))

    assert run.status == SyncRun.Status.PARTIAL
    assert "no attributes/code" in run.error
    assert run.counts["errors"] == 1
    assert list(Order.objects.values_list("code", flat=True)) == ["1"]
    assert run.params["resume_from"] == T0.isoformat()  # the window is read again next time


def test_5xx_in_window_4_of_7_keeps_the_other_windows(mocked_http):
    plan = windows(T0, T0 + timedelta(days=90))
    for index, window in enumerate(plan):
        created = datetime.fromtimestamp(window.start_ms / 1000 + 60, tz=UTC)
        match = [
            matchers.query_param_matcher(
                {"filter[orders][creationDate][$ge]": str(window.start_ms)},
                strict_match=False,
            )
        ]
        if index == 3:
            for _ in range(4):  # the first try and three retries
                mocked_http.get(API + "orders", match=match, status=503)
            continue
        order = order_json(index + 1, created=created)
        mocked_http.get(API + "orders", match=match, json=page([order]))
        mocked_http.get(API + f"orders/{order['id']}/entries", json=entries_json())

    run = run_order_import(since=T0, until=T0 + timedelta(days=90))

    assert run.status == SyncRun.Status.PARTIAL
    assert run.error.startswith("window 4 of 7")
    assert Order.objects.count() == 6
    assert (
        run.params["covered_until"]
        == datetime.fromtimestamp(plan[2].end_ms / 1000, tz=UTC).isoformat()
    )
    assert (
        run.params["resume_from"]
        == datetime.fromtimestamp(plan[3].start_ms / 1000, tz=UTC).isoformat()
    )


def test_incremental_rereads_windows_of_open_orders(mocked_http, settings):
    settings.ORDERS_OVERLAP_HOURS = 3
    now = datetime.now(tz=UTC)
    old_open = Order.objects.create(
        kaspi_id="A",
        code="1",
        status="ACCEPTED_BY_MERCHANT",
        creation_date=now - timedelta(days=40),
    )
    Order.objects.create(
        kaspi_id="B", code="2", status="COMPLETED", creation_date=now - timedelta(days=60)
    )
    windows_before = open_order_windows(before=now - timedelta(days=14))
    assert [w.start_ms for w in windows_before] == [to_ms(old_open.creation_date)]

    mocked_http.get(API + "orders", json=page([]))
    run = run_order_import()

    assert run.status == SyncRun.Status.OK, run.error
    # one window for the open order + the 14-day incremental period (2 windows at most)
    assert run.params["planned_windows"] in (2, 3)
    starts = {
        call.request.params["filter[orders][creationDate][$ge]"] for call in mocked_http.calls
    }
    assert str(to_ms(old_open.creation_date)) in starts


def test_reservations_follow_order_status():
    product = factories.product(sku="AS1", quantity=5)
    order = Order.objects.create(kaspi_id="A", code="1", status="ACCEPTED_BY_MERCHANT")
    OrderEntry.objects.create(order=order, offer_code="AS1", quantity=3, product=product)
    refresh_reservations()
    assert Product.objects.get(pk=product.pk).reserved_quantity == 3
    Order.objects.filter(pk=order.pk).update(status="COMPLETED")
    refresh_reservations()
    assert Product.objects.get(pk=product.pk).reserved_quantity == 0


# --- Status changes ------------------------------------------------------------------------


@pytest.fixture
def new_order():
    return Order.objects.create(kaspi_id="MTAw", code="100", status="APPROVED_BY_BANK")


def test_accept_posts_status_and_records_who(mocked_http, new_order, django_user_model):
    user = django_user_model.objects.create_user("staff")
    mocked_http.post(
        API + "orders",
        match=[
            matchers.json_params_matcher(
                {
                    "data": {
                        "type": "orders",
                        "id": "MTAw",
                        "attributes": {"code": "100", "status": "ACCEPTED_BY_MERCHANT"},
                    }
                }
            )
        ],
        json={"data": {"attributes": {"status": "ACCEPTED_BY_MERCHANT"}}},
    )

    accept_order(order=new_order, user=user)

    new_order.refresh_from_db()
    assert new_order.status == "ACCEPTED_BY_MERCHANT"
    action = OrderAction.objects.get()
    assert (action.action, action.user, action.ok) == ("accept", user, True)


def test_refused_transitions_send_nothing(mocked_http, new_order):
    with pytest.raises(OrderActionRefused, match="not possible in status"):
        complete_order(order=new_order, security_code="1234")
    with pytest.raises(OrderActionRefused, match="unknown cancellation reason"):
        cancel_order(order=new_order, reason="BORED")
    assert len(mocked_http.calls) == 0


def test_failed_accept_is_recorded_not_retried(mocked_http, new_order):
    mocked_http.post(API + "orders", status=503)
    with pytest.raises(ExternalServiceError):
        accept_order(order=new_order)
    assert len(mocked_http.calls) == 1
    action = OrderAction.objects.get()
    assert action.ok is False
    assert "503" in action.response


def test_complete_with_code_sends_security_header(mocked_http, new_order):
    Order.objects.filter(pk=new_order.pk).update(status="ACCEPTED_BY_MERCHANT")
    new_order.refresh_from_db()
    mocked_http.post(
        API + "orders",
        match=[matchers.header_matcher({"X-Security-Code": "4321", "X-Send-Code": "false"})],
        json={"data": {"attributes": {"status": "COMPLETED"}}},
    )
    complete_order(order=new_order, security_code="4321")
    assert Order.objects.get(pk=new_order.pk).status == "COMPLETED"


# --- Diagnostics and entry points ------------------------------------------------------------


def test_check_kaspi_words(mocked_http, settings):
    mocked_http.get(API + "orders", json={"data": [], "meta": {"pageCount": 0, "totalCount": 7}})
    assert check_kaspi_connection() == (
        True,
        "OK: Kaspi answered. Orders in the last 14 days: 7.",
    )
    mocked_http.reset()
    mocked_http.get(API + "orders", status=401)
    ok, message = check_kaspi_connection()
    assert not ok
    assert message.startswith("Token rejected (HTTP 401)")
    mocked_http.reset()
    mocked_http.get(API + "orders", body=requests.ReadTimeout())
    hang = check_kaspi_connection()[1]
    assert "The request hangs" in hang
    assert hang.count("User-Agent") == 1  # the advice is given once
    settings.KASPI_SHOP_TOKEN = ""
    assert check_kaspi_connection()[1].startswith("No token")


def test_check_kaspi_asks_for_the_whole_14_days_and_names_the_newest(mocked_http, settings):
    settings.TIME_ZONE = "Asia/Almaty"
    now = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    newest = order_json(555, created=now - timedelta(hours=2))
    older = order_json(444, created=now - timedelta(days=3))
    oldest = order_json(333, created=now - timedelta(days=13))
    mocked_http.get(
        API + "orders",
        match=[matchers.query_param_matcher({"page[number]": "0"}, strict_match=False)],
        json={"data": [older, newest], "meta": {"pageCount": 2, "totalCount": 154}},
    )
    mocked_http.get(
        API + "orders",
        match=[matchers.query_param_matcher({"page[number]": "1"}, strict_match=False)],
        json={"data": [oldest], "meta": {"pageCount": 2, "totalCount": 154}},
    )

    ok, message = check_kaspi_connection(now=now)

    assert ok
    assert message == (
        "OK: Kaspi answered. Orders in the last 14 days: 154; the newest is 555 of "
        "01.12.2026 15:00."
    )
    for call in mocked_http.calls:  # one window of the full 14 days, never [now, now]
        ge = int(call.request.params["filter[orders][creationDate][$ge]"])
        le = int(call.request.params["filter[orders][creationDate][$le]"])
        assert (ge, le) == (to_ms(now - timedelta(days=14)), to_ms(now))


def test_first_incremental_run_sends_no_empty_window(mocked_http):
    mocked_http.get(API + "orders", json=page([]))

    run = run_order_import()

    assert run.status == SyncRun.Status.OK, run.error
    sent = [
        (
            int(call.request.params["filter[orders][creationDate][$ge]"]),
            int(call.request.params["filter[orders][creationDate][$le]"]),
        )
        for call in mocked_http.calls
    ]
    assert len(sent) == 1  # the first 14 days are one window
    assert all(le > ge for ge, le in sent)
    assert sent[0][1] - sent[0][0] == 14 * DAY_MS


def test_kaspi_errors_reach_staff_in_russian_with_kaspis_own_text(mocked_http):
    from django.utils import translation

    title = "Exceeded the maximum difference for the filter[orders][creationDate] (in days)."
    mocked_http.get(API + "orders", status=400, json={"errors": [{"title": title}]})
    with translation.override("ru"):
        ok, message = check_kaspi_connection()
        with pytest.raises(ExternalServiceError) as err:
            KaspiShopClient().order_page(Window(0, 1), 0)
    assert not ok
    assert message == f"Kaspi отклонил фильтр по дате (HTTP 400): {title}"
    assert err.value.message == f"Kaspi отклонил запрос: {title}"


def test_windows_are_never_empty():
    assert windows(T0, T0) == []
    (only,) = windows(T0, T0 + timedelta(days=14))
    assert (only.start_ms, only.end_ms) == (to_ms(T0), to_ms(T0 + timedelta(days=14)))
    assert all(w.end_ms > w.start_ms for w in windows(T0, T0 + timedelta(days=28, milliseconds=1)))


def test_pull_command(mocked_http, capsys):
    mocked_http.get(API + "orders", json=page([]))
    call_command("pull_kaspi_orders", "--days", "20")
    assert "orders run" in capsys.readouterr().out
    assert len(mocked_http.calls) == 2  # 20 days = 2 windows
    with pytest.raises(CommandError, match="--until needs --since"):
        call_command("pull_kaspi_orders", "--until", "2026-01-01")


def test_admin_pages_and_actions(staff_client, mocked_http, new_order):
    OrderEntry.objects.create(order=new_order, offer_code="AS1", name="Товар", quantity=1)
    assert staff_client.get(reverse("admin:orders_order_changelist")).status_code == 200
    assert (
        staff_client.get(reverse("admin:orders_order_changelist"), {"q": "100"}).status_code == 200
    )
    assert (
        staff_client.get(reverse("admin:orders_order_change", args=[new_order.pk])).status_code
        == 200
    )
    assert staff_client.get(reverse("admin:orders_orderaction_changelist")).status_code == 200
    url = reverse("admin:orders_order_changelist")
    form = staff_client.post(url, {"action": "cancel_selected", "_selected_action": [new_order.pk]})
    assert "Cancellation reason" in form.text
    mocked_http.post(API + "orders", json={"data": {"attributes": {"status": "CANCELLED"}}})
    staff_client.post(
        url,
        {
            "action": "cancel_selected",
            "_selected_action": [new_order.pk],
            "apply": "1",
            "reason": "MERCHANT_OUT_OF_STOCK",
        },
    )
    assert Order.objects.get(pk=new_order.pk).status == "CANCELLED"
    body = mocked_http.calls[0].request.body
    assert b"MERCHANT_OUT_OF_STOCK" in body


def test_slow_answers_are_written_as_they_arrive_not_at_the_end_of_the_page(monkeypatch):
    from orders.services import imports

    monkeypatch.setattr(imports, "WRITE_EVERY_SECONDS", 0.0)  # every answer is "slow"
    orders = [order_json(code, created=T0 + timedelta(hours=code)) for code in (1, 2, 3)]
    stored_when_asked = {}

    class Client:
        def order_page(self, window, number, **kwargs):
            return page(orders)

        def order_entries(self, order_id):
            code = base64.b64decode(order_id).decode()
            stored_when_asked[code] = sorted(Order.objects.values_list("code", flat=True))
            return entries_json(("X1", 1, 10))["data"]

    run = SyncRun.objects.create(kind=SyncRun.Kind.ORDERS)
    imports.import_orders(run=run, since=T0, until=T0 + timedelta(days=1), client=Client())

    assert stored_when_asked == {"1": [], "2": ["1"], "3": ["1", "2"]}
    assert OrderEntry.objects.count() == 3


def test_a_run_filtered_by_status_does_not_count_as_coverage(mocked_http):
    mocked_http.get(API + "orders", json=page([]))
    now = datetime.now(tz=UTC)
    full = run_order_import(since=now - timedelta(days=30), until=now - timedelta(days=20))
    run_order_import(status="APPROVED_BY_BANK")  # reads one status only

    run = run_order_import()

    # continues after the full run, not after the status-filtered one
    expected = datetime.fromisoformat(full.params["covered_until"]) - timedelta(hours=3)
    assert datetime.fromisoformat(run.params["since"]) == expected
