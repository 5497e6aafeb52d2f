"""The Al-Style purchase (it spends money): which attorney and carrier go out, what a refusal
and an unknown submit leave behind, the order lookup, status polling and the cart's URL."""

import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
import requests
from django.core.management import call_command
from django.utils import timezone, translation
from responses import matchers

from backoffice.core.exceptions import ExternalServiceError
from backoffice.core.schedules import schedule_specs
from catalog.clients.alstyle import AlStyleClient
from orders.models import Order, OrderEntry, SupplierPurchase
from orders.services.fulfilment import (
    FulfilmentRefused,
    poll_supplier_purchases,
    purchase_from_alstyle,
)
from orders.tasks import poll_supplier_purchases_task
from tests import factories

ROOT = Path(__file__).resolve().parents[2]
ALSTYLE = "https://api.al-style.kz/api/"
CART = "https://api.al-style.kz/cart-api/"
OUR_BIN = "990140000101"


def profile(*, main_key=True):
    """The dealer profile the simulator serves: the first attorney is an empty placeholder,
    the second expired, the main one third, the fourth for a subsidiary; the first carrier
    is self-pickup, the main one second."""
    mark = (lambda yes: main_key if yes else False) if main_key is not None else (lambda y: False)
    return {
        "status": True,
        "data": {
            "bin": OUR_BIN,
            "Доверенности": [
                {"Номер": "", "ФИО": "", "ДатаОкончания": "", "БИН": OUR_BIN,
                 "Основной": False, "empty": True},
                {"Номер": "17", "ФИО": "Тестов Демо", "ДатаВыдачи": "01.01.2024",
                 "ДатаОкончания": "31.12.2024", "БИН": OUR_BIN, "Основной": False,
                 "empty": False},
                {"Номер": "42", "ФИО": "Примерова Айгерим", "ДатаВыдачи": "02.01.2026",
                 "ДатаОкончания": "31.12.2099", "БИН": OUR_BIN, "Основной": mark(True),
                 "empty": False},
                {"Номер": "7", "ФИО": "Филиалов Ерлан", "ДатаОкончания": "31.12.2099",
                 "БИН": "990240000202", "Основной": False, "empty": False},
            ],
            "Транспортники": [
                {"СпособДоставки": "Самовывоз", "Транспортник": "", "Адрес": "Панфилова, 10",
                 "БИН": OUR_BIN, "Основной": False},
                {"СпособДоставки": "Доставка по городу", "Транспортник": "Служба Al-Style",
                 "Адрес": "пр. Абая, 1", "БИН": OUR_BIN, "Основной": mark(True)},
                {"СпособДоставки": "Транспортная компания", "Транспортник": "ТК Демо",
                 "Адрес": "Астана", "БИН": "990240000202", "Основной": False},
            ],
        },
    }  # fmt: skip


@pytest.fixture
def accepted():
    cable = factories.product(article="101", sku="AS101", price1=1000)
    laptop = factories.product(article="102", sku="AS102", price1=150000)
    order = Order.objects.create(
        kaspi_id="MTAx",
        code="101",
        status="ACCEPTED_BY_MERCHANT",
        fulfilment="accepted",
        total_price=160000,
    )
    for n, (product, quantity) in enumerate([(cable, 2), (laptop, 1)], 1):
        OrderEntry.objects.create(
            order=order,
            entry_number=n,
            offer_code=product.sku,
            name=product.name,
            quantity=quantity,
            base_price=product.price1 * 2,
            total_price=product.price1 * 2 * quantity,
            product=product,
        )
    return order


def cart_until_submit(rsps, user_data=None):
    rsps.get(ALSTYLE + "user-data", json=user_data or profile())
    rsps.get(CART + "clear", json={"status": True, "data": {"status": "ok"}})
    rsps.get(CART + "add", json={"status": True, "data": {"status": "ok"}})


def submitted_fields(rsps) -> dict:
    submit = next(c.request for c in rsps.calls if c.request.url.startswith(CART + "submit"))
    return submit.params


def order_list(rsps, rows, **params):
    rsps.get(
        ALSTYLE + "orders",
        json={"status": True, "pagination": {"totalPages": 1, "currentPage": 1}, "data": rows},
        match=[matchers.query_param_matcher(params, strict_match=False)] if params else [],
    )


