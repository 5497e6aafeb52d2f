"""Status polling: one check of one payment, and the sweep that restarts dead pollers."""

import logging
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from backoffice.exceptions import BackofficeError

from ..models import Payment
from .events import apply_payment_event
from .providers import get_provider

logger = logging.getLogger(__name__)


def poll_payment(*, payment_id) -> float | None:
    """Ask the provider once; apply what changed. Seconds until the next check, or None
    when the payment is final (or cannot be checked)."""
    payment = Payment.objects.filter(pk=payment_id).first()
    if payment is None or payment.status not in Payment.OPEN_STATUSES:
        return None
    try:
        found = get_provider(payment.provider).status(payment)
    except BackofficeError as exc:
        logger.warning("status check of %s failed: %s", payment.reference, exc)
        found = None
    now = timezone.now()
    interval = float((payment.options or {}).get("poll", settings.KASPI_QR_DEFAULT_POLL_SECONDS))
    Payment.objects.filter(pk=payment.pk).update(
        last_polled_at=now,
        next_poll_at=now + timedelta(seconds=interval),
        options=payment.options,
    )
    if found is not None and found.status:
        apply_payment_event(
            payment_id=payment.pk,
            source="poll",
            key=f"{payment.pk}:{found.status}",
            status=found.status,
            raw={"remote": found.remote, **found.raw},
            transaction_id=found.transaction_id,
            note=f"provider status {found.remote}",
        )
        return None
    return interval


def due_for_sweep() -> list:
    """Open payments whose poller seems dead (no check for two intervals) or never ran."""
    now = timezone.now()
    late = now - timedelta(seconds=2 * settings.KASPI_QR_DEFAULT_POLL_SECONDS)
    return [
        payment.pk
        for payment in Payment.objects.filter(status__in=Payment.OPEN_STATUSES).only(
            "pk", "next_poll_at", "provider", "expires_at"
        )
        if payment.next_poll_at is None
        or payment.next_poll_at < late
        or (payment.expires_at and payment.expires_at < now)
    ]
