import json
import threading

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.urls import reverse

from orders.models import Order
from payments.models import Payment, PaymentEvent, WebhookDelivery
from payments.services.create import create_payment
from payments.services.events import PaymentRejected, apply_payment_event
from payments.services.intake import import_payments, signature_for
from tests import factories

WEBHOOK = "/api/kaspi-webhook"


def post_webhook(client, body: dict | str, *, signature=None, **extra):
    raw = body if isinstance(body, str) else json.dumps(body)
    sig = signature_for(raw.encode()) if signature is None else signature
    return client.post(
        WEBHOOK, data=raw, content_type="application/json", HTTP_X_SIGNATURE=sig, **extra
    )


@pytest.fixture
def payment():
    return create_payment(amount=50000, description="Заказ по телефону")


# --- State machine ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "target", "allowed"),
    [
        ("created", "pending", True),
        ("created", "paid", True),
        ("pending", "paid", True),
        ("pending", "failed", True),
        ("pending", "expired", True),
        ("paid", "refunded", True),
        ("paid", "failed", False),
        ("paid", "pending", False),
        ("failed", "paid", False),
        ("expired", "paid", False),
        ("refunded", "paid", False),
        ("pending", "refunded", False),
    ],
)
def test_state_machine(start, target, allowed):
    payment = Payment.objects.create(provider="demo", amount=100, status=start)
    if allowed:
        result = apply_payment_event(payment_id=payment.pk, source="t", key="k", status=target)
        assert result.payment.status == target
    else:
        with pytest.raises(PaymentRejected, match=f"cannot go from {start} to {target}"):
            apply_payment_event(payment_id=payment.pk, source="t", key="k", status=target)
        assert Payment.objects.get(pk=payment.pk).status == start
        assert not PaymentEvent.objects.filter(payment=payment).exists()


def test_same_event_twice_applies_once(payment):
    first = apply_payment_event(
        payment_id=payment.pk, source="webhook", key="T1:paid", status="paid", amount=50000
    )
    second = apply_payment_event(
        payment_id=payment.pk, source="webhook", key="T1:paid", status="paid", amount=50000
    )
    assert first.changed
    assert second.duplicate
    assert PaymentEvent.objects.filter(source="webhook").count() == 1


def test_one_live_payment_per_order():
    order = Order.objects.create(channel="direct", code="D1", total_price=1000)
    first = create_payment(amount=1000, order=order)
    with pytest.raises(PaymentRejected, match="already has a payment"):
        create_payment(amount=1000, order=order)
    apply_payment_event(payment_id=first.pk, source="t", key="f", status="failed")
    assert create_payment(amount=1000, order=order).status == "pending"


def test_kaspi_orders_cannot_be_paid_here():
    order = Order.objects.create(channel="kaspi", kaspi_id="X", code="K1")
    with pytest.raises(PaymentRejected, match="paid inside Kaspi"):
        create_payment(amount=1000, order=order)


# --- Demo flow through the views --------------------------------------------------------------


def test_demo_flow_end_to_end(client, payment):
    page = client.get(f"/pay/{payment.id}/")
    assert page.status_code == 200
    assert "50000 ₸" in page.text
    assert "<svg" in page.text
    assert client.get(f"/pay/{payment.id}/status.json").json()["status"] == "pending"

    client.post(f"/pay/{payment.id}/demo/", {"result": "paid"})

    assert client.get(f"/pay/{payment.id}/status.json").json()["status"] == "paid"
    payment.refresh_from_db()
    order = Order.objects.get(code=payment.reference)
    assert (order.channel, order.total_price, order.paid_at) == ("direct", 50000, payment.paid_at)


def test_paid_checkout_creates_order_from_basket():
    factories.product(article="1", sku="AS1")
    payment = create_payment(
        amount=3000,
        basket=[{"sku": "AS1", "name": "Кабель", "quantity": 2, "price": 1500}],
    )
    apply_payment_event(payment_id=payment.pk, source="t", key="p", status="paid")
    order = Payment.objects.get(pk=payment.pk).order
    line = order.entries.get()
    assert (line.offer_code, line.quantity, line.total_price, line.product.sku) == (
        "AS1",
        2,
        3000,
        "AS1",
    )


def test_unknown_payment_page_is_404(client):
    assert client.get("/pay/00000000-0000-0000-0000-000000000000/").status_code == 404


# --- Webhook ----------------------------------------------------------------------------------


