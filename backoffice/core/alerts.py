"""Staff alerts: Telegram when TELEGRAM_BOT_TOKEN/TELEGRAM_CHAT_ID are set, else email.

Each alert names its incident with a key; the same key is sent at most once per cool-down,
so a failing job or a waiting order does not spam anyone. A failed delivery is recorded
(and logged), never raised: an alert must not break the job that sends it.
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.core.mail import mail_admins, send_mail
from django.utils import timezone

from backoffice.core.exceptions import BackofficeError
from backoffice.core.http import HttpClient
from backoffice.core.logging import mask_text
from backoffice.models import Alert

logger = logging.getLogger(__name__)


def send_alert(*, key: str, text: str, cooldown_minutes: int | None = None) -> Alert | None:
    """Send `text` unless the same incident `key` was sent within the cool-down."""
    cooldown = timedelta(
        minutes=settings.ALERT_COOLDOWN_MINUTES if cooldown_minutes is None else cooldown_minutes
    )
    if Alert.objects.filter(key=key, ok=True, sent_at__gte=timezone.now() - cooldown).exists():
        return None
    channel = "telegram" if settings.TELEGRAM_BOT_TOKEN and settings.TELEGRAM_CHAT_ID else "email"
    alert = Alert(key=key[:200], channel=channel, text=text)
    try:
        if channel == "telegram":
            _telegram(text)
        else:
            _email(text)
    except Exception as exc:  # delivery problems are recorded, never raised
        alert.ok = False
        alert.error = mask_text(str(exc))[:2000]
        logger.warning("alert %s not delivered: %s", key, alert.error)
    alert.save()
    return alert


def _telegram(text: str) -> None:
    client = HttpClient(service="Telegram", base_url=settings.TELEGRAM_API_URL)
    response = client.request(
        "POST",
        f"bot{settings.TELEGRAM_BOT_TOKEN}/sendMessage",
        json={"chat_id": settings.TELEGRAM_CHAT_ID, "text": text[:4000]},
    )
    if not response.json().get("ok", False):
        raise BackofficeError("Telegram did not accept the message")


def _email(text: str) -> None:
    subject = text.splitlines()[0][:120] if text else "Kaspi back office"
    if settings.STAFF_ALERT_EMAILS:
        send_mail(subject, text, None, settings.STAFF_ALERT_EMAILS)
    elif settings.ADMINS:
        mail_admins(subject, text)
    else:
        # Recorded as not delivered, so the admin's Alerts list shows nobody was told.
        raise BackofficeError(
            "no recipients: set TELEGRAM_BOT_TOKEN and TELEGRAM_CHAT_ID, or "
            "STAFF_ALERT_EMAILS / ADMIN_EMAILS"
        )
