"""Payment providers, selected by PAYMENTS_PROVIDER: `create(payment)` and
`status(payment)` with two implementations, the demo (default) and the Kaspi QR partner
API. Refunds: with the API-key scheme Kaspi has no refund method, so the admin records a
manual refund and staff make it in the Kaspi Pay app."""

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from backoffice.exceptions import BackofficeError


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


# Kaspi's statuses (partner API, A.6) → ours. Unknown words stay pending and are logged.
KASPI_STATUS = {"QrTokenCreated": None, "Wait": None, "Processed": "paid", "Error": "failed"}


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
        data = self.client.status(payment.external_id)
        remote = str(data.get("Status") or "")
        now = timezone.now()
        options = payment.options or {}
        if remote not in KASPI_STATUS:
            logger.warning("Kaspi QR: unknown status %r for %s", remote, payment.reference)
        status = KASPI_STATUS.get(remote)
        if status is None:
            waited = (now - payment.created_at).total_seconds()
            if remote == "Wait":
                since = options.get("wait_since")
                if since is None:
                    options["wait_since"] = now.isoformat()
                elif (now - datetime.fromisoformat(since)).total_seconds() > options.get(
                    "confirm_timeout", settings.KASPI_QR_DEFAULT_CONFIRM_TIMEOUT
                ):
                    status = "expired"
            elif waited > options.get("scan_timeout", settings.KASPI_QR_DEFAULT_SCAN_TIMEOUT):
                status = "expired"
        return ProviderStatus(
            status, transaction_id=str(data.get("TransactionId") or ""), remote=remote, raw=data
        )


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
