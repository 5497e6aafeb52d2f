"""Payment providers, selected by PAYMENTS_PROVIDER: `create(payment)` and
`status(payment)` with two implementations, the demo (default) and the Kaspi QR partner
API. Refunds: with the API-key scheme Kaspi has no refund method, so the admin records a
manual refund and staff make it in the Kaspi Pay app."""

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from backoffice.core.exceptions import BackofficeError


class ProviderUnavailable(BackofficeError):
    pass


logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProviderPayment:
    external_id: str
    qr_token: str
    payment_link: str
    expires_at: datetime | None
    options: dict = field(default_factory=dict)


@dataclass(frozen=True)
class ProviderStatus:
    """What a status check found: our status (None = no change yet), Kaspi's words."""

    status: str | None
    transaction_id: str = ""
    remote: str = ""
    raw: dict = field(default_factory=dict)
    note: str = ""


class DemoProvider:
    """No money moves: the QR and link open our public page, where demo buttons mark the
    payment paid or failed. Refused when DEBUG is off unless PAYMENTS_ALLOW_DEMO=1."""

    name = "demo"

    def create(self, payment) -> ProviderPayment:
        return ProviderPayment(
            external_id=f"demo-{payment.reference}",
            qr_token=payment.public_url,
            payment_link=payment.public_url,
            expires_at=timezone.now() + timedelta(minutes=settings.PAYMENTS_DEMO_TTL_MINUTES),
        )

    def status(self, payment) -> ProviderStatus:
        """The demo has nothing remote to ask; an open payment past its time expires."""
        if payment.expires_at and payment.expires_at < timezone.now():
            return ProviderStatus("expired", remote="expired")
        return ProviderStatus(None)


# Kaspi's statuses (partner API, A.6). Error is "failed" or "expired" depending on the
# time (see KaspiQrProvider.status); unknown words stay pending and are logged.
KASPI_WAITING = ("QrTokenCreated", "Wait")
# Our clock and Kaspi's may differ a little: an Error this close to a deadline counts as
# the deadline (a decline is a person pressing a button, seconds before is unlikely), and
# a payment still waiting is expired here only this long after its deadline.
CLOCK_SKEW_SECONDS = 2


class KaspiQrProvider:
    name = "kaspi_qr"

    def __init__(self, client=None):
        self._client = client

    @property
    def client(self):
        if self._client is None:
            from ..clients import KaspiQrClient

            self._client = KaspiQrClient()
        return self._client

    def device_token(self) -> str:
        from ..models import KaspiQrDevice

        device = KaspiQrDevice.objects.filter(active=True).order_by("-registered_at").first()
        if device is None:
            raise ProviderUnavailable(
                "no Kaspi QR device: run 'manage.py kaspi_qr_register' to link our cash "
                "register to a Kaspi Pay trade point"
            )
        return device.token

    def create(self, payment) -> ProviderPayment:
        link = settings.KASPI_QR_MODE == "link"
        data = self.client.create(
            device_token=self.device_token(),
            amount=payment.amount,
            external_id=payment.reference,
            link=link,
        )
        behaviour = data.get("QrPaymentBehaviorOptions") or data.get("PaymentBehaviorOptions") or {}
        options = {
            "poll": int(
                behaviour.get("StatusPollingInterval") or settings.KASPI_QR_DEFAULT_POLL_SECONDS
            ),
            "scan_timeout": int(
                behaviour.get("QrCodeScanWaitTimeout")
                or behaviour.get("LinkActivationWaitTimeout")
                or settings.KASPI_QR_DEFAULT_SCAN_TIMEOUT
            ),
            "confirm_timeout": int(
                behaviour.get("PaymentConfirmationTimeout")
                or settings.KASPI_QR_DEFAULT_CONFIRM_TIMEOUT
            ),
            "mode": "link" if link else "qr",
        }
        external_id = str(data.get("QrPaymentId") or data.get("PaymentId") or "")
        if not external_id:
            raise ProviderUnavailable("Kaspi returned no payment id")
        expires = _parse_date(data.get("ExpireDate"))
        return ProviderPayment(
            external_id=external_id,
            qr_token=str(data.get("QrToken") or data.get("PaymentLink") or ""),
            payment_link=str(data.get("PaymentLink") or ""),
            expires_at=expires,
            options=options,
        )

    def status(self, payment) -> ProviderStatus:
        """Kaspi's status, mapped: Processed → paid; Error → expired when it came after the
        QR's ExpireDate or after the scan / confirmation timeout, else failed (a decline);
        still waiting past those timeouts → expired here, without waiting for Kaspi."""
        data = self.client.status(payment.external_id)
        remote = str(data.get("Status") or "")
        now = timezone.now()
        options = payment.options if payment.options is not None else {}
        payment.options = options
        if remote == "Wait" and not options.get("wait_since"):
            options["wait_since"] = now.isoformat()  # the buyer scanned: confirmation runs
        transaction_id = str(data.get("TransactionId") or "")
        skew = timedelta(seconds=CLOCK_SKEW_SECONDS)
        if remote == "Processed":
            return ProviderStatus("paid", transaction_id, remote, data, note=remote)
        if remote == "Error":
            # An Error this close to a deadline counts as the deadline (clocks differ).
            overdue = self.overdue(payment, now + skew, expire_date=True)
            if overdue:
                return ProviderStatus("expired", transaction_id, remote, data, note=overdue)
            return ProviderStatus("failed", transaction_id, remote, data, note="declined")
        if remote not in KASPI_WAITING:
            logger.warning("Kaspi QR: unknown status %r for %s", remote, payment.reference)
        # Still waiting: once scanned, the buyer has the confirmation timeout even past the
        # QR's ExpireDate; before a scan, either deadline ends it.
        # Expire here only once the deadline is clearly past on Kaspi's clock too.
        overdue = self.overdue(payment, now - skew, expire_date=not options.get("wait_since"))
        if overdue:
            return ProviderStatus("expired", transaction_id, remote, data, note=overdue)
        return ProviderStatus(None, transaction_id, remote, data)

    @staticmethod
    def overdue(payment, now, *, expire_date: bool) -> str:
        """Which deadline has passed ("" if none): the confirmation timeout once scanned
        (Wait seen), the scan timeout before, and the QR's ExpireDate if `expire_date`."""
        options = payment.options or {}
        if expire_date and payment.expires_at and now >= payment.expires_at:
            return "QR expired (ExpireDate passed)"
        since = options.get("wait_since")
        if since:
            seconds = options.get("confirm_timeout", settings.KASPI_QR_DEFAULT_CONFIRM_TIMEOUT)
            start, what = datetime.fromisoformat(since), "confirmation timeout passed"
        else:
            seconds = options.get("scan_timeout", settings.KASPI_QR_DEFAULT_SCAN_TIMEOUT)
            start, what = payment.created_at, "not scanned within the scan timeout"
        if start and now >= start + timedelta(seconds=float(seconds)):
            return what
        return ""


def _parse_date(value) -> datetime | None:
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else timezone.make_aware(moment)


def get_provider(name: str | None = None):
    name = name or settings.PAYMENTS_PROVIDER
    if name == "demo":
        return DemoProvider()
    if name == "kaspi_qr":
        return KaspiQrProvider()
    raise ProviderUnavailable("payments are switched off (PAYMENTS_PROVIDER=none)")
