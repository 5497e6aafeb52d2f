"""Orders speak to the supplier of each line through its adapter (issue 18.5): an order with
lines from Al-Style and from a price-file supplier makes one Al-Style purchase (its cart)
and one purchase list (printable, XLSX), and running it again makes nothing new."""

import io

import pytest
from django.urls import reverse
from openpyxl import load_workbook

from backoffice.models import SyncRun
from catalog.models import Supplier
from orders.models import Order, OrderEntry, SupplierPurchase
from orders.services.batches import request_purchase
from orders.services.fulfilment import check_stock, purchase_order
from orders.tasks import purchase_task
from tests import factories
from tests.orders.test_purchase import CART, cart_until_submit

ALSTYLE = "https://api.al-style.kz/api/"


@pytest.fixture
def vtt():
    return factories.supplier(code="vtt", name="VTT", kind=Supplier.Kind.PRICEFILE)


@pytest.fixture
def two_suppliers(vtt):
    cable = factories.product(article="101", sku="AS101", price1=1000, name="Кабель")
    mouse = factories.product(article="V77", sku="VT77", price1=5000, with_offer=False)
    factories.offer_for(
        mouse, vtt, article="VTT-77", name="Мышь VTT", dealer_price=4800, quantity=4
    )
    order = Order.objects.create(
        kaspi_id="MTAy", code="102", status="ACCEPTED_BY_MERCHANT", fulfilment="accepted"
    )
    for n, (product, quantity) in enumerate([(cable, 2), (mouse, 3)], 1):
        OrderEntry.objects.create(
            order=order,
            entry_number=n,
            offer_code=product.sku,
            name=product.name,
            quantity=quantity,
            base_price=9000,
            total_price=9000 * quantity,
            product=product,
        )
    return order


def alstyle_purchase_answers(rsps, supplier_id=555):
    cart_until_submit(rsps)
    rsps.post(CART + "submit", json={"status": True, "data": {"status": "ok", "id": supplier_id}})


def test_one_purchase_per_supplier_and_nothing_new_the_second_time(two_suppliers, vtt, mocked_http):
    alstyle_purchase_answers(mocked_http)

    first = purchase_order(order=two_suppliers)
    calls = len(mocked_http.calls)
    second = purchase_order(order=Order.objects.get(pk=two_suppliers.pk))

    bought = SupplierPurchase.objects.get(supplier__code="alstyle")
    listed = SupplierPurchase.objects.get(supplier=vtt)
    assert (bought.status, bought.supplier_order_id) == ("submitted", "555")
    assert bought.lines == [{"article": "101", "quantity": 2}]  # only Al-Style's line
    add = next(c.request for c in mocked_http.calls if c.request.url.startswith(CART + "add"))
    assert add.params["add"] == "101"
    assert listed.status == SupplierPurchase.Status.LISTED
    assert listed.lines == [
        {"article": "VTT-77", "name": "Мышь VTT", "quantity": 3, "dealer_price": 4800}
    ]
    assert [type(r).__name__ for _s, r in first] == ["SupplierPurchase", "SupplierPurchase"]
    assert all(isinstance(r, Exception) for _s, r in second)  # "already"
    assert SupplierPurchase.objects.count() == 2
    assert len(mocked_http.calls) == calls  # the second run asked Al-Style nothing
    # VTT's list is not ordered yet: the order is not bought from every supplier.
    assert Order.objects.get(pk=two_suppliers.pk).fulfilment == "accepted"


def test_the_purchase_task_reports_both_and_a_rerun_makes_nothing(two_suppliers, vtt, mocked_http):
    alstyle_purchase_answers(mocked_http)
    run = request_purchase(orders=[two_suppliers])
    purchase_task(run.pk)
    run.refresh_from_db()
    assert run.counts == {"listed": 1, "purchased": 1}
    assert "VTT" in run.report
    assert "555" in run.report

    again = request_purchase(orders=[two_suppliers])
    purchase_task(again.pk)
    again.refresh_from_db()
    assert again.status == SyncRun.Status.OK  # nothing new is no failure
    assert again.counts == {"unchanged": 2}
    assert SupplierPurchase.objects.count() == 2


def test_the_stock_check_asks_al_style_only_for_its_lines(two_suppliers, mocked_http):
    mocked_http.get(ALSTYLE + "quantity-price", json={"data": {"101": {"quantity": 5}}})

    assert check_stock(two_suppliers) is True  # VTT's last file: 4, the buyer wants 3

    assert mocked_http.calls[0].request.params["article"] == "101"
    lines = {e.offer_code: e for e in two_suppliers.entries.all()}
    assert (lines["AS101"].supplier_quantity, lines["AS101"].in_stock) == (5, True)
    assert (lines["VT77"].supplier_quantity, lines["VT77"].in_stock) == (4, True)


def test_the_purchase_list_page_and_xlsx_read_russian(
    staff_client, two_suppliers, vtt, mocked_http, settings
):
    settings.LANGUAGE_CODE = "ru"
    alstyle_purchase_answers(mocked_http)
    purchase_order(order=two_suppliers)
    listed = SupplierPurchase.objects.get(supplier=vtt)
    url = reverse("admin:orders_supplierpurchase_list", args=[listed.pk])

    order_page = staff_client.get(reverse("admin:orders_order_change", args=[two_suppliers.pk]))
    page = staff_client.get(url).content.decode()
    xlsx = staff_client.get(url + "?format=xlsx")

    assert url in order_page.content.decode()
    assert "Артикул поставщика" in page
    assert "VTT-77" in page
    assert "Мышь VTT" in page
    sheet = load_workbook(io.BytesIO(xlsx.content)).active
    rows = [[c.value for c in row] for row in sheet.iter_rows()]
    assert rows[1][:4] == ["Артикул поставщика", "Название", "Количество", "Цена дилера, ₸"]
    assert rows[2] == ["VTT-77", "Мышь VTT", 3, 4800, 14400, "102"]


def test_a_purchase_made_before_suppliers_is_al_styles(two_suppliers):
    purchase = SupplierPurchase.objects.create(order=two_suppliers, status="failed")
    assert purchase.supplier.code == Supplier.ALSTYLE
