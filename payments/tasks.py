"""django-q2 tasks of the payments app."""

import time

from django.conf import settings
from django_q.tasks import async_task

from .services.polling import due_for_sweep, poll_payment


def poll_payment_task(payment_id: str, attempt: int = 0) -> str:
    """Check one payment; while it is open, wait the provider's interval and queue itself
    again (a self-rescheduling poller; the sweep restarts one that died)."""
    delay = poll_payment(payment_id=payment_id)
    if delay is None:
        return "final"
    if attempt >= settings.PAYMENTS_MAX_POLLS:
        return "gave up; the sweep will look again"
    time.sleep(min(delay, 30))
    async_task("payments.tasks.poll_payment_task", payment_id, attempt + 1)
    return f"next check in {delay:g} s"


def sweep_payments_task() -> int:
    """Every few minutes: check open payments whose poller died, expire stale ones."""
    due = due_for_sweep()
    for payment_id in due:
        poll_payment(payment_id=payment_id)
    return len(due)