def notification(payment, **kw):
    body = {
        "orderId": payment.reference,
        "amount": payment.amount,
        "status": "completed",
        "transactionId": "TXN-1",
    }
    body.update(kw)
    return body


def test_webhook_applies_signed_notification(client, payment):
    response = post_webhook(client, notification(payment))
    assert response.status_code == 200
    assert response.json() == {"ok": True, "duplicate": False, "status": "paid"}
    delivery = WebhookDelivery.objects.get()
    assert (delivery.result, delivery.http_status, delivery.payment_id) == (
        "applied",
        200,
        payment.pk,
    )


@pytest.mark.parametrize(
    ("signature", "status"),
    [("", 401), ("0" * 64, 401)],
    ids=["missing", "forged"],
)
def test_webhook_bad_signature_changes_nothing(client, payment, signature, status):
    response = post_webhook(client, notification(payment), signature=signature)
    assert response.status_code == status
    assert Payment.objects.get(pk=payment.pk).status == "pending"
    delivery = WebhookDelivery.objects.get()  # stored anyway, with the error
    assert delivery.result == "rejected"
    assert "X-Signature" in delivery.error


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        ("{not json", 400, "not JSON"),
        (
            {"orderId": "NOPE", "amount": 1, "status": "paid", "transactionId": "T"},
            404,
            "unknown order reference",
        ),
        ("AMOUNT", 400, "does not match"),
        ({"orderId": "X"}, 400, "missing field"),
        ("STATUS", 400, "unknown status"),
    ],
    ids=["malformed", "unknown-ref", "amount-mismatch", "missing-fields", "bad-status"],
)
def test_webhook_bad_payloads(client, payment, body, status, error):
    if body == "AMOUNT":
        body = notification(payment, amount=1)
    elif body == "STATUS":
        body = notification(payment, status="maybe")
    response = post_webhook(client, body)
    assert response.status_code == status
    assert error in response.json()["error"]
    assert Payment.objects.get(pk=payment.pk).status == "pending"


def test_webhook_replay_is_idempotent(client, payment):
    for _ in range(5):
        assert post_webhook(client, notification(payment)).status_code == 200
    assert PaymentEvent.objects.filter(source="webhook").count() == 1
    assert WebhookDelivery.objects.filter(result="duplicate").count() == 4


def test_webhook_ip_allowlist_and_size_cap(client, payment, settings):
    settings.PAYMENTS_WEBHOOK_ALLOWED_IPS = ["10.0.0.0/8"]
    assert post_webhook(client, notification(payment)).status_code == 403
    settings.PAYMENTS_WEBHOOK_ALLOWED_IPS = ["127.0.0.1"]
    settings.PAYMENTS_WEBHOOK_MAX_BYTES = 10
    assert post_webhook(client, notification(payment)).status_code == 413
    settings.PAYMENTS_WEBHOOK_MAX_BYTES = 65536
    assert post_webhook(client, notification(payment)).status_code == 200


def test_webhook_off_without_secret(client, payment, settings):
    settings.PAYMENTS_WEBHOOK_SECRET = ""
    assert post_webhook(client, notification(payment), signature="x").status_code == 503


@pytest.mark.django_db(transaction=True)
def test_concurrent_duplicates_change_payment_once():
    if connection.vendor != "postgresql":
        pytest.skip("real row locks need PostgreSQL (CI runs this leg)")
    from django.test import Client

    payment = create_payment(amount=7000)
    body = notification(payment, transactionId="TXN-RACE")
    codes = []

    def deliver():
        try:
            codes.append(post_webhook(Client(), body).status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=deliver) for _ in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert codes == [200] * 50
    assert PaymentEvent.objects.filter(source="webhook", payment=payment).count() == 1
    assert Payment.objects.get(pk=payment.pk).status == "paid"
    assert Order.objects.filter(code=payment.reference).count() == 1


# --- JSON import ------------------------------------------------------------------------------


def rows_for(*payments, status="completed"):
    return [
        {"orderId": p.reference, "amount": p.amount, "status": status, "transactionId": f"T{n}"}
        for n, p in enumerate(payments)
    ]


def test_import_happy_path_and_reimport():
    a, b = create_payment(amount=100), create_payment(amount=200)
    data = json.dumps(rows_for(a, b)).encode()

    report = import_payments(data)
    assert (report.applied, report.duplicates, report.errors) == (2, 0, [])
    assert set(Payment.objects.values_list("status", flat=True)) == {"paid"}

    again = import_payments(data)
    assert (again.applied, again.duplicates, again.errors) == (0, 2, [])
    assert PaymentEvent.objects.filter(source="import").count() == 2


