"""Health checks for `GET /health` and `manage.py healthcheck`.

Each check returns `(ok, details)`; `settings.HEALTH_CHECKS` lists them by dotted path so
every app adds its own (catalog sync age, feed age…). A check that raises counts as failed.
"""

import logging
import time
import uuid

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.utils import timezone
from django.utils.module_loading import import_string

logger = logging.getLogger(__name__)


def check_database():
    started = time.monotonic()
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return True, {"vendor": connection.vendor, "ms": round((time.monotonic() - started) * 1000)}


def check_cache():
    key = f"health:{uuid.uuid4().hex}"
    cache.set(key, "ok", 30)
    ok = cache.get(key) == "ok"
    cache.delete(key)
    return ok, {"backend": settings.CACHES["default"]["BACKEND"].rsplit(".", 1)[-1]}


def worker_heartbeats():
    """Timestamps of the django-q2 clusters' last status reports (kept in the shared cache)."""
    from django_q.status import Stat

    return [stat.timestamp for stat in Stat.get_all() if getattr(stat, "timestamp", None)]


def check_task_worker():
    beats = worker_heartbeats()
    if not beats:
        return False, {"error": "no task worker is running (start: manage.py qcluster)"}
    age = (timezone.now() - max(beats)).total_seconds()
    return age <= settings.HEALTH_WORKER_MAX_AGE, {
        "clusters": len(beats),
        "last_heartbeat_age_s": round(age),
    }


def schedule_states() -> list[dict]:
    """Each django-q2 schedule: its next run and the result of its last task."""
    from django_q.models import Schedule, Task

    last_ids = {s.task for s in Schedule.objects.all() if s.task}
    tasks = {t.id: t for t in Task.objects.filter(id__in=last_ids)}
    states = []
    for schedule in Schedule.objects.order_by("name"):
        task = tasks.get(schedule.task)
        states.append(
            {
                "name": schedule.name,
                "func": schedule.func,
                "next_run": schedule.next_run,  # JsonResponse encodes datetimes as ISO 8601
                "last_run": task.stopped if task else None,
                "last_ok": task.success if task else None,
            }
        )
    return states


def check_schedules():
    states = schedule_states()
    failed = [s["name"] for s in states if s["last_ok"] is False]
    return not failed, {"count": len(states), "last_run_failed": failed}


def check_last_good_run(*, kind: str, configured: bool, setting: str, max_age_minutes: int):
    """A job's health: its last ok/partial run finished within `max_age_minutes`.

    An integration without credentials is "not configured", which is not a failure.
    """
    from .models import SyncRun

    if not configured:
        return True, {"configured": False, "note": f"{setting} is not set: this job is off"}
    last_ok = (
        SyncRun.objects.filter(kind=kind, status__in=[SyncRun.Status.OK, SyncRun.Status.PARTIAL])
        .order_by("-finished_at")
        .first()
    )
    last = SyncRun.objects.filter(kind=kind).exclude(status=SyncRun.Status.SKIPPED).first()
    if last_ok is None or last_ok.finished_at is None:
        return False, {"error": f"no successful {kind} run yet"}
    age = timezone.now() - last_ok.finished_at
    return age.total_seconds() <= max_age_minutes * 60, {
        "last_ok_age_min": round(age.total_seconds() / 60),
        "last_status": last.status if last else None,
    }


def collect_health() -> dict:
    checks = {}
    healthy = True
    for path in settings.HEALTH_CHECKS:
        name = path.rsplit(".", 1)[-1].removeprefix("check_")
        try:
            ok, details = import_string(path)()
        except Exception as exc:
            logger.warning("health check %s raised: %s", name, exc)
            ok, details = False, {"error": f"{type(exc).__name__}: {exc}"}
        checks[name] = {"ok": bool(ok), **details}
        healthy = healthy and bool(ok)
    return {"status": "ok" if healthy else "unhealthy", "checks": checks}
