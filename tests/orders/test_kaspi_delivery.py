"""Kaspi Delivery packing: the "assembled" step sends ASSEMBLE with the number of parcels,
then stores and shows Kaspi's waybill (docs/kaspi-shop-api.md §5.2)."""

import json
from datetime import UTC, datetime

import pytest
from django.urls import reverse

from backoffice.core.exceptions import ExternalServiceError
from orders.models import FulfilmentEvent, Order, OrderAction
from orders.services.fulfilment import FulfilmentRefused, mark_assembled, set_fulfilment
from orders.services.imports import parse_order

KASPI = "https://kaspi.kz/shop/api/v2/"
PLANNED_MS = 1796193600000  # 2026-12-02 06:40 UTC


def kaspi_answer(*, waybill=True):
    delivery = {"waybill": None, "waybillNumber": None, "courierTransmissionPlanningDate": None}
    if waybill:
        delivery = {
            "waybill": "https://kaspi.kz/waybills/KD777.pdf",
            "waybillNumber": "KD777",
            "courierTransmissionPlanningDate": PLANNED_MS,
        }
    return {
        "data": {
            "type": "orders",
            "id": "Nzc3",
            "attributes": {
                "code": "777",
                "status": "ACCEPTED_BY_MERCHANT",
                "assembled": True,
                "kaspiDelivery": delivery,
            },
        }
    }


@pytest.fixture
def kd_order():
    return Order.objects.create(
        kaspi_id="Nzc3",
        code="777",
        status="ACCEPTED_BY_MERCHANT",
        is_kaspi_delivery=True,
        fulfilment="accepted",
    )


def test_assembled_step_packs_in_kaspi_and_stores_the_waybill(
    mocked_http, kd_order, django_user_model
):
    user = django_user_model.objects.create_user("packer")
    mocked_http.post(KASPI + "orders", json=kaspi_answer())

    mark_assembled(order=kd_order, parcels=2, user=user)

    body = json.loads(mocked_http.calls[0].request.body)
    assert body["data"]["id"] == "Nzc3"
    assert body["data"]["attributes"] == {"code": "777", "status": "ASSEMBLE", "numberOfSpace": 2}
    kd_order.refresh_from_db()
    assert (kd_order.fulfilment, kd_order.status) == ("assembled", "ACCEPTED_BY_MERCHANT")
    assert (kd_order.kaspi_assembled, kd_order.parcels) == (True, 2)
    assert kd_order.waybill_number == "KD777"
    assert kd_order.waybill_url == "https://kaspi.kz/waybills/KD777.pdf"
    assert kd_order.courier_planned_at == datetime(2026, 12, 2, 6, 40, tzinfo=UTC)
    action = OrderAction.objects.get()
    assert (action.action, action.ok, action.user, action.detail) == (
        "assemble",
        True,
        user,
        "parcels: 2",
    )
    event = FulfilmentEvent.objects.get(to_status="assembled")
    assert "KD777" in event.note


def test_waybill_read_once_when_the_answer_has_none(mocked_http, kd_order):
    mocked_http.post(KASPI + "orders", json=kaspi_answer(waybill=False))
    mocked_http.get(KASPI + "orders/Nzc3", json=kaspi_answer())

    mark_assembled(order=kd_order, parcels=1)

    kd_order.refresh_from_db()
    assert kd_order.waybill_number == "KD777"
    assert [c.request.method for c in mocked_http.calls] == ["POST", "GET"]


def test_kaspi_refusal_is_recorded_shown_and_not_retried(mocked_http, kd_order):
    title = "Order [777] cannot be assembled: Kaspi Delivery orders in ACCEPTED_BY_MERCHANT only."
    mocked_http.post(KASPI + "orders", status=400, json={"errors": [{"title": title}]})

    with pytest.raises(ExternalServiceError, match=r"Order \[777\] cannot be assembled"):
        mark_assembled(order=kd_order, parcels=3)

    assert len(mocked_http.calls) == 1
    kd_order.refresh_from_db()
    assert (kd_order.fulfilment, kd_order.kaspi_assembled, kd_order.waybill_number) == (
        "accepted",
        False,
        "",
    )
    action = OrderAction.objects.get()
    assert (action.action, action.ok) == ("assemble", False)
    assert title in action.response