def test_import_one_bad_row_applies_nothing():
    a = create_payment(amount=100)
    rows = rows_for(a) + [
        {"orderId": "NOPE", "amount": "x", "status": "paid", "transactionId": "Z"}
    ]
    report = import_payments(json.dumps(rows).encode())
    assert report.applied == 0
    assert report.errors == ["row 2: amount 'x' is not a number"]
    assert Payment.objects.get(pk=a.pk).status == "pending"


def test_import_excel_bom_duplicated_rows_and_wrong_types():
    a = create_payment(amount=100)
    rows = rows_for(a) + rows_for(a)  # the same row twice
    report = import_payments(b"\xef\xbb\xbf" + json.dumps(rows).encode())
    assert (report.applied, report.duplicates, report.errors) == (1, 1, [])

    assert import_payments(b'{"orderId": 1}').errors == ["expected a JSON list of payments"]
    assert import_payments(b"[1, 2").errors[0].startswith("not a JSON file")
    wrong = import_payments(
        json.dumps(
            [{"orderId": a.reference, "amount": True, "status": "paid", "transactionId": "Q"}]
        ).encode()
    )
    assert wrong.errors == ["row 1: amount True is not a number"]


def test_import_size_cap(settings):
    settings.PAYMENTS_IMPORT_MAX_BYTES = 100
    report = import_payments(b"[" + b" " * 200 + b"]")
    assert "the limit is 100" in report.errors[0]


def test_import_command(tmp_path, capsys):
    a = create_payment(amount=100)
    path = tmp_path / "p.json"
    path.write_text(json.dumps(rows_for(a)))
    call_command("import_payments", str(path), "--dry-run")
    assert Payment.objects.get(pk=a.pk).status == "pending"
    call_command("import_payments", str(path))
    assert "applied=1" in capsys.readouterr().out
    path.write_text("[{}]")
    with pytest.raises(CommandError, match="nothing applied"):
        call_command("import_payments", str(path))


def test_create_payment_command(capsys):
    call_command("create_payment", "--amount", "5000")
    out = capsys.readouterr().out
    payment = Payment.objects.get()
    assert f"reference: {payment.reference}" in out
    assert f"/pay/{payment.id}/" in out
    with pytest.raises(CommandError, match="positive"):
        call_command("create_payment", "--amount", "0")


# --- Admin --------------------------------------------------------------------------------------


def test_admin_pages(staff_client, payment):
    for name in ["payment", "paymentevent", "webhookdelivery"]:
        assert staff_client.get(reverse(f"admin:payments_{name}_changelist")).status_code == 200
    assert (
        staff_client.get(reverse("admin:payments_payment_change", args=[payment.pk])).status_code
        == 200
    )
    assert staff_client.get(reverse("admin:payments_payment_import")).status_code == 200


def test_admin_refund_records_manual_refund(staff_client, payment):
    apply_payment_event(payment_id=payment.pk, source="t", key="p", status="paid")
    selected = {"action": "refund", "_selected_action": [payment.pk]}
    asked = staff_client.post(reverse("admin:payments_payment_changelist"), selected)
    assert "Да, записать возврат" in asked.text or "Yes, record the refund" in asked.text
    assert Payment.objects.get(pk=payment.pk).status == "paid"  # it asks first
    staff_client.post(reverse("admin:payments_payment_changelist"), {**selected, "confirm": "yes"})
    assert Payment.objects.get(pk=payment.pk).status == "refunded"
    assert PaymentEvent.objects.filter(source="staff").exists()


def test_webhook_secret_never_in_pages_or_logs(staff_client, payment, settings, caplog):
    post_webhook(staff_client, notification(payment))
    page = staff_client.get(reverse("admin:payments_webhookdelivery_changelist")).text
    assert settings.PAYMENTS_WEBHOOK_SECRET not in page
    assert settings.PAYMENTS_WEBHOOK_SECRET not in caplog.text


# --- Reconciliation ---------------------------------------------------------------------------


