"""Status polling: one check of one payment, and the one poller for all open payments.

Kaspi's QR API has no callback, so open payments are polled every StatusPollingInterval
seconds. One poller does it for all of them: `run_poller` checks every payment whose
`next_poll_at` is due, sleeps until the next one is due, and after a slice of
PAYMENTS_POLLER_SLICE_SECONDS hands over to a fresh task (the task queues itself again),
so a worker is never held for long and 20 waiting customers cost one worker, not 20.
django-q2 1.11 has no `eta` and its scheduler ticks about every 30 s, so the seconds are
timed here, not by schedules. A row in JobLock ("payment-poller") makes it single-flight
across processes; a poller that died is replaced once its heartbeat is older than
POLLER_STALE_SECONDS (by the next payment created or by the sweep).
"""

import logging
import time
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Min, Q
from django.utils import timezone

from backoffice.core.exceptions import BackofficeError
from backoffice.models import JobLock

from ..models import Payment
from .events import apply_payment_event
from .providers import get_provider

logger = logging.getLogger(__name__)

POLLER_LOCK = "payment-poller"
QUEUED = "queued"  # holder while a poller task waits in the queue
# A poller wakes at least this often (to beat its heartbeat), however long the interval.
MAX_SLEEP_SECONDS = 5.0
# Payments due within this much of each other are checked in the same round.
ROUND_SLACK_SECONDS = 0.25


def poll_payment(*, payment_id) -> float | None:
    """Ask the provider once; apply what changed. Seconds until the next check, or None
    when the payment is final (or cannot be checked)."""
    payment = Payment.objects.filter(pk=payment_id).first()
    if payment is None or payment.status not in Payment.OPEN_STATUSES:
        return None
    found, _error = poll_payment_once(payment)
    if found is not None and found.status:
        return None
    return float((payment.options or {}).get("poll", settings.KASPI_QR_DEFAULT_POLL_SECONDS))


def poll_payment_once(payment):
    """One status check of an open payment: what the provider found (None when it could not
    be asked) and the error in that case; a status it reports is applied."""
    error = ""
    try:
        found = get_provider(payment.provider).status(payment)
    except BackofficeError as exc:
        logger.warning("status check of %s failed: %s", payment.reference, exc)
        found, error = None, str(exc)
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
            note=f"provider status {found.remote}"
            + (f": {found.note}" if found.note and found.note != found.remote else ""),
        )
    return found, error


def _pollable():
    """Open payments the poller looks after (the demo has nothing remote to ask)."""
    return Payment.objects.filter(status__in=Payment.OPEN_STATUSES).exclude(provider="demo")


def poll_due_payments(*, after_each=None) -> int:
    """Check every open payment whose next check is due (or was never planned);
    `after_each()` runs after every check (the poller's heartbeat)."""
    horizon = timezone.now() + timedelta(seconds=ROUND_SLACK_SECONDS)
    due = list(
        _pollable()
        .filter(Q(next_poll_at__isnull=True) | Q(next_poll_at__lte=horizon))
        .order_by("next_poll_at")
        .values_list("pk", flat=True)
    )
    for payment_id in due:
        poll_payment(payment_id=payment_id)
        if after_each is not None:
            after_each()
    return len(due)


def seconds_until_next_poll() -> float | None:
    """Seconds until the earliest planned check of an open payment; None when none is open."""
    open_payments = _pollable()
    if not open_payments.exists():
        return None
    earliest = open_payments.aggregate(at=Min("next_poll_at"))["at"]
    if earliest is None or open_payments.filter(next_poll_at__isnull=True).exists():
        return 0.0
    return max(0.0, (earliest - timezone.now()).total_seconds())


# --- The single-flight poller ----------------------------------------------------------------


def _stale_before():
    return timezone.now() - timedelta(seconds=settings.PAYMENTS_POLLER_STALE_SECONDS)


