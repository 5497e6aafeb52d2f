from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse
from django.utils import timezone
from responses import matchers

from backoffice.core.exceptions import ExternalServiceError
from payments.models import KaspiQrDevice, Payment, PaymentEvent
from payments.services.create import create_payment
from payments.services.polling import POLLER_LOCK, poll_payment, run_poller, start_poller
from payments.services.providers import KaspiQrProvider, ProviderUnavailable
from payments.tasks import poll_payments_task, sweep_payments_task

API = "https://mtokentest.kaspi.kz:8543/r1/v01/"
STATUS = "https://mtokentest.kaspi.kz:8543/r1/v02/payment/status/"
KEY = "test_kaspi-qr-api-key-abcdef123456"


@pytest.fixture(autouse=True)
def kaspi_qr(settings, monkeypatch):
    settings.PAYMENTS_PROVIDER = "kaspi_qr"
    settings.KASPI_QR_API_KEY = KEY
    queued = []
    monkeypatch.setattr("django_q.tasks.async_task", lambda *a, **kw: queued.append(a))
    return queued


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
            # .NET style: 7 fractional digits and a +05:00 offset
            "ExpireDate": (timezone.now() + timedelta(seconds=180))
            .astimezone(timezone.get_fixed_timezone(300))
            .strftime("%Y-%m-%dT%H:%M:%S.%f0%z")
            .replace("+0500", "+05:00"),
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

    # TradePointId goes out as the number the list returned, not the typed text "42".
    mocked_http.post(
        API + "device/register",
        json=ok({"DeviceToken": "device-token-0123456789xyz"}),
        match=[matchers.json_params_matcher({"DeviceId": "kaspi-backoffice", "TradePointId": 42})],
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
    mocked_http, device, django_capture_on_commit_callbacks, kaspi_qr
):
    mocked_http.post(API + "qr/create", json=created_answer())
    mocked_http.get(STATUS + "9001", json=ok({"Status": "QrTokenCreated"}))
    mocked_http.get(STATUS + "9001", json=ok({"Status": "Wait"}))
    mocked_http.get(STATUS + "9001", json=ok({"Status": "Processed", "TransactionId": "T77"}))

    with django_capture_on_commit_callbacks(execute=True):
        payment = create_payment(amount=15000)
    assert kaspi_qr == [("payments.tasks.poll_payments_task",)]  # the one poller started
    for _ in range(3):
        poll_payment(payment_id=payment.pk)

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


# --- Expired vs failed (issue 15, item 6) ------------------------------------------------------


def open_payment(external_id, *, age, expires_in, **options):
    payment = Payment.objects.create(
        provider="kaspi_qr",
        amount=100,
        status="pending",
        external_id=external_id,
        options={"poll": 1, "scan_timeout": 5, "confirm_timeout": 65, **options},
        expires_at=timezone.now() + timedelta(seconds=expires_in),
    )
    Payment.objects.filter(pk=payment.pk).update(created_at=timezone.now() - timedelta(seconds=age))
    return payment


@pytest.mark.parametrize(
    ("age", "expires_in", "options", "expected"),
    [
        (1, 4, {}, "failed"),  # a decline while the QR is live
        (10, -5, {}, "expired"),  # Error after ExpireDate
        (10, 60, {}, "expired"),  # never scanned, scan timeout passed
        (10, -5, {"wait_since": "now-10"}, "expired"),  # scanned, then the QR expired
        (30, 60, {"wait_since": "now-20"}, "failed"),  # scanned and declined in time
        (100, 60, {"wait_since": "now-90"}, "expired"),  # confirmation timeout passed
    ],
)
def test_error_is_expired_after_the_deadlines_else_failed(
    mocked_http, device, age, expires_in, options, expected
):
    if "wait_since" in options:
        ago = int(options["wait_since"].split("-")[1])
        options["wait_since"] = (timezone.now() - timedelta(seconds=ago)).isoformat()
    payment = open_payment("70", age=age, expires_in=expires_in, **options)
    mocked_http.get(STATUS + "70", json=ok({"Status": "Error"}))
    assert poll_payment(payment_id=payment.pk) is None
    payment.refresh_from_db()
    assert payment.status == expected
    event = payment.events.get(source="poll")
    assert "provider status Error" in event.note


def test_waiting_past_the_timeouts_expires_locally(mocked_http, device):
    # The API keeps answering Wait: the confirmation timeout (65 s) ends it here.
    payment = open_payment(
        "71",
        age=120,
        expires_in=60,
        wait_since=(timezone.now() - timedelta(seconds=70)).isoformat(),
    )
    mocked_http.get(STATUS + "71", json=ok({"Status": "Wait"}))
    assert poll_payment(payment_id=payment.pk) is None
    assert Payment.objects.get(pk=payment.pk).status == "expired"
    # Not scanned and ExpireDate passed while the API still says QrTokenCreated.
    payment = open_payment("72", age=5, expires_in=-3, scan_timeout=180)
    mocked_http.get(STATUS + "72", json=ok({"Status": "QrTokenCreated"}))
    poll_payment(payment_id=payment.pk)
    assert Payment.objects.get(pk=payment.pk).status == "expired"


