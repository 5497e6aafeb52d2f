from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse
from django.utils import timezone
from responses import matchers

from backoffice.exceptions import ExternalServiceError
from payments.models import KaspiQrDevice, Payment, PaymentEvent
from payments.services.create import create_payment
from payments.services.polling import poll_payment
from payments.services.providers import KaspiQrProvider, ProviderUnavailable
from payments.tasks import poll_payment_task, sweep_payments_task

API = "https://mtokentest.kaspi.kz:8543/r1/v01/"
STATUS = "https://mtokentest.kaspi.kz:8543/r1/v02/payment/status/"
KEY = "test_kaspi-qr-api-key-abcdef123456"


@pytest.fixture(autouse=True)
def kaspi_qr(settings, monkeypatch):
    settings.PAYMENTS_PROVIDER = "kaspi_qr"
    settings.KASPI_QR_API_KEY = KEY
    monkeypatch.setattr("payments.tasks.time.sleep", lambda s: None)


@pytest.fixture
def device():
    return KaspiQrDevice.objects.create(
        device_id="kaspi-backoffice", trade_point_id="42", token="device-token-0123456789xyz"
    )


def ok(data):
    return {"StatusCode": 0, "Message": "", "Data": data}


def created_answer(payment_id="9001", poll=5):
    return ok(
        {
            "QrToken": "https://pay.kaspi.kz/pay/abc",
            "QrPaymentId": payment_id,
            "ExpireDate": "2026-11-23T20:00:00+05:00",
            "QrPaymentBehaviorOptions": {
                "StatusPollingInterval": poll,
                "QrCodeScanWaitTimeout": 180,
                "PaymentConfirmationTimeout": 65,
            },
        }
    )


def test_register_device_lists_then_stores_token(mocked_http, capsys):
    for _ in range(2):
        mocked_http.get(
            API + "partner/tradepoints",
            json=ok([{"TradePointId": 42, "TradePointName": "Магазин на Абая"}]),
            match=[matchers.header_matcher({"Api-Key": KEY})],
        )
    call_command("kaspi_qr_register")
    assert "42: Магазин на Абая" in capsys.readouterr().out

    mocked_http.post(
        API + "device/register",
        json=ok({"DeviceToken": "device-token-0123456789xyz"}),
        match=[
            matchers.json_params_matcher({"DeviceId": "kaspi-backoffice", "TradePointId": "42"})
        ],
    )
    call_command("kaspi_qr_register", "--trade-point", "42")
    out = capsys.readouterr().out
    assert "devi…9xyz" in out
    assert "device-token-0123456789xyz" not in out
    device = KaspiQrDevice.objects.get()
    assert (device.token, device.trade_point_name) == (
        "device-token-0123456789xyz",
        "Магазин на Абая",
    )
    request_ids = {call.request.headers["X-Request-ID"] for call in mocked_http.calls}
    assert len(request_ids) == len(mocked_http.calls)  # a fresh id per call


def test_business_error_with_http_200_is_plain_words(mocked_http):
    mocked_http.get(
        API + "partner/tradepoints",
        json={"StatusCode": -14000002, "Message": "No trade points", "Data": None},
    )
    with pytest.raises(CommandError, match="create one in the Kaspi Pay app"):
        call_command("kaspi_qr_register")


def test_create_without_device_fails_clearly(mocked_http):
    with pytest.raises(ProviderUnavailable, match="kaspi_qr_register"):
        create_payment(amount=1000)
    assert Payment.objects.get().status == "failed"