def _lock_row() -> None:
    if not JobLock.objects.filter(kind=POLLER_LOCK).exists():
        try:
            with transaction.atomic():
                JobLock.objects.create(kind=POLLER_LOCK)
        except IntegrityError:
            pass  # another process created it first


def _free():
    """The lock is free: nobody holds it, or its holder went silent."""
    return Q(holder="") | Q(heartbeat_at__isnull=True) | Q(heartbeat_at__lt=_stale_before())


def _acquire(holder: str) -> bool:
    """Take the lock if it is free or only reserved by start_poller ("queued")."""
    _lock_row()
    now = timezone.now()
    return (
        JobLock.objects.filter(kind=POLLER_LOCK)
        .filter(_free() | Q(holder=QUEUED))
        .update(holder=holder, acquired_at=now, heartbeat_at=now)
        == 1
    )


def _beat(holder: str) -> bool:
    """Refresh our heartbeat; False when the lock was taken over (we were thought dead)."""
    return (
        JobLock.objects.filter(kind=POLLER_LOCK, holder=holder).update(heartbeat_at=timezone.now())
        == 1
    )


def _release(holder: str) -> None:
    JobLock.objects.filter(kind=POLLER_LOCK, holder=holder).update(holder="", heartbeat_at=None)


def poller_alive() -> bool:
    return (
        JobLock.objects.filter(kind=POLLER_LOCK, heartbeat_at__gte=_stale_before())
        .exclude(holder="")
        .exists()
    )


@dataclass(frozen=True)
class PollerRun:
    outcome: str  # "busy" (another poller runs), "idle" (nothing open), "handover"
    rounds: int = 0
    checks: int = 0


def run_poller(
    *, holder: str, slice_seconds: float | None = None, sleep=time.sleep, clock=time.monotonic
) -> PollerRun:
    """Poll every due payment, sleep until the next is due, repeat for one slice.

    "handover": open payments remain and the slice is over; the caller queues the next
    poller. "idle": nothing is open. "busy": another poller holds the lock.
    """
    if slice_seconds is None:
        slice_seconds = settings.PAYMENTS_POLLER_SLICE_SECONDS
    if not _acquire(holder):
        return PollerRun("busy")
    deadline = clock() + slice_seconds
    rounds = checks = 0
    try:
        while True:
            checks += poll_due_payments(after_each=lambda: _beat(holder))
            rounds += 1
            if not _beat(holder):
                return PollerRun("busy", rounds, checks)
            wait = seconds_until_next_poll()
            if wait is None:
                return PollerRun("idle", rounds, checks)
            if clock() + wait >= deadline:
                # Hand over right after a round: the next check is `wait` away, which
                # covers the queue's pick-up delay (about Q_POLL seconds).
                return PollerRun("handover", rounds, checks)
            while wait > 0:
                step = min(wait, MAX_SLEEP_SECONDS)
                sleep(step)
                wait -= step
                if wait > 0 and not _beat(holder):
                    return PollerRun("busy", rounds, checks)
    finally:
        _release(holder)


def start_poller() -> bool:
    """Queue the poller unless one runs or is already queued. True when one was queued.

    The lock is reserved ("queued") in the same UPDATE that decides, so a burst of new
    payments queues one task, not one each."""
    _lock_row()
    reserved = (
        JobLock.objects.filter(kind=POLLER_LOCK)
        .filter(_free())
        .update(holder=QUEUED, heartbeat_at=timezone.now())
    )
    if not reserved:
        return False
    from django_q.tasks import async_task

    async_task("payments.tasks.poll_payments_task", task_name="payment-poller")
    return True


def due_for_sweep() -> list:
    """Open payments whose checks stopped (no check for two intervals) or never ran, and
    open payments past their expiry (demo payments expire only here)."""
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


def sweep_payments() -> int:
    """Check the open payments whose checks stopped, expire stale ones, and restart the
    poller if it died; the one service of the `sweep_payments` command and the
    payments-sweep schedule."""
    due = due_for_sweep()
    for payment_id in due:
        poll_payment(payment_id=payment_id)
    start_poller()
    return len(due)