def test_a_live_qr_is_not_expired_early(mocked_http, device):
    # Two seconds before ExpireDate the customer may still scan: keep waiting.
    payment = open_payment("74", age=3, expires_in=2, scan_timeout=5)
    mocked_http.get(STATUS + "74", json=ok({"Status": "QrTokenCreated"}))
    assert poll_payment(payment_id=payment.pk) == 1
    assert Payment.objects.get(pk=payment.pk).status == "pending"


def test_scanned_buyer_keeps_the_confirmation_time_past_expire_date(mocked_http, device):
    payment = open_payment("73", age=8, expires_in=-3)
    mocked_http.get(STATUS + "73", json=ok({"Status": "Wait"}))
    assert poll_payment(payment_id=payment.pk) == 1
    payment.refresh_from_db()
    assert payment.status == "pending"
    assert payment.options["wait_since"]  # the scan is remembered


# --- Messages (item 7) ------------------------------------------------------------------------


def test_http_401_says_the_key_is_wrong_or_not_activated(mocked_http):
    mocked_http.get(
        API + "partner/tradepoints",
        status=401,
        json={"StatusCode": -10000, "Message": "Api-Key is missing or invalid"},
    )
    with pytest.raises(CommandError) as caught:
        call_command("kaspi_qr_register")
    text = str(caught.value)
    assert "API key is wrong or not activated" in text
    assert "Api-Key is missing or invalid" in text  # Kaspi's own words kept


@pytest.mark.parametrize(
    ("code", "meaning"),
    [(-1503, "the device is linked to another trade point"), (-99000002, "trade point not found")],
)
def test_business_error_shows_meaning_and_kaspis_message(mocked_http, code, meaning):
    mocked_http.get(
        API + "partner/tradepoints", json=ok([{"TradePointId": 1, "TradePointName": "A"}])
    )
    mocked_http.post(
        API + "device/register", json={"StatusCode": code, "Message": "Ошибка от Kaspi"}
    )
    with pytest.raises(CommandError) as caught:
        call_command("kaspi_qr_register", "--trade-point", "1")
    assert f"code {code}: {meaning}" in str(caught.value)
    assert "Ошибка от Kaspi" in str(caught.value)


def test_http_400_envelope_message_is_kept(mocked_http, device):
    mocked_http.post(
        API + "qr/create", status=400, json={"StatusCode": -1, "Message": "Amount is required"}
    )
    with pytest.raises(ExternalServiceError, match="Amount is required"):
        create_payment(amount=100)


def test_unknown_trade_point_is_refused_before_any_post(mocked_http):
    mocked_http.get(
        API + "partner/tradepoints", json=ok([{"TradePointId": 1, "TradePointName": "A"}])
    )
    with pytest.raises(CommandError, match="not in Kaspi's list"):
        call_command("kaspi_qr_register", "--trade-point", "7")
    assert [c.request.method for c in mocked_http.calls] == ["GET"]


# --- Base URL (item 9) --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://127.0.0.1:8753/r1", "http://127.0.0.1:8753/r1/v01"),
        ("http://127.0.0.1:8753/r1/", "http://127.0.0.1:8753/r1/v01"),
        ("https://mtokentest.kaspi.kz:8543/r1/v01/", "https://mtokentest.kaspi.kz:8543/r1/v01"),
    ],
)
def test_scheme_root_gets_v01(url, expected):
    from backoffice.settings import kaspi_qr_base_url

    assert kaspi_qr_base_url(url) == expected


def test_other_paths_are_refused_at_start_up():
    import os
    import subprocess
    import sys

    from django.conf import settings as django_settings

    env = {
        **os.environ,
        "PAYMENTS_PROVIDER": "kaspi_qr",
        "KASPI_QR_API_URL": "http://127.0.0.1:8753/v01",
        "DEBUG": "1",
        "DJANGO_SETTINGS_MODULE": "backoffice.settings",
    }
    done = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=django_settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "must end in the scheme root /r1" in done.stderr


def test_client_calls_v01_and_status_under_v02(mocked_http, settings, device):
    from backoffice.settings import kaspi_qr_base_url

    settings.KASPI_QR_API_URL = kaspi_qr_base_url("http://127.0.0.1:8753/r1")
    mocked_http.post("http://127.0.0.1:8753/r1/v01/qr/create", json=created_answer(payment_id="80"))
    mocked_http.get(
        "http://127.0.0.1:8753/r1/v02/payment/status/80", json=ok({"Status": "Processed"})
    )
    payment = create_payment(amount=100)
    poll_payment(payment_id=payment.pk)
    assert Payment.objects.get(pk=payment.pk).status == "paid"


# --- One poller for all open payments (item 8) ------------------------------------------------


