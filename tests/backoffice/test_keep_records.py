"""Records that mirror Kaspi or hold money are never deleted from the admin (owner
included); a direct sale is cancelled instead; system fields of an order are read-only."""

import pytest
from django.urls import reverse

from backoffice.core.audit import audit
from orders.models import Order, SupplierPurchase
from orders.services.status import OrderActionRefused, cancel_order
from payments.models import PaymentEvent, WebhookDelivery
from payments.services.create import create_payment


@pytest.fixture
def records():
    kaspi = Order.objects.create(
        kaspi_id="K1", code="5001", status="ACCEPTED_BY_MERCHANT", total_price=1000
    )
    direct = Order.objects.create(channel=Order.Channel.DIRECT, code="D-1", total_price=500)
    payment = create_payment(amount=500)
    event = PaymentEvent.objects.create(
        payment=payment, source="poll", key="e1", status_before="new", status_after="new"
    )
    delivery = WebhookDelivery.objects.create(ip="127.0.0.1", body="{}")
    purchase = SupplierPurchase.objects.create(order=kaspi, status="sent")
    entry = audit(user=None, action="order.fulfilment", obj=kaspi)
    return {
        "orders_order": [kaspi, direct],
        "payments_payment": [payment],
        "payments_paymentevent": [event],
        "payments_webhookdelivery": [delivery],
        "orders_supplierpurchase": [purchase],
        "backoffice_auditentry": [entry],
    }


def test_owner_cannot_delete_money_or_kaspi_records(staff_client, records):
    for name, objects in records.items():
        for obj in objects:
            delete = staff_client.post(
                reverse(f"admin:{name}_delete", args=[obj.pk]), {"post": "yes"}
            )
            assert delete.status_code == 403, name
            assert type(obj).objects.filter(pk=obj.pk).exists(), name
            page = staff_client.get(reverse(f"admin:{name}_change", args=[obj.pk]))
            assert page.status_code == 200, name
            assert reverse(f"admin:{name}_delete", args=[obj.pk]) not in page.text, name
        listing = staff_client.get(reverse(f"admin:{name}_changelist"))
        assert 'value="delete_selected"' not in listing.text, name


def test_order_page_edits_only_the_staff_fields(staff_client, records):
    kaspi, direct = records["orders_order"]
    for order in (kaspi, direct):
        url = reverse("admin:orders_order_change", args=[order.pk])
        page = staff_client.get(url)
        assert "Yours to edit (staff)" in page.text
        form_fields = set(page.context["adminform"].form.fields)
        assert "staff_note" in form_fields
        assert form_fields <= {
            "staff_note",
            "needs_attention",
            "attention_reason",
            "customer_name",
            "customer_phone",
            "delivery_address",
            "payment_mode",
            "delivery_mode",
            "is_kaspi_delivery",
            "pre_order",
            "planned_delivery_date",
            "delivery_cost",
        }, form_fields
        assert {"status", "total_price", "kaspi_id", "code", "creation_date"}.isdisjoint(
            form_fields
        )


def test_direct_sale_is_cancelled_not_deleted(records, django_user_model):
    _kaspi, direct = records["orders_order"]
    user = django_user_model.objects.create_user("clerk", password="x", is_staff=True)
    cancel_order(order=direct, reason="BUYER_CANCELLATION_BY_MERCHANT", user=user)
    direct.refresh_from_db()
    assert direct.status == "CANCELLED"
    from backoffice.models import AuditEntry

    assert AuditEntry.objects.filter(action="order.cancel", object_id=str(direct.pk)).exists()


def test_paid_direct_sale_needs_its_refund_first(records):
    from django.utils import timezone

    _kaspi, direct = records["orders_order"]
    direct.paid_at = timezone.now()
    direct.save()
    with pytest.raises(OrderActionRefused, match="refund"):
        cancel_order(order=direct, reason="BUYER_CANCELLATION_BY_MERCHANT")
    direct.refresh_from_db()
    assert direct.status != "CANCELLED"


def test_staff_note_survives_a_kaspi_reimport(staff_client, records):
    kaspi, _direct = records["orders_order"]
    url = reverse("admin:orders_order_change", args=[kaspi.pk])
    response = staff_client.post(
        url, {"staff_note": "Покупатель просил позвонить", "needs_attention": "", **_inlines()}
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    kaspi.refresh_from_db()
    assert kaspi.staff_note == "Покупатель просил позвонить"
    assert (kaspi.status, kaspi.total_price) == ("ACCEPTED_BY_MERCHANT", 1000)


def _inlines():
    data = {}
    for prefix in ("entries", "purchases", "fulfilment_events", "actions"):
        data.update({f"{prefix}-TOTAL_FORMS": "0", f"{prefix}-INITIAL_FORMS": "0"})
    return data