def test_reconciliation_finds_each_kind_and_exports_csv(staff_client):
    orphan = Payment.objects.create(provider="demo", amount=100, status="paid")
    Order.objects.create(
        channel="direct", code="D-NOPAY", total_price=500, paid_at="2026-01-01T00:00:00Z"
    )
    mismatched = Order.objects.create(channel="direct", code="D-DIFF", total_price=900)
    Payment.objects.create(provider="demo", amount=1000, status="paid", order=mismatched)
    fine = create_payment(amount=300)
    apply_payment_event(payment_id=fine.pk, source="t", key="p", status="paid")

    from payments.services.reconcile import reconcile

    kinds = sorted((row.kind, row.reference or row.order) for row in reconcile())
    assert kinds == [
        ("amount_mismatch", Payment.objects.get(order=mismatched).reference),
        ("order_paid_without_payment", "D-NOPAY"),
        ("paid_without_order", orphan.reference),
    ]
    url = reverse("admin:payments_payment_reconciliation")
    assert "D-NOPAY" in staff_client.get(url).text
    csv_text = staff_client.get(url, {"format": "csv"}).content.decode()
    assert csv_text.splitlines()[0] == "kind,payment,order,payment_amount,order_amount,detail"
    assert len(csv_text.splitlines()) == 4


# --- A payment for an order is checked against it (issue 15, item 10) --------------------------


def test_payment_for_an_order_must_equal_the_amount_due(capsys):
    order = Order.objects.create(channel="direct", code="D123", total_price=50000)
    with pytest.raises(PaymentRejected, match="differs from the 50000 ₸ due"):
        create_payment(amount=1, order=order)
    with pytest.raises(CommandError, match="differs from the 50000 ₸ due"):
        call_command("create_payment", "--order", "D123", "--amount", "1")
    assert not Payment.objects.exists()
    call_command("create_payment", "--order", "D123")  # the amount due by default
    assert Payment.objects.get().amount == 50000
    Order.objects.filter(pk=order.pk).update(paid_at="2026-01-01T00:00:00Z")
    Payment.objects.update(status="failed")
    with pytest.raises(PaymentRejected, match="already paid"):
        create_payment(order=Order.objects.get(pk=order.pk))


def test_paid_amount_other_than_the_order_total_never_marks_it_paid(mailoutbox, settings):
    settings.STAFF_ALERT_EMAILS = ["staff@example.kz"]
    order = Order.objects.create(channel="direct", code="D124", total_price=50000)
    payment = create_payment(amount=50000, order=order)
    # The order changed after the QR was made (a line removed): 50 000 paid, 45 000 due.
    Order.objects.filter(pk=order.pk).update(total_price=45000)
    from django.test import TestCase

    with TestCase.captureOnCommitCallbacks(execute=True):
        apply_payment_event(payment_id=payment.pk, source="poll", key="k", status="paid")
    order.refresh_from_db()
    assert order.paid_at is None
    assert order.needs_attention
    assert "paid 50000 ₸ but order D124 totals 45000 ₸" in order.attention_reason
    assert "not marked paid" in PaymentEvent.objects.get(key="k").note
    assert len(mailoutbox) == 1
    assert "D124" in mailoutbox[0].body


# --- Oversized webhooks and no-op events (item 12) ----------------------------------------------


@pytest.mark.parametrize("size", [100 * 1024, 5 * 1024 * 1024])
def test_oversized_webhook_is_stored_cut_and_answered_in_json(client, payment, size):
    body = json.dumps({**notification(payment), "padding": "x" * size})
    response = post_webhook(client, body)
    assert response.status_code == 413
    assert response["Content-Type"] == "application/json"
    assert "body too large" in response.json()["error"]
    delivery = WebhookDelivery.objects.get()
    assert delivery.body_bytes == len(body.encode())
    assert len(delivery.body) == 64 * 1024
    assert (delivery.result, delivery.http_status) == ("rejected", 413)
    assert Payment.objects.get(pk=payment.pk).status == "pending"


def test_normal_webhook_records_its_size(client, payment):
    body = json.dumps(notification(payment))
    assert post_webhook(client, body).status_code == 200
    assert WebhookDelivery.objects.get().body_bytes == len(body.encode())


def test_reimporting_what_the_webhook_applied_adds_no_event(client, payment):
    assert post_webhook(client, notification(payment, transactionId="T0")).status_code == 200
    before = PaymentEvent.objects.count()
    report = import_payments(json.dumps(rows_for(payment)).encode())
    assert (report.applied, report.duplicates, report.errors) == (0, 1, [])
    assert PaymentEvent.objects.count() == before
