"""Payment providers: a small interface with a demo implementation (default) and, later,
the Kaspi QR partner API. Selected by PAYMENTS_PROVIDER."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from backoffice.exceptions import BackofficeError


class ProviderUnavailable(BackofficeError):
    pass


@dataclass(frozen=True)
class ProviderPayment:
    external_id: str
    qr_token: str
    payment_link: str
    expires_at: datetime | None


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

    def status(self, payment) -> str | None:
        """The demo has nothing remote to ask; an expired open payment expires."""
        if payment.expires_at and payment.expires_at < timezone.now():
            return "expired"
        return None


def get_provider(name: str | None = None):
    name = name or settings.PAYMENTS_PROVIDER
    if name == "demo":
        return DemoProvider()
    if name == "none":
        raise ProviderUnavailable("payments are switched off (PAYMENTS_PROVIDER=none)")
    raise ProviderUnavailable(
        f"payment provider {name!r} is not available in this version; use 'demo' or 'none'"
    )
