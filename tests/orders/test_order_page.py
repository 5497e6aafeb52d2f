"""The order page: buttons for the next allowed steps (through the same services as the
list actions), the lines table with supplier stock and margin, Kaspi's answers."""

import json

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse

from backoffice.ops.roles import ACCOUNTANT, ORDER_MANAGER
from orders.admin import next_steps
from orders.models import FulfilmentEvent, Order, OrderAction, OrderEntry
from tests import factories

ALSTYLE = "https://api.al-style.kz/api/"
KASPI = "https://kaspi.kz/shop/api/v2/"


@pytest.fixture(autouse=True)
def _russian(settings):
    settings.LANGUAGE_CODE = "ru"


@pytest.fixture
def order():
    cable = factories.product(article="201", sku="AS201", price1=1500, name="Кабель USB-C")
    order = Order.objects.create(
        kaspi_id="MjAx",
        code="201",
        status="APPROVED_BY_BANK",
        state="PICKUP",
        total_price=4000,
        delivery_mode="DELIVERY_PICKUP",
        customer_name="Айгерим",
    )
    OrderEntry.objects.create(
        order=order,
        offer_code="AS201",
        name="Кабель USB-C",
        quantity=2,
        base_price=2000,
        total_price=4000,
        product=cable,
    )
    return order


@pytest.fixture
def manager(client, django_user_model):
    user = django_user_model.objects.create_user("om", password="pw-123456", is_staff=True)
    user.groups.add(Group.objects.get(name=ORDER_MANAGER))
    client.force_login(user)
    return client


def page(client, order):
    return client.get(reverse("admin:orders_order_change", args=[order.pk])).content.decode()


def step_url(order, step):
    return reverse("admin:orders_order_step", args=[order.pk, step])


def test_new_order_offers_accept_check_and_cancel(manager, order):
    html = page(manager, order)
    assert step_url(order, "accept") in html
    assert step_url(order, "check_stock") in html
    assert step_url(order, "cancel") in html
    assert step_url(order, "assembled") not in html  # not before it is accepted
    assert ">Принять<" in html
    assert "Отменить…" in html


def test_accept_from_the_page_goes_to_kaspi_and_moves_the_order(manager, order, mocked_http):
    mocked_http.post(
        KASPI + "orders", json={"data": {"attributes": {"status": "ACCEPTED_BY_MERCHANT"}}}
    )

    response = manager.post(step_url(order, "accept"), follow=True)

    order.refresh_from_db()
    assert (order.status, order.fulfilment) == ("ACCEPTED_BY_MERCHANT", "accepted")
    assert json.loads(mocked_http.calls[0].request.body)["data"]["attributes"]["status"] == (
        "ACCEPTED_BY_MERCHANT"
    )
    assert OrderAction.objects.get().ok
    html = response.content.decode()
    assert "Принято в Kaspi: 1." in html
    # Now the next steps: assembled (internal) and complete/cancel in Kaspi.
    assert step_url(order, "assembled") in html
    assert step_url(order, "accept") not in html
    # Kaspi's answer is on the page.
    assert "ACCEPTED_BY_MERCHANT" in html
    assert "Запросы в Kaspi и ответы Kaspi" in html


def test_cancel_asks_the_reason_first(manager, order, mocked_http):
    form = manager.get(step_url(order, "cancel")).content.decode()
    assert "Покупатель недоступен" in form
    assert "Отправить в Kaspi" in form
    assert len(mocked_http.calls) == 0

    mocked_http.post(KASPI + "orders", json={"data": {"attributes": {"status": "CANCELLED"}}})
    manager.post(step_url(order, "cancel"), {"reason": "BUYER_NOT_REACHABLE", "comment": ""})

    sent = json.loads(mocked_http.calls[0].request.body)["data"]["attributes"]
    assert sent["cancellationReason"] == "BUYER_NOT_REACHABLE"
    order.refresh_from_db()
    assert order.fulfilment == "cancelled"


def test_internal_step_stays_with_us_and_never_says_kaspi(manager, order, mocked_http):
    Order.objects.filter(pk=order.pk).update(status="ACCEPTED_BY_MERCHANT", fulfilment="accepted")
    order.refresh_from_db()

    manager.post(step_url(order, "assembled"))

    order.refresh_from_db()
    assert order.fulfilment == "assembled"
    assert len(mocked_http.calls) == 0
    assert FulfilmentEvent.objects.get().to_status == "assembled"
    Order.objects.filter(pk=order.pk).update(fulfilment="handed_over")
    form = manager.get(step_url(order, "returned")).content.decode()
    assert "Применить" in form
    assert "Отправить в Kaspi" not in form


def test_a_step_not_allowed_now_changes_nothing(manager, order, mocked_http):
    response = manager.post(step_url(order, "handed_over"), follow=True)

    assert "этот шаг сейчас недоступен" in response.content.decode()
    order.refresh_from_db()
    assert order.fulfilment == "new"
    assert len(mocked_http.calls) == 0


def test_check_stock_from_the_page_fills_the_lines_table(
    manager, order, mocked_http, django_capture_on_commit_callbacks
):
    mocked_http.get(
        ALSTYLE + "quantity-price",
        json={"data": {"201": {"quantity": 1, "price1": 1500, "price2": 1}}},
    )

    # The button queues the check; the worker (inline in the tests) does it.
    with django_capture_on_commit_callbacks(execute=True):
        manager.post(step_url(order, "check_stock"))
    html = page(manager, order)

    assert reverse("admin:catalog_product_change", args=[order.entries.get().product_id]) in html
    assert "✗ нет" in html  # supplier has 1, the buyer wants 2
    assert "1\u00a0500\u00a0₸" in html  # dealer price
    assert "500\u00a0₸" in html
    assert "(25%)" in html


def test_kaspi_delivery_assembled_asks_for_parcels(order):
    Order.objects.filter(pk=order.pk).update(
        status="ACCEPTED_BY_MERCHANT", fulfilment="accepted", is_kaspi_delivery=True
    )
    order.refresh_from_db()
    assembled = {s["step"]: s for s in next_steps(order)}["assembled"]
    assert assembled["form"] is not None
    assert assembled["kaspi"]


def test_view_only_staff_see_no_step_buttons(client, django_user_model, order):
    user = django_user_model.objects.create_user("acc", password="pw-123456", is_staff=True)
    user.groups.add(Group.objects.get(name=ACCOUNTANT))
    client.force_login(user)

    html = page(client, order)

    assert step_url(order, "accept") not in html
    assert client.post(step_url(order, "accept")).status_code == 403