class FakeTime:
    """A clock and a sleep that move time instead of waiting: the poller's clock and the
    wall clock its payments are planned by (django.utils.timezone.now) move together,
    so the time a round takes on a loaded machine does not shorten the next sleep."""

    def __init__(self, monkeypatch):
        self.now = 0.0
        self.slept = []
        base = timezone.now()
        monkeypatch.setattr("django.utils.timezone.now", lambda: base + timedelta(seconds=self.now))

    def clock(self):
        return self.now

    def sleep(self, seconds):
        self.slept.append(seconds)
        self.now += seconds


def waiting_payments(mocked_http, count, poll=5):
    payments = []
    for n in range(count):
        payment = Payment.objects.create(
            provider="kaspi_qr",
            amount=100,
            status="pending",
            external_id=str(500 + n),
            options={"poll": poll, "scan_timeout": 180, "confirm_timeout": 65},
            created_at=timezone.now(),
            next_poll_at=timezone.now(),
        )
        mocked_http.get(STATUS + str(500 + n), json=ok({"Status": "QrTokenCreated"}))
        payments.append(payment)
    return payments


def test_one_poller_checks_every_due_payment_each_interval(mocked_http, device, monkeypatch):
    fake = FakeTime(monkeypatch)
    waiting_payments(mocked_http, 20)
    run = run_poller(holder="p1", slice_seconds=12, sleep=fake.sleep, clock=fake.clock)
    assert run.outcome == "handover"
    # Rounds at 0, 5 and 10 s: each payment checked once per round, no sleep longer than
    # the interval, and the lock released for the next poller.
    assert run.checks == 60
    assert run.rounds >= 3
    assert len(mocked_http.calls) == 60
    assert max(fake.slept) <= 5
    assert sum(fake.slept) == pytest.approx(10, abs=0.5)
    assert run_poller(holder="p2", slice_seconds=0, sleep=fake.sleep, clock=fake.clock).outcome


def test_a_second_poller_finds_the_lock_taken(mocked_http, device):
    from backoffice.models import JobLock

    mocked_http.assert_all_requests_are_fired = False
    waiting_payments(mocked_http, 2)
    JobLock.objects.create(kind=POLLER_LOCK, holder="other", heartbeat_at=timezone.now())
    assert run_poller(holder="p2", slice_seconds=10).outcome == "busy"
    assert len(mocked_http.calls) == 0
    assert start_poller() is False  # alive: nothing queued
    JobLock.objects.filter(kind=POLLER_LOCK).update(
        heartbeat_at=timezone.now() - timedelta(minutes=5)
    )
    assert start_poller() is True  # a dead poller is replaced


def test_poller_task_hands_over_while_payments_are_open_and_stops_when_none(
    mocked_http, device, kaspi_qr, settings
):
    settings.PAYMENTS_POLLER_SLICE_SECONDS = 0
    (payment,) = waiting_payments(mocked_http, 1)
    assert poll_payments_task().startswith("handover")
    assert kaspi_qr == [("payments.tasks.poll_payments_task",)]
    Payment.objects.filter(pk=payment.pk).update(status="paid")
    assert poll_payments_task().startswith("idle")
    assert len(kaspi_qr) == 1


def test_many_payments_start_one_poller(mocked_http, device, kaspi_qr):
    from backoffice.models import JobLock

    mocked_http.post(API + "qr/create", json=created_answer(payment_id="90"))
    create_payment(amount=100)
    assert start_poller() is True
    assert start_poller() is False  # already queued: a burst of payments queues one poller
    assert kaspi_qr == [("payments.tasks.poll_payments_task",)]
    JobLock.objects.update_or_create(
        kind=POLLER_LOCK, defaults={"holder": "p", "heartbeat_at": timezone.now()}
    )
    assert start_poller() is False


# --- Admin action "Refresh status" (item 11) ----------------------------------------------------


def test_admin_refresh_status_polls_through_the_service(mocked_http, device, staff_client):
    open_one = Payment.objects.create(
        provider="kaspi_qr", amount=100, status="pending", external_id="95", options={"poll": 5}
    )
    waiting = Payment.objects.create(
        provider="kaspi_qr", amount=200, status="pending", external_id="96", options={"poll": 5}
    )
    mocked_http.get(STATUS + "95", json=ok({"Status": "Processed", "TransactionId": "T9"}))
    mocked_http.get(STATUS + "96", json=ok({"Status": "Wait"}))
    response = staff_client.post(
        reverse("admin:payments_payment_changelist"),
        {"action": "refresh_status", "_selected_action": [open_one.pk, waiting.pk]},
        follow=True,
    )
    assert response.status_code == 200
    open_one.refresh_from_db()
    assert (open_one.status, open_one.transaction_id) == ("paid", "T9")
    assert Payment.objects.get(pk=waiting.pk).status == "pending"
    # Each payment's message says what the provider answered and what it changed.
    assert sorted(str(m) for m in response.context["messages"]) == sorted(
        [
            f"{open_one.reference}: the provider answered «paid (Processed)»; the status "
            "changed from «awaiting payment» to «paid».",
            f"{waiting.reference}: the provider answered «scanned, waiting for the buyer to "
            "confirm (Wait)»; the status stays «awaiting payment».",
        ]
    )
