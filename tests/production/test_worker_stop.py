"""Stopping the task worker (PostgreSQL + Redis, real processes; skipped elsewhere).

The worker is started as deploy/backoffice-worker.service starts it (its ExecStart) and
stopped as systemd stops it (its KillMode and KillSignal), or as Ctrl-C / `kill -- -PGID`
stop it (a signal to every process of the group). Each time it must exit within 10 s, the
tasks in flight must finish, and the tasks still queued must run after the next start:
none lost, none twice.
"""

import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from backoffice.models import Alert
from tests.production.test_production_path import ROOT, _wait, production_env  # noqa: F401

UNIT = ROOT / "deploy" / "backoffice-worker.service"
REDIS_URL = "redis://127.0.0.1:6379/4"
STOP_WITHIN = 10.0
TASK_SECONDS = 2.0


@pytest.fixture
def worker_env(production_env):  # noqa: F811 (the fixture imported above)
    import redis

    redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).flushdb()
    return {**production_env, "REDIS_URL": REDIS_URL, "Q_NAME": f"stop-{os.getpid()}"}


def _unit() -> dict:
    service, section = {}, None
    for line in UNIT.read_text().splitlines():
        line = line.strip()
        if line.startswith("["):
            section = line
        elif section == "[Service]" and "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            service[key] = value
    return service


def _start_as_the_unit_does(env) -> subprocess.Popen:
    argv = shlex.split(_unit()["ExecStart"])
    assert argv[0].endswith("/bin/python")
    return subprocess.Popen(  # noqa: S603
        [sys.executable, *argv[1:]],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own group, as the unit's own cgroup
    )


def _descendants(pid: int) -> list[int]:
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = [], [pid]
    while frontier:
        children = [child for child, parent in parents.items() if parent in frontier]
        found += children
        frontier = children
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _enqueue(env, count: int) -> None:
    done = subprocess.run(  # noqa: S603
        [
            sys.executable,
            "manage.py",
            "shell",
            "-c",
            "from django_q.tasks import async_task\n"
            f"for n in range({count}): async_task('backoffice.tasks.probe_task', n, "
            f"{TASK_SECONDS})",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr


def _keys(prefix: str) -> list[str]:
    return sorted(
        key
        for key in Alert.objects.filter(channel="probe").values_list("key", flat=True)
        if key.startswith(prefix)
    )


def _stop(worker: subprocess.Popen, how: str) -> tuple[float, list[int]]:
    """Stop the worker; return the seconds until it exited and the processes that were
    still alive then (systemd would SIGKILL them)."""
    unit = _unit()
    family = [worker.pid, *_descendants(worker.pid)]
    started = time.monotonic()
    if how == "systemd":
        sig = getattr(signal, unit.get("KillSignal", "SIGTERM"))
        if unit.get("KillMode", "control-group") in ("mixed", "process"):
            os.kill(worker.pid, sig)
        else:  # control-group: every process of the service
            for pid in family:
                os.kill(pid, sig)
    else:  # Ctrl-C or `kill -- -PGID`: every process of the worker's group
        os.killpg(worker.pid, getattr(signal, how))
    try:
        worker.wait(timeout=STOP_WITHIN + 20)
    except subprocess.TimeoutExpired:
        pass
    took = time.monotonic() - started
    left = [pid for pid in family if _alive(pid)]
    for pid in left:
        os.kill(pid, signal.SIGKILL)  # what systemd does after the main process is gone
    if worker.poll() is None:
        worker.kill()
        worker.wait()
    return took, left


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("how", ["systemd", "SIGTERM", "SIGINT"])
def test_the_worker_stops_within_seconds_and_loses_no_task(worker_env, how):
    env = {**worker_env, "Q_WORKERS": "2"}
    worker = _start_as_the_unit_does(env)
    try:
        time.sleep(3)  # the cluster is up
        _enqueue(env, 6)
        assert _wait(lambda: len(_keys("probe-start:")) >= 2, 40), "no task started"
        took, left = _stop(worker, how)
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
    started, finished = _keys("probe-start:"), _keys("probe:")
    assert took <= STOP_WITHIN, f"still running {took:.1f} s after the stop signal"
    assert not left, f"processes left behind: {left}"
    # Every task that started finished.
    assert [k.split(":")[1] for k in started] == [k.split(":")[1] for k in finished]

    # The tasks not started yet are still queued: the next start runs them, once each.
    again = _start_as_the_unit_does(env)
    try:
        _wait(lambda: len(_keys("probe:")) >= 6, 60)
        time.sleep(TASK_SECONDS + 1)  # let any duplicate show up
    finally:
        _stop(again, "SIGTERM")
    keys = list(Alert.objects.filter(channel="probe").values_list("key", flat=True))
    assert sorted(k for k in keys if k.startswith("probe:")) == [f"probe:{n}" for n in range(6)]
    assert len(keys) == len(set(keys)), "a task ran twice"
