"""Data retention: old raw webhook payloads, run history, alerts, task results, and the
personal data of customers on long-finished orders.

Orders and payments themselves are kept (money and tax records); only what identifies a
person is blanked on Kaspi orders finished more than RETENTION_CUSTOMER_DAYS ago.
"""

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone


def cleanup(*, dry_run: bool = False, now=None) -> dict[str, int]:
    from django_q.models import Success

    from backoffice.models import Alert, SyncRun
    from catalog.models import MarketObservation
    from orders.models import Order
    from payments.models import WebhookDelivery

    now = now or timezone.now()

    def before(days: int):
        return now - timedelta(days=days)

    targets = {
        "webhook_bodies": WebhookDelivery.objects.filter(
            received_at__lt=before(settings.RETENTION_WEBHOOK_DAYS)
        ).exclude(body="", headers=""),
        "runs": SyncRun.objects.filter(created_at__lt=before(settings.RETENTION_RUNS_DAYS)),
        "alerts": Alert.objects.filter(sent_at__lt=before(settings.RETENTION_ALERTS_DAYS)),
        "task_results": Success.objects.filter(stopped__lt=before(settings.RETENTION_RUNS_DAYS)),
        "market_observations": MarketObservation.objects.filter(
            observed_at__lt=before(settings.RETENTION_MARKET_DAYS)
        ),
        "customer_data": Order.objects.filter(
            channel=Order.Channel.KASPI,
            status__in=Order.FINAL_STATUSES,
            creation_date__lt=before(settings.RETENTION_CUSTOMER_DAYS),
        ).exclude(customer_name="", customer_phone="", delivery_address="", raw=""),
    }
    counts = {name: queryset.count() for name, queryset in targets.items()}
    if dry_run:
        return counts
    with transaction.atomic():
        # The delivery row (result, error, time) stays; the raw request goes.
        targets["webhook_bodies"].update(body="", headers="")
        targets["runs"].delete()
        targets["alerts"].delete()
        targets["task_results"].delete()
        targets["market_observations"].delete()
        targets["customer_data"].update(
            customer_name="", customer_phone="", delivery_address="", raw=""
        )
    return counts
