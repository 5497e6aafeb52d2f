import json

import pytest
from django.core import mail
from django.urls import reverse
from responses import matchers

from backoffice.core.alerts import send_alert
from backoffice.models import Alert
from orders.models import FulfilmentEvent, Order, OrderEntry, SupplierPurchase
from orders.services.fulfilment import (
    FulfilmentRefused,
    check_stock,
    daily_summary,
    process_new_orders,
    purchase_from_alstyle,
    set_fulfilment,
)
from orders.services.stages import follow_kaspi_status
from tests import factories

ALSTYLE = "https://api.al-style.kz/api/"
CART = "https://api.al-style.kz/cart-api/"
KASPI = "https://kaspi.kz/shop/api/v2/"


@pytest.fixture
def order():
    """A new Kaspi order: one line we have (2 needed), one line we have (1), one unknown."""
    cable = factories.product(article="101", sku="AS101", price1=1000)
    laptop = factories.product(article="102", sku="AS102", price1=150000)
    order = Order.objects.create(
        kaspi_id="MTAx",
        code="101",
        status="APPROVED_BY_BANK",
        total_price=160000,
        delivery_mode="DELIVERY_LOCAL",
    )
    OrderEntry.objects.create(
        order=order,
        offer_code="AS101",
        name="Кабель",
        quantity=2,
        base_price=2000,
        total_price=4000,
        product=cable,
    )
    OrderEntry.objects.create(
        order=order,
        offer_code="AS102",
        name="Ноутбук",
        quantity=1,
        base_price=156000,
        total_price=156000,
        product=laptop,
    )
    return order


def stock(rsps, **quantities):
    rsps.get(
        ALSTYLE + "quantity-price",
        json={
            "data": {a: {"quantity": q, "price1": 1, "price2": 1} for a, q in quantities.items()}
        },
    )


def test_stock_check_with_mixed_lines(mocked_http, order):
    OrderEntry.objects.create(order=order, offer_code="UNKNOWN1", quantity=1)
    stock(mocked_http, **{"101": 1, "102": ">50"})

    assert check_stock(order) is False

    lines = {e.offer_code: e for e in order.entries.all()}
    assert (lines["AS101"].supplier_quantity, lines["AS101"].in_stock) == (1, False)
    assert (lines["AS102"].supplier_quantity, lines["AS102"].in_stock) == (50, True)
    assert lines["UNKNOWN1"].in_stock is False
    order.refresh_from_db()
    assert order.needs_attention
    assert "line AS101: supplier has 1, needs 2" in order.attention_reason
    assert "line UNKNOWN1: no matching product" in order.attention_reason
    assert mocked_http.calls[0].request.params["article"] == "101,102"


@pytest.mark.parametrize("auto", [True, False], ids=["auto-accept-on", "auto-accept-off"])
def test_new_order_flow_with_auto_accept(mocked_http, order, settings, auto):
    settings.ORDERS_AUTO_ACCEPT = auto
    stock(mocked_http, **{"101": 5, "102": 3})
    if auto:
        mocked_http.post(
            KASPI + "orders", json={"data": {"attributes": {"status": "ACCEPTED_BY_MERCHANT"}}}
        )

    counts = process_new_orders()

    order.refresh_from_db()
    assert counts["checked"] == 1
    assert order.alerted_at is not None
    if auto:
        assert (order.status, order.fulfilment) == ("ACCEPTED_BY_MERCHANT", "accepted")
        assert counts["accepted"] == 1
    else:
        assert (order.status, order.fulfilment) == ("APPROVED_BY_BANK", "new")
        assert len(mocked_http.calls) == 1  # only the stock check
    assert process_new_orders()["checked"] == 0  # alerted once


def test_no_auto_accept_when_out_of_stock_or_below_cost(mocked_http, order, settings):
    settings.ORDERS_AUTO_ACCEPT = True
    OrderEntry.objects.filter(offer_code="AS102").update(base_price=100)  # below cost
    stock(mocked_http, **{"101": 5, "102": 3})
    assert process_new_orders()["accepted"] == 0
    assert Order.objects.get(pk=order.pk).status == "APPROVED_BY_BANK"


