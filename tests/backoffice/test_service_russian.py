"""Messages services write for staff read Russian when the shop runs in Russian (17.1)."""

import pytest
from django.utils import translation

from backoffice.core.exceptions import ExternalServiceError
from catalog.clients.alstyle import AlStyleClient
from catalog.services.card_links import link_from_rows
from orders.models import Order, OrderEntry
from orders.services.fulfilment import check_stock
from payments.services.intake import import_payments


@pytest.fixture(autouse=True)
def _russian():
    with translation.override("ru"):
        yield


def test_missing_supplier_token_is_said_in_russian():
    with pytest.raises(ExternalServiceError) as caught:
        AlStyleClient(token="")
    assert "нет API-токена: задайте ALSTYLE_TOKEN" in str(caught.value)


def test_stock_check_problem_in_russian():
    order = Order.objects.create(kaspi_id="1", code="501", status="APPROVED_BY_BANK")
    OrderEntry.objects.create(order=order, offer_code="X1", name="Нечто", quantity=1)
    check_stock(order)
    assert order.attention_reason == "позиция X1: такого товара нет в нашем каталоге"


def test_card_link_and_payment_import_errors_in_russian():
    assert link_from_rows([(2, "AS404", "https://kaspi.kz/shop/p/x-1/")]).errors == [
        "строка 2: нет товара с SKU 'AS404'"
    ]
    assert import_payments(b"{}").errors == ["ожидался JSON-список платежей"]
