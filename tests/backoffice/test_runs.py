from datetime import timedelta

import pytest
from django.utils import timezone

from backoffice.core.exceptions import BackofficeError
from backoffice.core.runs import acquire_lock, enqueue_job, run_job
from backoffice.models import JobLock, SyncRun


def test_run_records_counts_and_ok_status():
    def job(run):
        run.count("fetched", 3)

    run = run_job(kind="catalog", job=job, triggered_by="command")

    run.refresh_from_db()
    assert run.status == SyncRun.Status.OK
    assert run.counts == {"fetched": 3}
    assert run.started_at
    assert run.finished_at
    assert JobLock.objects.get(kind="catalog").holder == ""


def test_failed_job_keeps_masked_error_and_releases_lock(settings):
    settings.ALSTYLE_TOKEN = "alstyle-token-abcdef-987654"

    def job(run):
        raise BackofficeError(f"token {settings.ALSTYLE_TOKEN} rejected")

    run = run_job(kind="catalog", job=job)

    assert run.status == SyncRun.Status.FAILED
    assert "alstyle-token-abcdef-987654" not in run.error
    assert "alst…7654" in run.error
    assert acquire_lock("catalog", "next")


def test_rerun_happens_once_for_many_requests():
    executed = []

    def job(run):
        executed.append(run.triggered_by)
        if len(executed) == 1:
            for _ in range(36):
                run_job(kind="feed", job=lambda r: executed.append("inner"))

    run_job(kind="feed", job=job)

    assert executed == ["command", "rerun"]
    assert SyncRun.objects.filter(kind="feed", status="skipped").count() == 36


def test_stale_lock_is_taken_over(settings):
    settings.JOB_LOCK_STALE_SECONDS = 60
    assert acquire_lock("stock", "dead-worker")
    JobLock.objects.filter(kind="stock").update(
        heartbeat_at=timezone.now() - timedelta(seconds=120)
    )

    run = run_job(kind="stock", job=lambda r: None)

    assert run.status == SyncRun.Status.OK


def test_live_lock_is_not_taken_over():
    assert acquire_lock("stock", "live-worker")
    assert not acquire_lock("stock", "other")
    run = run_job(kind="stock", job=lambda r: None)
    assert run.status == SyncRun.Status.SKIPPED
    assert JobLock.objects.get(kind="stock").rerun_requested


def test_enqueue_twice_gives_one_queued_run(monkeypatch):
    queued = []
    monkeypatch.setattr("django_q.tasks.async_task", lambda *a, **kw: queued.append(kw))

    with pytest.MonkeyPatch.context():
        first, started1 = enqueue_job(kind="catalog", task="x.y", triggered_by="user")
        second, started2 = enqueue_job(kind="catalog", task="x.y", triggered_by="user")

    assert started1 is True
    assert started2 is False
    assert first.pk == second.pk
    assert SyncRun.objects.filter(kind="catalog").count() == 1