def now_almaty() -> str:
    return timezone.localtime().strftime("%Y-%m-%d %H:%M:%S")


# --- Item 9: the main attorney and carrier -------------------------------------------------


@pytest.mark.parametrize("mark", [True, 1, "1", "да"])
def test_the_entries_marked_main_by_key_are_sent(mocked_http, accepted, mark):
    cart_until_submit(mocked_http, profile(main_key=mark))
    mocked_http.post(CART + "submit", json={"status": True, "data": {"status": "ok", "id": 1}})
    purchase_from_alstyle(order=accepted)
    sent = submitted_fields(mocked_http)
    assert json.loads(sent["attorney_json"])["Номер"] == "42"
    assert json.loads(sent["delivery_json"])["СпособДоставки"] == "Доставка по городу"


def test_none_marked_refuses_and_names_the_entries(mocked_http, accepted):
    mocked_http.get(ALSTYLE + "user-data", json=profile(main_key=None))
    with pytest.raises(FulfilmentRefused) as refused:
        purchase_from_alstyle(order=accepted)
    text = str(refused.value)
    assert "ALSTYLE_ATTORNEY_NUMBER" in text
    assert "ALSTYLE_CARRIER" in text
    assert "№42 Примерова Айгерим" in text
    assert "Доставка по городу" in text
    assert "expired on 31.12.2024" in text
    assert "empty" in text
    assert not SupplierPurchase.objects.exists()
    assert not any(c.request.url.startswith(CART) for c in mocked_http.calls)


def test_staff_choice_by_setting_or_form(mocked_http, accepted, settings):
    settings.ALSTYLE_ATTORNEY_NUMBER = "42"
    settings.ALSTYLE_CARRIER = "Самовывоз"
    cart_until_submit(mocked_http, profile(main_key=None))
    mocked_http.post(CART + "submit", json={"status": True, "data": {"status": "ok", "id": 5}})
    purchase_from_alstyle(order=accepted)
    sent = submitted_fields(mocked_http)
    assert json.loads(sent["attorney_json"])["Номер"] == "42"
    assert json.loads(sent["delivery_json"])["СпособДоставки"] == "Самовывоз"


@pytest.mark.parametrize("wanted", ["17", "7", "нет такого"])
def test_staff_choice_of_an_expired_foreign_or_unknown_entry_is_refused(
    mocked_http, accepted, wanted
):
    mocked_http.get(ALSTYLE + "user-data", json=profile())
    with pytest.raises(FulfilmentRefused, match="not among the usable entries"):
        purchase_from_alstyle(order=accepted, attorney=wanted)
    assert not SupplierPurchase.objects.exists()


def test_a_main_mark_on_an_expired_or_foreign_entry_is_not_enough(mocked_http, accepted):
    data = profile(main_key=None)
    data["data"]["Доверенности"][1]["Основной"] = True  # expired
    data["data"]["Доверенности"][3]["Основной"] = True  # another BIN
    data["data"]["Доверенности"][0]["Основной"] = True  # empty placeholder
    mocked_http.get(ALSTYLE + "user-data", json=data)
    with pytest.raises(FulfilmentRefused, match="marks no usable attorney"):
        purchase_from_alstyle(order=accepted)


# --- Item 10: a definite refusal at submit --------------------------------------------------


@pytest.mark.parametrize("http_status", [200, 400])
def test_a_refusal_at_submit_is_recorded_and_a_new_attempt_allowed(
    mocked_http, accepted, http_status
):
    cart_until_submit(mocked_http)
    mocked_http.post(
        CART + "submit",
        status=http_status,
        json={"status": False, "error": "Дата отгрузки 01.01.2020 уже прошла."},
    )
    mocked_http.get(CART + "clear", json={"status": True})
    with pytest.raises(FulfilmentRefused, match="Al-Style refused the order"):
        purchase_from_alstyle(order=accepted)
    purchase = SupplierPurchase.objects.get()
    assert purchase.status == "refused"
    assert purchase.error == "Дата отгрузки 01.01.2020 уже прошла."
    assert mocked_http.calls[-1].request.url.startswith(CART + "clear")  # cart emptied
    accepted.refresh_from_db()
    assert accepted.fulfilment == "accepted"

    cart_until_submit(mocked_http)
    mocked_http.post(CART + "submit", json={"status": True, "data": {"status": "ok", "id": 9}})
    purchase_from_alstyle(order=accepted)
    assert sorted(SupplierPurchase.objects.values_list("status", flat=True)) == [
        "refused",
        "submitted",
    ]


