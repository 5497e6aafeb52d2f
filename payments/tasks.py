"""django-q2 tasks of the payments app."""

import time
import uuid

from .services.polling import poll_payment, run_poller, start_poller, sweep_payments


def poll_payments_task() -> str:
    """The one poller for all open payments: checks every payment whose next check is due
    for one slice, then queues itself again while payments are open (payments/services/
    polling.py). A second copy finds the lock taken and ends at once."""
    started = time.monotonic()
    run = run_poller(holder=f"poller-{uuid.uuid4().hex[:12]}")
    if run.outcome == "handover":
        start_poller()
    return (
        f"{run.outcome}: {run.rounds} rounds, {run.checks} checks "
        f"in {time.monotonic() - started:.2f} s"
    )


def poll_payment_task(payment_id: str, attempt: int = 0) -> str:
    """Kept for tasks queued before the one poller existed: checks once, then leaves the
    payment to the poller."""
    poll_payment(payment_id=payment_id)
    start_poller()
    return "checked once; the poller continues"


def sweep_payments_task() -> int:
    """Every few minutes: check open payments whose checks stopped, expire stale ones, and
    restart the poller if it died (the `sweep_payments` command runs the same service)."""
    return sweep_payments()