def test_a_kaspi_delivery_order_is_not_assembled_without_parcels(mocked_http, kd_order):
    with pytest.raises(FulfilmentRefused, match="number of parcels"):
        mark_assembled(order=kd_order)
    with pytest.raises(FulfilmentRefused, match="number of parcels"):
        set_fulfilment(order=kd_order, to="assembled")
    assert len(mocked_http.calls) == 0
    assert Order.objects.get(pk=kd_order.pk).fulfilment == "accepted"


def test_other_orders_keep_the_internal_step(mocked_http, kd_order):
    Order.objects.filter(pk=kd_order.pk).update(is_kaspi_delivery=False)
    kd_order.refresh_from_db()

    mark_assembled(order=kd_order, parcels=5)

    assert Order.objects.get(pk=kd_order.pk).fulfilment == "assembled"
    assert len(mocked_http.calls) == 0  # nothing sent to Kaspi
    assert OrderAction.objects.count() == 0


def test_import_reads_the_waybill():
    values = parse_order(kaspi_answer()["data"], {})
    assert values["kaspi_assembled"] is True
    assert (values["waybill_number"], values["waybill_url"]) == (
        "KD777",
        "https://kaspi.kz/waybills/KD777.pdf",
    )
    hostile = kaspi_answer()["data"]
    hostile["attributes"]["kaspiDelivery"]["waybill"] = "javascript:alert(1)"
    assert parse_order(hostile, {})["waybill_url"] == ""


def test_admin_step_asks_for_parcels_and_shows_the_waybill(staff_client, mocked_http, kd_order):
    url = reverse("admin:orders_order_changelist")
    form = staff_client.post(
        url, {"action": "set_step_selected", "_selected_action": [kd_order.pk]}
    )
    assert "Parcels (Kaspi Delivery)" in form.text
    mocked_http.post(KASPI + "orders", json=kaspi_answer())

    done = staff_client.post(
        url,
        {
            "action": "set_step_selected",
            "_selected_action": [kd_order.pk],
            "apply": "1",
            "step": "assembled",
            "parcels": "2",
        },
        follow=True,
    )

    assert "waybill KD777" in done.text
    assert Order.objects.get(pk=kd_order.pk).fulfilment == "assembled"
    page = staff_client.get(reverse("admin:orders_order_change", args=[kd_order.pk]))
    assert 'href="https://kaspi.kz/waybills/KD777.pdf"' in page.text
    assert "KD777" in page.text


def test_an_import_without_assembled_does_not_unpack_an_order(mocked_http, kd_order):
    from datetime import timedelta

    from orders.services.imports import run_order_import

    Order.objects.filter(pk=kd_order.pk).update(kaspi_assembled=True, parcels=2)
    created = datetime(2026, 11, 20, tzinfo=UTC)
    item = kaspi_answer(waybill=False)["data"]
    item["attributes"].pop("assembled")
    item["attributes"]["creationDate"] = int(created.timestamp() * 1000)
    mocked_http.get(KASPI + "orders", json={"data": [item], "meta": {"pageCount": 1}})
    mocked_http.get(KASPI + "orders/Nzc3/entries", json={"data": []})

    run_order_import(since=created - timedelta(days=1), until=created + timedelta(days=1))

    kd_order.refresh_from_db()
    assert (kd_order.kaspi_assembled, kd_order.parcels) == (True, 2)


def test_orders_imported_before_keep_their_waybill_from_the_kaspi_data(kd_order):
    import importlib

    from django.apps import apps

    Order.objects.filter(pk=kd_order.pk).update(raw=json.dumps(kaspi_answer()["data"]))
    migration = importlib.import_module("orders.migrations.0006_waybills_from_kaspi_data")

    migration.fill(apps, None)

    kd_order.refresh_from_db()
    assert (kd_order.kaspi_assembled, kd_order.waybill_number) == (True, "KD777")
    assert kd_order.waybill_url == "https://kaspi.kz/waybills/KD777.pdf"