# --- Item 11: an unknown submit is looked up, never retried ---------------------------------


@pytest.mark.parametrize(
    "fault",
    [
        {"status": 500, "body": "<html>Internal Server Error</html>"},
        {"body": requests.ConnectionError("reset")},
        {"body": requests.ReadTimeout("read timed out")},
        {"status": 200, "body": '{"status": true, "data": {"sta'},
    ],
    ids=["500", "connection", "timeout", "truncated"],
)
def test_unknown_submit_found_by_external_id(mocked_http, accepted, fault):
    cart_until_submit(mocked_http)
    mocked_http.post(CART + "submit", **fault)
    order_list(
        mocked_http,
        [
            {"id": 312002, "date": now_almaty(), "status": "N", "sum": 1, "external_id": "x"},
            {"id": 312001, "date": now_almaty(), "status": "N", "sum": 152000,
             "comment": "kaspi-101 (Kaspi 101)", "external_id": "kaspi-101"},
        ],
        type="index",
    )  # fmt: skip
    purchase = purchase_from_alstyle(order=accepted)
    assert (purchase.status, purchase.supplier_order_id, purchase.supplier_status) == (
        "submitted",
        "312001",
        "N",
    )
    assert "external_id kaspi-101" in purchase.error
    accepted.refresh_from_db()
    assert accepted.fulfilment == "purchased"
    sent = submitted_fields(mocked_http)
    assert sent["external_id"] == "kaspi-101"
    assert "kaspi-101" in sent["comments"]
    assert [c.request.method for c in mocked_http.calls].count("POST") == 1  # never resent


def test_unknown_submit_found_by_reference_in_the_comment(mocked_http, accepted):
    cart_until_submit(mocked_http)
    mocked_http.post(CART + "submit", status=502, body="bad gateway")
    order_list(
        mocked_http,
        {  # another shape: keyed by order id, other key names, no external id
            "312010": {"created_at": now_almaty(), "state": "SV", "comments": "kaspi-1011"},
            "312011": {"created_at": now_almaty(), "state": "R", "comments": "Заказ kaspi-101"},
        },
    )
    purchase = purchase_from_alstyle(order=accepted)
    assert (purchase.supplier_order_id, purchase.supplier_status) == ("312011", "R")


def test_unknown_submit_found_by_date_sum_and_lines(mocked_http, accepted):
    cart_until_submit(mocked_http)
    mocked_http.post(CART + "submit", status=500, body="")
    old = (timezone.localtime() - timedelta(hours=5)).strftime("%Y-%m-%d %H:%M:%S")
    order_list(
        mocked_http,
        [
            {"id": 1, "date": old, "status": "N", "sum": 152000},  # too early
            {"id": 2, "date": now_almaty(), "status": "N", "sum": 999},  # another sum
            {"id": 3, "date": now_almaty(), "status": "N", "sum": 151000},  # other lines
            {"id": 4, "date": now_almaty(), "status": "SV", "sum": "152000.00"},
        ],
    )
    for oid, cart in [
        (3, [{"article": "101", "quantity": 1}, {"article": "102", "quantity": 1}]),
        (4, [{"article": 102, "quantity": 1}, {"article": 101, "quantity": 2}]),
    ]:
        mocked_http.get(
            ALSTYLE + "order",
            json={"status": True, "data": {"id": oid, "cart": cart}},
            match=[matchers.query_param_matcher({"id": str(oid)}, strict_match=False)],
        )
    purchase = purchase_from_alstyle(order=accepted)
    assert (purchase.supplier_order_id, purchase.supplier_status) == ("4", "SV")


def test_unknown_submit_not_found_stays_unknown_and_is_never_resent(mocked_http, accepted):
    cart_until_submit(mocked_http)
    mocked_http.post(CART + "submit", status=500, body="")
    order_list(mocked_http, [])
    with pytest.raises(FulfilmentRefused, match="may or may not exist"):
        purchase_from_alstyle(order=accepted)
    purchase = SupplierPurchase.objects.get()
    assert purchase.status == "unknown"
    assert "0 orders from" in purchase.error
    assert "kaspi-101" in purchase.error
    assert "ALSTYLE_ADDITIONAL_FIELDS" not in purchase.error  # item 13
    calls = len(mocked_http.calls)
    with pytest.raises(FulfilmentRefused, match="result is unknown"):
        purchase_from_alstyle(order=accepted)
    assert len(mocked_http.calls) == calls  # no call at all: never bought twice
    assert SupplierPurchase.objects.count() == 1


