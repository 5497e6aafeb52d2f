"""What an order is bought by is what its purchases were made for, not the lines' chosen
offers of today: our own Al-Style purchase lowers Al-Style's stock, so a line's chosen
offer may switch suppliers between the purchase and its settling (by the poller or by
staff), or before purchase_order runs again."""

import pytest

from catalog.models import Product, Supplier
from orders.models import Order, SupplierPurchase
from orders.services.fulfilment import mark_list_ordered, poll_supplier_purchases, purchase_order
from tests import factories
from tests.orders import test_purchase_per_supplier as per_supplier
from tests.orders.test_purchase import CART, cart_until_submit, now_almaty, order_list

vtt, two_suppliers = per_supplier.vtt, per_supplier.two_suppliers  # the fixtures


def choose(sku: str, supplier: Supplier, article: str) -> None:
    """The product's chosen offer becomes `supplier`'s (as the offer rule would switch it)."""
    product = Product.objects.get(sku=sku)
    offer = factories.offer_for(product, supplier, article=article, dealer_price=900)
    Product.objects.filter(pk=product.pk).update(offer=offer)


def mouse_to_alstyle():
    choose("VT77", Supplier.alstyle(), "V77")


def cable_to_acme():
    choose("AS101", factories.supplier(code="acme", name="Acme"), "ACME-1")


@pytest.mark.parametrize(
    "switch",
    [mouse_to_alstyle, cable_to_acme],
    ids=["listed-line-now-al-style", "al-style-line-now-another-supplier"],
)
def test_the_order_is_bought_when_its_own_purchases_are(two_suppliers, vtt, mocked_http, switch):
    # Given: Al-Style's submit without an answer (unknown) and VTT's list made.
    cart_until_submit(mocked_http)
    mocked_http.post(CART + "submit", status=500, body="")
    order_list(mocked_http, [])
    results = purchase_order(order=two_suppliers)
    assert [type(r).__name__ for _s, r in results] == ["SupplierPurchase", "FulfilmentRefused"]
    assert SupplierPurchase.objects.get(supplier__code="alstyle").status == "unknown"
    # When: a chosen offer switches, then the poller finds the Al-Style order.
    switch()
    mocked_http.reset()
    order_list(
        mocked_http,
        [{"id": 312002, "date": now_almaty(), "status": "N", "external_id": "kaspi-102"}],
    )
    poll_supplier_purchases()

    # Then: bought only once VTT's list is ordered as well.
    assert SupplierPurchase.objects.get(supplier__code="alstyle").status == "submitted"
    assert Order.objects.get(pk=two_suppliers.pk).fulfilment == "accepted"
    mark_list_ordered(purchase=SupplierPurchase.objects.get(supplier=vtt))
    assert Order.objects.get(pk=two_suppliers.pk).fulfilment == "purchased"


@pytest.mark.parametrize(
    "switch",
    [mouse_to_alstyle, cable_to_acme],
    ids=["listed-line-now-al-style", "al-style-line-now-another-supplier"],
)
def test_purchase_order_again_buys_nothing_after_an_offer_switched(
    two_suppliers, vtt, mocked_http, switch
):
    per_supplier.alstyle_purchase_answers(mocked_http)
    purchase_order(order=two_suppliers)  # Al-Style submitted, VTT's list made
    calls = len(mocked_http.calls)
    switch()

    again = purchase_order(order=Order.objects.get(pk=two_suppliers.pk))

    assert sorted(s.code for s, _r in again) == ["alstyle", "vtt"]
    assert all(isinstance(r, Exception) for _s, r in again)  # "already", nothing new
    assert sorted(SupplierPurchase.objects.values_list("supplier__code", "status")) == [
        ("alstyle", "submitted"),
        ("vtt", "listed"),
    ]
    assert len(mocked_http.calls) == calls  # Al-Style was asked nothing
