"""What the order services store on an order or a purchase, or refuse to staff, reads in
the shop's language (settings.LANGUAGE_CODE), whatever language the request or the worker
runs in."""

import pytest
from django.utils import timezone, translation
from responses import matchers

from backoffice.core.runs import RunFailed
from backoffice.models import SyncRun
from orders.models import Order, OrderEntry
from orders.services.direct import cancel_direct_order
from orders.services.errors import OrderActionRefused
from orders.services.fulfilment import FulfilmentRefused, process_new_orders, purchase_order
from orders.tasks import purchase_task
from tests import factories
from tests.orders.test_batches import act, manager  # noqa: F401 (the fixture)

ALSTYLE = "https://api.al-style.kz/api/"
KASPI = "https://kaspi.kz/shop/api/v2/"


@pytest.fixture(autouse=True)
def _shop_in_russian(settings):
    settings.LANGUAGE_CODE = "ru"


def new_order(code="401", status="APPROVED_BY_BANK", fulfilment="new", product=True):
    cable = factories.product(article=f"{code}1", sku=f"AS{code}1", price1=1000)
    order = Order.objects.create(
        kaspi_id=f"K{code}", code=code, status=status, fulfilment=fulfilment, total_price=4000
    )
    OrderEntry.objects.create(
        order=order,
        entry_number=1,
        offer_code=cable.sku if product else "UNKNOWN1",
        name="Кабель",
        quantity=1,
        base_price=4000,
        total_price=4000,
        product=cable if product else None,
    )
    return order


def test_the_must_be_accepted_refusal_from_the_admin_purchase_reads_russian(
    manager,  # noqa: F811
    mocked_http,
):
    order = new_order()

    with translation.override("en"):  # the staff member's browser asks for English
        act(manager, "purchase_selected", [order], apply="1", attorney="", carrier="")
    run = SyncRun.objects.get(kind=SyncRun.Kind.PURCHASE)
    with pytest.raises(RunFailed):  # every order of the run refused
        purchase_task(run.pk)

    run.refresh_from_db()
    assert run.report == "401: заказ 401 сначала нужно принять"
    assert len(mocked_http.calls) == 0


def test_a_line_without_a_product_is_refused_in_russian():
    order = new_order(status="ACCEPTED_BY_MERCHANT", fulfilment="accepted", product=False)

    with translation.override("en"), pytest.raises(FulfilmentRefused) as refused:
        purchase_order(order=order)

    assert str(refused.value) == "заказ 401: позиции без товара: UNKNOWN1"


def test_a_failed_stock_check_and_auto_accept_are_noted_in_russian(mocked_http, settings):
    settings.ORDERS_AUTO_ACCEPT = True
    failing = new_order(code="402")
    accepting = new_order(code="403")
    OrderEntry.objects.filter(order=accepting).update(base_price=5000)  # above cost
    mocked_http.get(
        ALSTYLE + "quantity-price",
        match=[matchers.query_param_matcher({"article": "4021"}, strict_match=False)],
        status=401,
        json={"status": 401},
    )
    mocked_http.get(
        ALSTYLE + "quantity-price",
        match=[matchers.query_param_matcher({"article": "4031"}, strict_match=False)],
        json={"data": {"4031": {"quantity": 5}}},
    )
    mocked_http.post(KASPI + "orders", status=400, json={"errors": [{"title": "Нельзя"}]})

    process_new_orders()

    failing.refresh_from_db()
    accepting.refresh_from_db()
    assert failing.attention_reason.startswith("проверка остатков не удалась: ")
    assert accepting.attention_reason.startswith("автоматически принять заказ не удалось: ")
    assert "Нельзя" in accepting.attention_reason


def test_direct_sale_refusals_read_russian():
    kaspi = new_order(code="404")
    paid = Order.objects.create(channel=Order.Channel.DIRECT, code="D-1", paid_at=timezone.now())

    with translation.override("en"):
        with pytest.raises(OrderActionRefused) as not_direct:
            cancel_direct_order(order=kaspi)
        with pytest.raises(OrderActionRefused) as unrefunded:
            cancel_direct_order(order=paid)

    assert str(not_direct.value) == "заказ 404 — не прямая продажа"
    assert str(unrefunded.value) == "заказ D-1 оплачен: сначала оформите возврат платежа"
    assert Order.objects.get(pk=paid.pk).status != "CANCELLED"