def test_a_failed_lookup_leaves_the_purchase_unknown(mocked_http, accepted):
    cart_until_submit(mocked_http)
    mocked_http.post(CART + "submit", body=requests.ConnectionError("reset"))
    mocked_http.get(ALSTYLE + "orders", status=401, json={"message": "bad token"})
    with pytest.raises(FulfilmentRefused, match="could not be read"):
        purchase_from_alstyle(order=accepted)
    assert SupplierPurchase.objects.get().status == "unknown"


# --- Item 11: polling the supplier status ---------------------------------------------------


def test_poll_updates_open_purchases_and_settles_unknown_ones(mocked_http, accepted):
    other = Order.objects.create(kaspi_id="MTAy", code="102", fulfilment="accepted")
    done = SupplierPurchase.objects.create(
        order=accepted, status="submitted", supplier_order_id="312001", reference="kaspi-101"
    )
    Order.objects.filter(pk=accepted.pk).update(fulfilment="purchased")
    unknown = SupplierPurchase.objects.create(
        order=other, status="unknown", reference="kaspi-102", error="HTTP 500"
    )
    order_list(
        mocked_http,
        [
            {"id": 312001, "date": now_almaty(), "status": "SV", "external_id": "kaspi-101"},
            {"id": 312002, "date": now_almaty(), "status": "N", "external_id": "kaspi-102"},
        ],
    )
    counts = poll_supplier_purchases()
    assert counts == {"open": 1, "changed": 1, "missing": 0, "unknown": 1, "found": 1}
    done.refresh_from_db()
    unknown.refresh_from_db()
    assert done.supplier_status == "SV"
    assert done.supplier_checked_at
    with translation.override("ru"):
        assert done.supplier_status_text == "SV — готов к отгрузке"
    assert (unknown.status, unknown.supplier_order_id) == ("submitted", "312002")
    assert Order.objects.get(pk=other.pk).fulfilment == "purchased"
    assert not any(c.request.url.startswith(CART) for c in mocked_http.calls)


def test_poll_without_open_purchases_calls_nothing(mocked_http):
    assert poll_supplier_purchases()["open"] == 0


def test_poll_task_command_and_schedule_run_the_same_service(mocked_http, accepted, settings):
    settings.ALSTYLE_TOKEN = "test-token"
    SupplierPurchase.objects.create(order=accepted, status="submitted", supplier_order_id="5")
    order_list(mocked_http, [{"id": 5, "status": "F"}])
    assert "changed" in poll_supplier_purchases_task()
    assert SupplierPurchase.objects.get().supplier_status == "F"
    call_command("poll_alstyle_purchases")  # F is final: no call (the mock would fail)
    assert any(s["func"] == "orders.tasks.poll_supplier_purchases_task" for s in schedule_specs())
    crontab = (ROOT / "crontab.example").read_text()
    assert "manage.py poll_alstyle_purchases" in crontab


# --- Item 12: the cart follows the catalog's host -------------------------------------------


