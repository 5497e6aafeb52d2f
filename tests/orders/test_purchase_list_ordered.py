"""A price-file supplier's purchase list, once staff ordered it by hand, is marked
"ordered" from its page; when every supplier of the order is bought from, the order moves
to "bought from supplier" (as the Al-Style purchase moves it). Audited, idempotent."""

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from backoffice.models import AuditEntry
from orders.models import FulfilmentEvent, Order, OrderEntry, SupplierPurchase
from orders.services.fulfilment import (
    FulfilmentRefused,
    make_purchase_list,
    mark_list_ordered,
    purchase_order,
)
from tests import factories
from tests.orders import test_purchase_per_supplier as per_supplier

vtt, two_suppliers = per_supplier.vtt, per_supplier.two_suppliers  # the fixtures


@pytest.fixture
def vtt_only(vtt):
    mouse = factories.product(article="V77", sku="VT77", price1=5000, with_offer=False)
    factories.offer_for(mouse, vtt, article="VTT-77", name="Мышь", dealer_price=4800, quantity=4)
    order = Order.objects.create(
        kaspi_id="MTAz", code="103", status="ACCEPTED_BY_MERCHANT", fulfilment="accepted"
    )
    OrderEntry.objects.create(
        order=order,
        entry_number=1,
        offer_code="VT77",
        name="Мышь",
        quantity=1,
        base_price=9000,
        total_price=9000,
        product=mouse,
    )
    return order


def test_the_page_button_marks_the_list_ordered_and_moves_the_order_once(
    staff_client,
    vtt_only,
    vtt,
    settings,
):
    settings.LANGUAGE_CODE = "ru"
    [(_supplier, listed)] = purchase_order(order=vtt_only)
    page_url = reverse("admin:orders_supplierpurchase_list", args=[listed.pk])
    assert "Заказано у поставщика" in staff_client.get(page_url).content.decode()
    url = reverse("admin:orders_supplierpurchase_ordered", args=[listed.pk])

    first = staff_client.post(url)
    second = staff_client.post(url)

    assert first.status_code == second.status_code == 302
    listed.refresh_from_db()
    assert listed.status == SupplierPurchase.Status.ORDERED
    assert Order.objects.get(pk=vtt_only.pk).fulfilment == "purchased"
    assert FulfilmentEvent.objects.filter(order=vtt_only, to_status="purchased").count() == 1
    assert AuditEntry.objects.filter(action="purchase.ordered").count() == 1
    # Ordered lists stay printable and are never listed again.
    assert staff_client.get(page_url).status_code == 200
    assert all(isinstance(r, FulfilmentRefused) for _s, r in purchase_order(order=vtt_only))


def test_the_order_waits_for_every_supplier(two_suppliers, vtt):
    listed = make_purchase_list(order=two_suppliers, supplier=vtt)

    mark_list_ordered(purchase=listed)

    assert SupplierPurchase.objects.get(pk=listed.pk).status == "ordered"
    assert Order.objects.get(pk=two_suppliers.pk).fulfilment == "accepted"  # Al-Style not yet


def bought_events(order):
    return list(
        FulfilmentEvent.objects.filter(order=order, to_status="purchased").values_list(
            "note", flat=True
        )
    )


def test_al_style_bought_first_the_order_waits_for_the_list(two_suppliers, vtt, mocked_http):
    per_supplier.alstyle_purchase_answers(mocked_http)
    purchase_order(order=two_suppliers)  # Al-Style submitted, VTT's list made
    listed = SupplierPurchase.objects.get(supplier=vtt)

    assert Order.objects.get(pk=two_suppliers.pk).fulfilment == "accepted"
    assert bought_events(two_suppliers) == []

    mark_list_ordered(purchase=listed)
    mark_list_ordered(purchase=listed)  # twice: nothing more
    purchase_order(order=Order.objects.get(pk=two_suppliers.pk))  # nothing new either

    assert Order.objects.get(pk=two_suppliers.pk).fulfilment == "purchased"
    assert bought_events(two_suppliers) == ["ordered by hand from VTT"]
    assert SupplierPurchase.objects.count() == 2


def test_the_list_ordered_first_al_style_completes_the_order(two_suppliers, vtt, mocked_http):
    listed = make_purchase_list(order=two_suppliers, supplier=vtt)
    mark_list_ordered(purchase=listed)
    assert Order.objects.get(pk=two_suppliers.pk).fulfilment == "accepted"
    per_supplier.alstyle_purchase_answers(mocked_http)

    results = purchase_order(order=two_suppliers)  # the list is refused as "already"
    calls = len(mocked_http.calls)
    again = purchase_order(order=Order.objects.get(pk=two_suppliers.pk))

    assert [type(r).__name__ for _s, r in results] == ["FulfilmentRefused", "SupplierPurchase"]
    assert all(isinstance(r, FulfilmentRefused) for _s, r in again)
    assert len(mocked_http.calls) == calls  # the second run asked Al-Style nothing
    assert Order.objects.get(pk=two_suppliers.pk).fulfilment == "purchased"
    assert bought_events(two_suppliers) == ["Al-Style order 555"]


def test_a_single_supplier_order_is_bought_by_its_one_purchase(vtt_only, mocked_http):
    [(_supplier, listed)] = purchase_order(order=vtt_only)
    assert Order.objects.get(pk=vtt_only.pk).fulfilment == "accepted"  # listed, not ordered

    mark_list_ordered(purchase=listed)

    assert Order.objects.get(pk=vtt_only.pk).fulfilment == "purchased"
    assert bought_events(vtt_only) == ["ordered by hand from VTT"]


def test_only_a_listed_purchase_can_be_marked(vtt_only):
    purchase = SupplierPurchase.objects.create(
        order=vtt_only, status=SupplierPurchase.Status.FAILED, reference="x"
    )
    with pytest.raises(FulfilmentRefused):
        mark_list_ordered(purchase=purchase)


def test_marking_needs_the_change_order_permission(client, django_user_model, vtt_only, vtt):
    [(_supplier, listed)] = purchase_order(order=vtt_only)
    user = django_user_model.objects.create_user("viewer", password="pw-123456", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_supplierpurchase"))
    client.force_login(user)

    response = client.post(reverse("admin:orders_supplierpurchase_ordered", args=[listed.pk]))

    assert response.status_code == 403
    assert SupplierPurchase.objects.get(pk=listed.pk).status == "listed"
