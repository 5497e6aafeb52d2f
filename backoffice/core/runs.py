"""Run history and single-flight locks shared by every background job.

`run_job()` is the one way a job runs: it takes the kind's lock (a DB row updated
atomically, so it works across the web process, workers and cron), records a `SyncRun`,
calls the job, and stores its counts, status and error. A second start while one runs is
recorded as `skipped` and sets `rerun_requested`, so the holder runs once more when it
finishes: 36 clicks become one extra run. A holder that died stops sending heartbeats;
after JOB_LOCK_STALE_SECONDS its lock may be taken over.
"""

import logging
import time
from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from backoffice.core.exceptions import BackofficeError
from backoffice.core.logging import mask_text
from backoffice.models import JobLock, SyncRun

logger = logging.getLogger(__name__)

Job = Callable[[SyncRun], None]


def _stale_before():
    return timezone.now() - timedelta(seconds=settings.JOB_LOCK_STALE_SECONDS)


def _lock_row(kind: str) -> None:
    if not JobLock.objects.filter(kind=kind).exists():
        try:
            with transaction.atomic():
                JobLock.objects.create(kind=kind)
        except IntegrityError:
            pass  # another process created it first


def acquire_lock(kind: str, holder: str) -> bool:
    """Take the lock for `kind` if it is free or stale; one atomic UPDATE decides."""
    _lock_row(kind)
    now = timezone.now()
    taken = (
        JobLock.objects.filter(kind=kind)
        .filter(Q(holder="") | Q(heartbeat_at__lt=_stale_before()) | Q(heartbeat_at__isnull=True))
        .update(holder=holder, acquired_at=now, heartbeat_at=now, rerun_requested=False)
    )
    return taken == 1


def is_locked(kind: str) -> bool:
    return (
        JobLock.objects.filter(kind=kind, heartbeat_at__gte=_stale_before())
        .exclude(holder="")
        .exists()
    )


def request_rerun(kind: str) -> None:
    JobLock.objects.filter(kind=kind).update(rerun_requested=True)


def take_rerun(kind: str, holder: str) -> bool:
    """If a rerun was requested while `holder` ran, clear the flag and return True."""
    return (
        JobLock.objects.filter(kind=kind, holder=holder, rerun_requested=True).update(
            rerun_requested=False
        )
        == 1
    )


def release_lock(kind: str, holder: str) -> None:
    JobLock.objects.filter(kind=kind, holder=holder).update(holder="", heartbeat_at=None)


HEARTBEAT_EVERY_SECONDS = 2.0


def heartbeat(
    run: SyncRun, *, done: int | None = None, total: int | None = None, force: bool = False
) -> None:
    """Record progress on the run and refresh its lock, so it is not taken as stale.

    Written at most every HEARTBEAT_EVERY_SECONDS (two small UPDATEs), so a tight loop can
    call it per page without a commit per page.
    """
    now = time.monotonic()
    if done is not None:
        run.progress_done = done
    if total is not None:
        run.progress_total = total
    if not force and now - getattr(run, "_beat_at", 0.0) < HEARTBEAT_EVERY_SECONDS:
        return
    run._beat_at = now
    if run.pk:
        SyncRun.objects.filter(pk=run.pk).update(
            progress_done=run.progress_done, progress_total=run.progress_total
        )
    JobLock.objects.filter(kind=lock_of(run), holder=str(run.pk)).update(
        heartbeat_at=timezone.now()
    )


def lock_of(run: SyncRun) -> str:
    """The lock a run holds: its kind, or the narrower lock run_job was given (`lock`)."""
    return getattr(run, "_lock", None) or run.kind


def create_run(
    *,
    kind: str,
    triggered_by: str,
    user=None,
    params: dict | None = None,
    status: str = SyncRun.Status.QUEUED,
) -> SyncRun:
    return SyncRun.objects.create(
        kind=kind,
        triggered_by=triggered_by,
        user=user if getattr(user, "pk", None) else None,
        params=params or {},
        status=status,
    )


def run_job(
    *,
    kind: str,
    job: Job,
    run: SyncRun | None = None,
    triggered_by: str = "command",
    user=None,
    params: dict | None = None,
    lock: str | None = None,
) -> SyncRun:
    """Run `job` under the single-flight lock of `kind`; return the (last) run record.

    The job receives the running `SyncRun`, adds counts to it, may set its status to
    PARTIAL, and raises to fail. Its return value is ignored. `lock` narrows the lock
    below the kind (one price-file supplier's sync, `pf:<supplier id>`), so runs of one
    kind for different subjects do not skip each other (≤ 20 characters).
    """
    if run is None:
        run = create_run(kind=kind, triggered_by=triggered_by, user=user, params=params)
    run._lock = lock
    kind_lock = kind
    kind = lock or kind
    holder = str(run.pk)
    if not acquire_lock(kind, holder):
        request_rerun(kind)
        run.status = SyncRun.Status.SKIPPED
        run.error = "Another run of this kind is in progress; it will run once more when done."
        run.started_at = run.finished_at = timezone.now()
        run.save()
        logger.info("%s skipped: another run holds the lock; rerun requested", kind)
        return run
    try:
        while True:
            _execute(run, job)
            if not take_rerun(kind, holder):
                return run
            run = create_run(kind=kind_lock, triggered_by="rerun", params=run.params)
            run._lock = lock
            JobLock.objects.filter(kind=kind, holder=holder).update(
                holder=str(run.pk), heartbeat_at=timezone.now()
            )
            holder = str(run.pk)
    finally:
        release_lock(kind, holder)