def test_alert_content_and_cooldown(mocked_http, order, settings):
    settings.STAFF_ALERT_EMAILS = ["shop@example.kz"]
    stock(mocked_http, **{"101": 0, "102": 3})
    process_new_orders()

    alert = Alert.objects.get(key="order:new:101")
    assert alert.channel == "email"
    # The delivery mode in words, money with thousands separators (issue 17.1, 17.2).
    assert "Новый заказ Kaspi 101: 160\u00a0000\u00a0₸, Delivery in the city" in alert.text
    assert "DELIVERY_LOCAL" not in alert.text
    assert "AS101 Кабель × 2 = 4\u00a0000\u00a0₸ ✗ нет у поставщика" in alert.text
    assert "Требует внимания" in alert.text
    assert len(mail.outbox) == 1

    assert send_alert(key="order:new:101", text="again") is None  # cool-down
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["shop@example.kz"]


def test_alert_without_recipients_is_recorded_undelivered(settings):
    settings.STAFF_ALERT_EMAILS = []
    settings.ADMINS = []
    alert = send_alert(key="x", text="hello")
    assert alert.ok is False
    assert "no recipients" in alert.error


def test_telegram_alert_and_failure_recorded(mocked_http, settings):
    settings.TELEGRAM_BOT_TOKEN = "123456:telegram-test-token-abcdef"
    settings.TELEGRAM_CHAT_ID = "-100200"
    settings.SECRET_SETTINGS = [*settings.SECRET_SETTINGS, "TELEGRAM_BOT_TOKEN"]
    mocked_http.post(
        "https://api.telegram.org/bot123456:telegram-test-token-abcdef/sendMessage",
        json={"ok": True},
        match=[matchers.json_params_matcher({"chat_id": "-100200", "text": "Тест"})],
    )
    assert send_alert(key="t1", text="Тест").ok
    mocked_http.post(
        "https://api.telegram.org/bot123456:telegram-test-token-abcdef/sendMessage", status=400
    )
    failed = send_alert(key="t2", text="x")
    assert failed.ok is False
    assert "telegram-test-token" not in failed.error


def test_reminder_for_orders_not_accepted(mocked_http, order, settings):
    from datetime import timedelta

    from django.utils import timezone

    settings.ORDERS_ACCEPT_REMINDER_MINUTES = 30
    Order.objects.filter(pk=order.pk).update(
        alerted_at=timezone.now(), creation_date=timezone.now() - timedelta(hours=2)
    )
    assert process_new_orders()["reminded"] == 1
    assert Alert.objects.filter(key="order:remind:101").exists()
    assert process_new_orders()["reminded"] == 0


# --- Statuses -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "target", "allowed"),
    [
        ("new", "accepted", True),
        ("new", "purchased", False),
        ("accepted", "purchased", True),
        ("purchased", "assembled", True),
        ("assembled", "handed_over", True),
        ("handed_over", "completed", True),
        ("completed", "returned", True),
        ("completed", "new", False),
        ("cancelled", "accepted", False),
        ("new", "handed_over", False),
    ],
)
def test_transitions(order, django_user_model, start, target, allowed):
    Order.objects.filter(pk=order.pk).update(fulfilment=start)
    order.refresh_from_db()
    user = django_user_model.objects.create_user("picker")
    if allowed:
        set_fulfilment(order=order, to=target, user=user)
        event = FulfilmentEvent.objects.get()
        assert (event.from_status, event.to_status, event.user) == (start, target, user)
    else:
        with pytest.raises(FulfilmentRefused, match="cannot go from"):
            set_fulfilment(order=order, to=target, user=user)
        assert not FulfilmentEvent.objects.exists()
    assert Order.objects.get(pk=order.pk).fulfilment == (target if allowed else start)


def test_kaspi_status_moves_fulfilment_forward_only(order):
    order.status = "COMPLETED"
    follow_kaspi_status(order)
    assert Order.objects.get(pk=order.pk).fulfilment == "completed"
    steps = list(FulfilmentEvent.objects.values_list("to_status", flat=True))
    assert steps == ["accepted", "purchased", "assembled", "handed_over", "completed"]
    order.status = "ACCEPTED_BY_MERCHANT"
    follow_kaspi_status(order)
    assert Order.objects.get(pk=order.pk).fulfilment == "completed"


# --- Supplier purchase ----------------------------------------------------------------------