def test_cart_url_is_derived_from_the_catalog_url():
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "backoffice.settings",
        "ALSTYLE_API_URL": "http://127.0.0.1:8702/api/",
        "ALSTYLE_CART_API_URL": "",
        "DEBUG": "1",
    }
    code = "import django; django.setup(); from django.conf import settings as s; "
    code += "print(s.ALSTYLE_CART_API_URL)"
    out = subprocess.run(  # noqa: S603
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "http://127.0.0.1:8702/cart-api/"


def test_a_client_on_another_host_sends_cart_calls_there(fake_server):
    fake_server.handler = lambda path, *a: (200, {"status": True, "data": []}, 0)
    client = AlStyleClient(token="t", base_url=fake_server.url + "/api/")
    client.cart("clear")
    assert fake_server.requests[0][0] == "/cart-api/clear"


def test_dry_run_prints_the_base_urls(mocked_http, accepted, settings):
    settings.ALSTYLE_CART_API_URL = "http://127.0.0.1:9/cart-api/"
    mocked_http.get(ALSTYLE + "user-data", json=profile())
    plan = purchase_from_alstyle(order=accepted, dry_run=True)
    assert plan["urls"] == {"catalog": ALSTYLE, "cart": "http://127.0.0.1:9/cart-api/"}
    assert not SupplierPurchase.objects.exists()


# --- Item 13: each call's error speaks about that call --------------------------------------


def test_a_server_error_names_the_call_without_catalog_advice(mocked_http):
    client = AlStyleClient(token="t")
    mocked_http.post(CART + "submit", status=500, body="")
    mocked_http.get(ALSTYLE + "user-data", status=500, body="")
    mocked_http.get(ALSTYLE + "elements-pagination", status=500, body="")
    with pytest.raises(ExternalServiceError) as submit:
        client.cart("submit", method="POST")
    with pytest.raises(ExternalServiceError) as profile_error:
        client.user_data()
    assert "cart submit" in str(submit.value)
    assert "after the order was sent" in str(submit.value)
    assert "user-data" in str(profile_error.value)
    for error in (submit, profile_error):
        assert "ALSTYLE_ADDITIONAL_FIELDS" not in str(error.value)
    with pytest.raises(ExternalServiceError, match="ALSTYLE_ADDITIONAL_FIELDS"):
        next(client.iter_product_pages())


@pytest.mark.parametrize(
    "fault",
    [{"status": 503, "body": "busy"}, {"body": requests.ReadTimeout("read timed out")}],
    ids=["503", "timeout"],
)
def test_a_cart_add_is_never_resent(mocked_http, accepted, settings, fault):
    """A resent `add` adds the lines a second time (the cart adds up quantities)."""
    settings.HTTP_RETRIES, settings.HTTP_BACKOFF_FACTOR = 3, 0
    settings.LANGUAGE_CODE = "ru"
    mocked_http.get(ALSTYLE + "user-data", json=profile())
    mocked_http.get(CART + "clear", json={"status": True})
    mocked_http.get(CART + "add", **fault)
    with pytest.raises(FulfilmentRefused, match="ошибка корзины Al-Style, ничего не отправлено"):
        purchase_from_alstyle(order=accepted)
    adds = [c for c in mocked_http.calls if c.request.url.startswith(CART + "add")]
    assert len(adds) == 1
    assert mocked_http.calls[-1].request.url.startswith(CART + "clear")
    assert SupplierPurchase.objects.get().status == "failed"


# --- Staff settle an unknown purchase -------------------------------------------------------


def test_staff_settle_unknown_purchases_from_the_admin(staff_client, accepted):
    from django.urls import reverse

    unknown = SupplierPurchase.objects.create(
        order=accepted, status="unknown", reference="kaspi-101", sent={"attorney": {"Номер": 1}}
    )
    page = staff_client.get(reverse("admin:orders_order_change", args=[accepted.pk]))
    assert page.status_code == 200
    assert "kaspi-101" in page.content.decode()
    url = reverse("admin:orders_supplierpurchase_changelist")
    form = staff_client.post(url, {"action": "found_at_supplier", "_selected_action": [unknown.pk]})
    assert form.status_code == 200  # asks for the Al-Style number first
    staff_client.post(
        url,
        {
            "action": "found_at_supplier",
            "_selected_action": [unknown.pk],
            "apply": "1",
            "supplier_order_id": "312009",
        },
    )
    unknown.refresh_from_db()
    assert (unknown.status, unknown.supplier_order_id) == ("submitted", "312009")
    assert Order.objects.get(pk=accepted.pk).fulfilment == "purchased"

    Order.objects.filter(pk=accepted.pk).update(fulfilment="accepted")
    other = SupplierPurchase.objects.create(order=accepted, status="failed")
    SupplierPurchase.objects.filter(pk=unknown.pk).update(status="failed")
    SupplierPurchase.objects.filter(pk=other.pk).update(status="unknown")
    staff_client.post(url, {"action": "not_at_supplier", "_selected_action": [other.pk]})
    other.refresh_from_db()
    assert other.status == "failed"
    assert "admin checked" in other.error
    assert not SupplierPurchase.objects.filter(status__in=SupplierPurchase.LIVE).exists()
