"""Incident alerts: one message per incident, with the alert cool-down (backoffice.core.alerts).

Checked every few minutes by the `incidents` schedule: a job that failed twice in a row, a
price list older than FEED_MAX_AGE_MINUTES, payments pending for more than 30 minutes, and
Kaspi orders waiting for acceptance longer than ORDERS_ACCEPT_REMINDER_MINUTES.
"""

from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from backoffice.core.alerts import send_alert
from backoffice.models import SyncRun


def find_incidents(now=None) -> list[tuple[str, str]]:
    from catalog.services.feed import feed_path
    from orders.models import Order
    from payments.models import Payment

    now = now or timezone.now()
    found = []
    for kind, label in SyncRun.Kind.choices:
        last_two = list(
            SyncRun.objects.filter(kind=kind)
            .exclude(status=SyncRun.Status.SKIPPED)
            .order_by("-created_at")
            .values_list("status", "error")[:2]
        )
        if len(last_two) == 2 and all(status == SyncRun.Status.FAILED for status, _e in last_two):
            found.append(
                (
                    f"runs-failing:{kind}",
                    f"{label}: две последние попытки завершились ошибкой: {last_two[0][1]}",
                )
            )
    path = feed_path()
    if path.exists():
        age = now.timestamp() - path.stat().st_mtime
        if age > settings.FEED_MAX_AGE_MINUTES * 60:
            found.append(("feed-stale", f"Прайс-лист Kaspi не обновлялся {int(age // 60)} мин."))
    stuck = Payment.objects.filter(
        status__in=Payment.OPEN_STATUSES, created_at__lt=now - timedelta(minutes=30)
    ).count()
    if stuck:
        found.append(("payments-stuck", f"Платежей в ожидании дольше 30 мин: {stuck}"))
    waiting = Order.objects.filter(
        channel=Order.Channel.KASPI,
        status="APPROVED_BY_BANK",
        creation_date__lt=now - timedelta(minutes=settings.ORDERS_ACCEPT_REMINDER_MINUTES),
    ).count()
    if waiting:
        found.append(("orders-waiting", f"Заказов Kaspi ждут принятия: {waiting}"))
    return found


def alert_incidents() -> int:
    sent = 0
    for key, text in find_incidents():
        if send_alert(key=f"incident:{key}", text=text) is not None:
            sent += 1
    return sent