def _execute(run: SyncRun, job: Job) -> None:
    run.status = SyncRun.Status.RUNNING
    run.started_at = timezone.now()
    run.save(update_fields=["status", "started_at"])
    try:
        job(run)
    except BackofficeError as exc:
        run.status = SyncRun.Status.FAILED
        run.error = mask_text(str(exc))
        logger.warning("%s run #%s failed: %s", run.kind, run.pk, run.error)
    except Exception as exc:
        run.status = SyncRun.Status.FAILED
        run.error = mask_text(f"{type(exc).__name__}: {exc}")
        logger.exception("%s run #%s crashed", run.kind, run.pk)
    else:
        if run.status == SyncRun.Status.RUNNING:  # PARTIAL / HELD set by the job stay
            run.status = SyncRun.Status.OK
    run.finished_at = timezone.now()
    run.save()


# The exit code of every job command, for cron (README "Exit codes"): 0 ok, or skipped
# because the same job is already running; 1 failed; 2 partial; 3 held for staff.
EXIT_CODES = {
    SyncRun.Status.OK: 0,
    SyncRun.Status.SKIPPED: 0,
    SyncRun.Status.FAILED: 1,
    SyncRun.Status.PARTIAL: 2,
    SyncRun.Status.HELD: 3,
}


def exit_code(run: SyncRun) -> int:
    """The command exit code for a finished run (1 for anything unexpected)."""
    return EXIT_CODES.get(run.status, 1)


class RunFailed(BackofficeError):
    """Raised by a task after its run was recorded as failed, so django-q2 records the task
    as failed too (a Failure row, "failed tasks, 24 h" on the dashboard). `ack_failures` is
    on: a failed task is acknowledged, never handed out again."""


def task_result(run: SyncRun) -> str:
    """What a task returns for its finished run: the run's summary, or RunFailed.

    The run is recorded first (run_job saved it), so the task's outcome is the run's
    outcome: a failed run is a failed task; ok, partial, held and skipped are done tasks
    whose result text says which.
    """
    if run.status not in EXIT_CODES or exit_code(run) == 1:
        raise RunFailed(f"{run.summary()}: {run.error or 'failed'}")
    if run.status == SyncRun.Status.OK:
        return run.summary()
    return f"{run.summary()}: {run.error}" if run.error else run.summary()


def enqueue_job(
    *, kind: str, task: str, triggered_by: str, user=None, params=None, lock: str | None = None
):
    """Queue `task` (a dotted path taking `run_id`) unless one is queued or running.

    Returns `(run, started)`: the new queued run and True, or the run that is already
    queued/running and False (a running job is asked to run once more when done).
    With `lock` (see run_job), only runs of the same `params` count as "the same job".
    """
    same = SyncRun.objects.filter(kind=kind)
    if lock:
        same = same.filter(**{f"params__{key}": value for key, value in (params or {}).items()})
    existing = (
        same.filter(status=SyncRun.Status.QUEUED)
        .filter(created_at__gte=_stale_before())
        .order_by("-created_at")
        .first()
    )
    if existing:
        return existing, False
    if is_locked(lock or kind):
        request_rerun(lock or kind)
        running = same.filter(status=SyncRun.Status.RUNNING).first()
        if running:
            return running, False
    run = create_run(kind=kind, triggered_by=triggered_by, user=user, params=params)
    transaction.on_commit(lambda: _queue(run, task))
    return run, True


def _queue(run: SyncRun, task: str) -> None:
    from django_q.tasks import async_task

    try:
        task_id = async_task(task, run_id=run.pk, task_name=f"{run.kind}-run-{run.pk}")
    except RunFailed:
        # django-q2's sync mode (the tests) runs the task inline and re-raises its
        # failure here; the run is recorded as failed, and the caller only queued it.
        task_id = ""
    SyncRun.objects.filter(pk=run.pk).update(task_id=str(task_id or "")[:64])


def enqueue_run(*, kind: str, task: str, triggered_by: str, user=None, params=None) -> SyncRun:
    """Queue `task` for one staff selection (the orders ticked in an action): always a run
    of its own, never joined to another one, since another run holds another selection.

    The task runs it with `run_queued`. Such runs take no kind lock: two may run at once,
    and the rate-limited API's shared budget paces their calls.
    """
    run = create_run(kind=kind, triggered_by=triggered_by, user=user, params=params)
    transaction.on_commit(lambda: _queue(run, task))
    return run


def run_queued(*, run_id: int, job: Job) -> SyncRun:
    """Run a run queued by `enqueue_run`, once: a task handed out twice finds it taken."""
    claimed = SyncRun.objects.filter(pk=run_id, status=SyncRun.Status.QUEUED).update(
        status=SyncRun.Status.RUNNING, started_at=timezone.now()
    )
    run = SyncRun.objects.get(pk=run_id)
    if claimed:
        _execute(run, job)
    return run
