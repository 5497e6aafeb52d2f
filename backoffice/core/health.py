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
from django.utils.translation import gettext_lazy as _

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


# The honest state of a job or integration, shown on the dashboard, /api/status and /health.
STATE_OK, STATE_OFF, STATE_FAILED, STATE_PARTIAL, STATE_HELD, STATE_NEVER = (
    "ok",
    "off",
    "failed",
    "partial",
    "held",
    "never",
)
STATE_LABELS = {
    STATE_OK: _("success"),
    STATE_OFF: _("switched off"),
    STATE_FAILED: _("failed"),
    STATE_PARTIAL: _("partial"),
    STATE_HELD: _("held for staff"),
    STATE_NEVER: _("never ran"),
}
_RUN_STATES = {"ok": STATE_OK, "partial": STATE_PARTIAL, "held": STATE_HELD, "failed": STATE_FAILED}


def last_run_state(kind: str) -> str | None:
    """The state of the last finished (not skipped) run of `kind`, or None."""
    from backoffice.models import SyncRun

    status = (
        SyncRun.objects.filter(kind=kind, finished_at__isnull=False)
        .exclude(status=SyncRun.Status.SKIPPED)
        .order_by("-finished_at")
        .values_list("status", flat=True)
        .first()
    )
    return _RUN_STATES.get(status, STATE_FAILED) if status else None


# The setting without which the jobs of a run kind are off.
KIND_REQUIRES = {"catalog": "ALSTYLE_TOKEN", "stock": "ALSTYLE_TOKEN", "orders": "KASPI_SHOP_TOKEN"}


def job_state(kind: str) -> str:
    """off (no credentials), never, or the state of the last finished run of `kind`."""
    setting = KIND_REQUIRES.get(kind)
    if setting and not getattr(settings, setting, ""):
        return STATE_OFF
    return last_run_state(kind) or STATE_NEVER


def schedule_states() -> list[dict]:
    """Each django-q2 schedule: its next run, its last task, and its honest state.

    "off" when the integration it needs has no credentials or staff switched the schedule
    off (repeats 0); "failed" when its last task failed; else the state of the last run of
    its kind (ok, partial, held for staff); "never" when nothing ran yet.
    """
    from django_q.models import Schedule, Task

    from backoffice.core.schedules import all_specs, is_configured

    specs = {spec["name"]: spec for spec in all_specs()}
    last_ids = {s.task for s in Schedule.objects.all() if s.task}
    tasks = {t.id: t for t in Task.objects.filter(id__in=last_ids)}
    states = []
    for schedule in Schedule.objects.order_by("name"):
        task = tasks.get(schedule.task)
        spec = specs.get(schedule.name, {})
        if not is_configured(spec) or schedule.repeats == 0:
            state = STATE_OFF
        elif task is not None and not task.success:
            state = STATE_FAILED
        elif spec.get("kind") and (run_state := last_run_state(spec["kind"])):
            state = run_state
        else:
            state = STATE_OK if task is not None else STATE_NEVER
        states.append(
            {
                "name": schedule.name,
                "title": str(spec.get("label") or schedule.name),
                "func": schedule.func,
                "command": spec.get("command"),
                "next_run": schedule.next_run,  # JsonResponse encodes datetimes as ISO 8601
                "last_run": task.stopped if task else None,
                "last_ok": task.success if task else None,
                "state": state,
                "label": str(STATE_LABELS[state]),
            }
        )
    return states


def check_schedules():
    states = schedule_states()
    failed = [s["name"] for s in states if s["state"] == STATE_FAILED]
    off = [s["name"] for s in states if s["state"] == STATE_OFF]
    return not failed, {"count": len(states), "last_run_failed": failed, "off": off}


def check_last_good_run(*, kind: str, configured: bool, setting: str, max_age_minutes: int):
    """A job's health: its last run did not fail or wait for staff, and its last ok/partial
    run finished within `max_age_minutes`.

    An integration without credentials is "off": not a failure, and not "ok" either.
    """
    from backoffice.models import SyncRun

    if not configured:
        return True, {"state": STATE_OFF, "note": f"{setting} is not set: this job is off"}
    last_ok = (
        SyncRun.objects.filter(kind=kind, status__in=[SyncRun.Status.OK, SyncRun.Status.PARTIAL])
        .order_by("-finished_at")
        .first()
    )
    state = last_run_state(kind)
    if last_ok is None or last_ok.finished_at is None:
        return False, {"state": state or STATE_NEVER, "error": f"no successful {kind} run yet"}
    age = timezone.now() - last_ok.finished_at
    fresh = age.total_seconds() <= max_age_minutes * 60
    details = {"state": state, "last_ok_age_min": round(age.total_seconds() / 60)}
    if state in (STATE_FAILED, STATE_HELD):
        details["error"] = f"the last {kind} run {'failed' if state == STATE_FAILED else 'is held'}"
    elif not fresh:
        details["error"] = f"no successful {kind} run for {details['last_ok_age_min']} min"
    return fresh and state not in (STATE_FAILED, STATE_HELD), details


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
        details.setdefault("state", STATE_OK if ok else STATE_FAILED)
        checks[name] = {"ok": bool(ok), **details}
        healthy = healthy and bool(ok)
    off = sorted(name for name, check in checks.items() if check["state"] == STATE_OFF)
    return {"status": "ok" if healthy else "unhealthy", "checks": checks, "off": off}