def cart_calls(rsps, *, fail_add=False):
    rsps.get(
        ALSTYLE + "user-data",
        json={
            "data": {
                "bin": "000000000000",
                "Доверенности": [{"ФИО": "Иванов", "Вид": "Основной"}],
                "Транспортники": [{"Название": "Самовывоз", "Вид": "Основной"}],
            }
        },
    )
    rsps.get(CART + "clear", json={"status": True})
    if fail_add:
        rsps.get(CART + "add", json={"status": False, "message": "Нет в наличии"})
        rsps.get(CART + "clear", json={"status": True})
        return
    rsps.get(
        CART + "add",
        json={"status": True},
        match=[
            matchers.query_param_matcher({"add": "101,102", "quantity": "2,1"}, strict_match=False)
        ],
    )
    rsps.post(CART + "submit", json={"status": True, "data": {"status": "ok", "id": 777001}})


@pytest.fixture
def accepted(order):
    Order.objects.filter(pk=order.pk).update(fulfilment="accepted", status="ACCEPTED_BY_MERCHANT")
    order.refresh_from_db()
    return order


def test_purchase_happy_path(mocked_http, accepted):
    cart_calls(mocked_http)
    purchase = purchase_from_alstyle(order=accepted)
    assert (purchase.status, purchase.supplier_order_id) == ("submitted", "777001")
    assert Order.objects.get(pk=accepted.pk).fulfilment == "purchased"
    submit = mocked_http.calls[-1].request
    assert submit.method == "POST"
    assert submit.params["external_id"] == "kaspi-101"
    assert json.loads(submit.params["attorney_json"])["ФИО"] == "Иванов"


def test_supplier_error_mid_cart_submits_nothing(mocked_http, accepted, settings):
    settings.LANGUAGE_CODE = "ru"
    cart_calls(mocked_http, fail_add=True)
    with pytest.raises(FulfilmentRefused, match="ошибка корзины Al-Style, ничего не отправлено"):
        purchase_from_alstyle(order=accepted)
    assert not any(call.request.url.startswith(CART + "submit") for call in mocked_http.calls)
    assert SupplierPurchase.objects.get().status == "failed"
    assert Order.objects.get(pk=accepted.pk).fulfilment == "accepted"


def test_second_purchase_refused(mocked_http, accepted):
    cart_calls(mocked_http)
    purchase_from_alstyle(order=accepted)
    Order.objects.filter(pk=accepted.pk).update(fulfilment="accepted")  # even if moved back
    accepted.refresh_from_db()
    with pytest.raises(FulfilmentRefused, match="already ordered"):
        purchase_from_alstyle(order=accepted)


def test_dry_run_sends_no_cart_call(mocked_http, accepted):
    mocked_http.get(ALSTYLE + "user-data", json={"data": {}})
    plan = purchase_from_alstyle(order=accepted, dry_run=True)
    assert plan["lines"] == [{"article": "101", "quantity": 2}, {"article": "102", "quantity": 1}]
    assert not SupplierPurchase.objects.exists()
    assert all(not c.request.url.startswith(CART) for c in mocked_http.calls)


def test_daily_summary(order):
    Order.objects.filter(pk=order.pk).update(needs_attention=True, attention_reason="нет товара")
    text = daily_summary()
    assert "• new: 1" in text
    assert "Деньги в незавершённых заказах: 160\u00a0000\u00a0₸" in text
    assert "101: нет товара" in text


def test_admin_actions(staff_client, mocked_http, accepted):
    url = reverse("admin:orders_order_changelist")
    assert staff_client.get(url, {"needs_attention__exact": "0"}).status_code == 200
    assert (
        staff_client.get(reverse("admin:orders_order_change", args=[accepted.pk])).status_code
        == 200
    )
    assert staff_client.get(reverse("admin:orders_supplierpurchase_changelist")).status_code == 200
    assert staff_client.get(reverse("admin:backoffice_alert_changelist")).status_code == 200
    Order.objects.filter(pk=accepted.pk).update(fulfilment="purchased")
    staff_client.post(
        url,
        {
            "action": "set_step_selected",
            "_selected_action": [accepted.pk],
            "apply": "1",
            "step": "assembled",
        },
    )
    assert Order.objects.get(pk=accepted.pk).fulfilment == "assembled"
    assert FulfilmentEvent.objects.get().user.username == "admin"