def test_create_stores_kaspi_answer_and_polls_to_paid(
    mocked_http, device, django_capture_on_commit_callbacks
):
    mocked_http.post(API + "qr/create", json=created_answer())
    mocked_http.get(STATUS + "9001", json=ok({"Status": "QrTokenCreated"}))
    mocked_http.get(STATUS + "9001", json=ok({"Status": "Wait"}))
    mocked_http.get(STATUS + "9001", json=ok({"Status": "Processed", "TransactionId": "T77"}))

    with django_capture_on_commit_callbacks(execute=True):
        payment = create_payment(amount=15000)

    payment.refresh_from_db()
    assert payment.status == "paid"
    assert (payment.external_id, payment.transaction_id) == ("9001", "T77")
    assert payment.options["poll"] == 5
    assert payment.qr_token == "https://pay.kaspi.kz/pay/abc"
    body = mocked_http.calls[0].request.body
    assert b'"Amount": 15000' in body
    assert payment.reference.encode() in body
    assert PaymentEvent.objects.filter(source="poll", status_after="paid").count() == 1


@pytest.mark.parametrize(
    ("remote", "expected"),
    [
        ("Processed", "paid"),
        ("Error", "failed"),
        ("QrTokenCreated", "pending"),
        ("Wait", "pending"),
        ("SomethingNew", "pending"),
    ],
)
def test_status_mapping(mocked_http, device, remote, expected):
    payment = Payment.objects.create(
        provider="kaspi_qr", amount=100, status="pending", external_id="55", options={"poll": 5}
    )
    mocked_http.get(STATUS + "55", json=ok({"Status": remote}))
    poll_payment(payment_id=payment.pk)
    assert Payment.objects.get(pk=payment.pk).status == expected


def test_scan_timeout_expires(mocked_http, device):
    payment = Payment.objects.create(
        provider="kaspi_qr",
        amount=100,
        status="pending",
        external_id="56",
        options={"poll": 5, "scan_timeout": 180},
    )
    Payment.objects.filter(pk=payment.pk).update(created_at=timezone.now() - timedelta(minutes=5))
    mocked_http.get(STATUS + "56", json=ok({"Status": "QrTokenCreated"}))
    assert poll_payment(payment_id=payment.pk) is None
    assert Payment.objects.get(pk=payment.pk).status == "expired"


def test_poll_error_keeps_payment_open(mocked_http, device):
    payment = Payment.objects.create(
        provider="kaspi_qr", amount=100, status="pending", external_id="57", options={"poll": 7}
    )
    mocked_http.get(STATUS + "57", json={"StatusCode": -999, "Message": "down", "Data": None})
    assert poll_payment(payment_id=payment.pk) == 7
    assert Payment.objects.get(pk=payment.pk).status == "pending"


def test_poller_task_gives_up_after_max_polls(mocked_http, device, settings):
    settings.PAYMENTS_MAX_POLLS = 2
    payment = Payment.objects.create(
        provider="kaspi_qr", amount=100, status="pending", external_id="58", options={"poll": 5}
    )
    for _ in range(3):
        mocked_http.get(STATUS + "58", json=ok({"Status": "QrTokenCreated"}))
    assert poll_payment_task(str(payment.pk)) == "next check in 5 s"
    assert len(mocked_http.calls) == 3


def test_sweep_checks_payments_whose_poller_died(mocked_http, device):
    late = Payment.objects.create(
        provider="kaspi_qr",
        amount=100,
        status="pending",
        external_id="59",
        options={"poll": 5},
        next_poll_at=timezone.now() - timedelta(minutes=5),
    )
    Payment.objects.create(
        provider="kaspi_qr",
        amount=100,
        status="pending",
        external_id="60",
        options={"poll": 5},
        next_poll_at=timezone.now() + timedelta(seconds=5),
    )
    mocked_http.get(STATUS + "59", json=ok({"Status": "Processed", "TransactionId": "X"}))
    assert sweep_payments_task() == 1
    assert Payment.objects.get(pk=late.pk).status == "paid"


def test_unknown_key_is_refused(settings):
    settings.KASPI_QR_API_KEY = ""
    with pytest.raises(ExternalServiceError, match="KASPI_QR_API_KEY"):
        KaspiQrProvider().client  # noqa: B018


def test_device_token_masked_in_admin(staff_client, device):
    page = staff_client.get(reverse("admin:payments_kaspiqrdevice_changelist")).text
    assert "device-token-0123456789xyz" not in page
    assert "devi…9xyz" in page
