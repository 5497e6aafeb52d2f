"""The production path with real processes, on the PostgreSQL leg of CI (skipped elsewhere):
gunicorn + qcluster on PostgreSQL and Redis, and two qcluster processes sharing one Redis
queue. Every process is started and stopped by the test; all traffic stays on 127.0.0.1."""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from django.db import connection

from backoffice.models import Alert, SyncRun
from backoffice.ops.api import new_token
from backoffice.ops.roles import CATALOG_MANAGER, setup_roles
from catalog.models import PriceRule, Product
from tests.factories import alstyle_handler, element

ROOT = Path(__file__).resolve().parents[2]
REDIS_URL = "redis://127.0.0.1:6379/15"


def _redis_ok() -> bool:
    try:
        import redis

        client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1)
        client.flushdb()
        return True
    except Exception:
        return False


@pytest.fixture
def production_env(settings):
    if connection.vendor != "postgresql":
        pytest.skip("the production path runs on PostgreSQL (CI's PostgreSQL leg)")
    if not _redis_ok():
        pytest.skip("no Redis at 127.0.0.1:6379")
    if not shutil.which("gunicorn", path=str(Path(sys.executable).parent)):
        pytest.skip("gunicorn is not installed")
    db = settings.DATABASES["default"]
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "backoffice.settings",
        "DEBUG": "0",
        "SECRET_KEY": "production-path-test-" + "x" * 40,
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "0",
        "PAYMENTS_ALLOW_DEMO": "1",
        "LOG_FILE": "",
        "LOG_LEVEL": "WARNING",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "Q_BROKER": "redis",
        "REDIS_URL": REDIS_URL,
        "Q_NAME": f"test-{os.getpid()}",
        "Q_WORKERS": "2",
        "ALSTYLE_TOKEN": "alstyle-production-test-token",
        "ALSTYLE_MIN_INTERVAL": "0",
        "KASPI_SHOP_TOKEN": "",  # the order import is not part of this smoke test
    }


def _start(args, env):
    return subprocess.Popen(  # noqa: S603
        [sys.executable, *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def _stop(*processes):
    for process in processes:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


def _wait(predicate, seconds=60.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.3)
    return False


@pytest.mark.django_db(transaction=True)
def test_gunicorn_and_qcluster_health_and_a_sync_via_the_api(production_env, fake_server, tmp_path):
    fake_server.handler = alstyle_handler([element(1), element(2)])
    env = {
        **production_env,
        "ALSTYLE_API_URL": fake_server.url + "/api/",
        "MEDIA_ROOT": str(tmp_path),
        "FEED_DIR": str(tmp_path / "feed"),
    }
    setup_roles()
    PriceRule.objects.create(name="10%", markup_percent=10)
    from django.contrib.auth.models import Group, User

    user = User.objects.create_user("smoke", is_staff=True)
    user.groups.add(Group.objects.get(name=CATALOG_MANAGER))
    token = new_token(name="smoke", user=user)[1]
    port = 8800 + os.getpid() % 100
    web = _start(["-m", "gunicorn", "backoffice.wsgi", "-b", f"127.0.0.1:{port}", "-w", "2"], env)
    worker = _start(["manage.py", "run_worker"], env)
    base = f"http://127.0.0.1:{port}"
    try:
        assert _wait(lambda: _get(f"{base}/health") is not None, 30), "gunicorn did not start"

        def worker_up():
            checks = (_get(f"{base}/health") or {}).get("checks", {})
            return checks.get("task_worker", {}).get("ok")

        assert _wait(worker_up, 40), _get(f"{base}/health")
        answer = requests.post(
            f"{base}/api/sync",
            json={"what": "catalog"},
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )
        assert answer.status_code == 202, answer.text
        run_id = answer.json()["run_id"]

        def finished():
            state = _get(f"{base}/api/runs/{run_id}", token)
            return state and state["status"] in ("ok", "partial", "failed")

        assert _wait(finished, 60), "the queued sync did not finish"
        assert _get(f"{base}/api/runs/{run_id}", token)["status"] == "ok"
        assert Product.objects.count() == 2
        assert SyncRun.objects.get(pk=run_id).triggered_by == "api"

        # The sync chains a price-list build; then every check is green and /health is 200.
        def healthy():
            return requests.get(f"{base}/health", timeout=5).status_code == 200

        def failing():
            checks = (_get(f"{base}/health") or {}).get("checks", {})
            return {name: check for name, check in checks.items() if not check.get("ok")}

        assert _wait(healthy, 60), failing()
    finally:
        _stop(web, worker)


def _get(url, token=None):
    try:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = requests.get(url, headers=headers, timeout=5)
        return response.json()
    except (requests.RequestException, ValueError):
        return None


@pytest.mark.django_db(transaction=True)
def test_two_clusters_on_redis_run_every_task_exactly_once(production_env):
    workers = [_start(["manage.py", "run_worker"], production_env) for _ in range(2)]
    try:
        time.sleep(2)
        enqueue = subprocess.run(  # noqa: S603
            [
                sys.executable,
                "manage.py",
                "shell",
                "-c",
                "from django_q.tasks import async_task\n"
                "for n in range(60): async_task('backoffice.tasks.probe_task', n)",
            ],
            cwd=ROOT,
            env=production_env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert enqueue.returncode == 0, enqueue.stderr
        done = _wait(lambda: Alert.objects.filter(channel="probe").count() >= 60, 90)
        time.sleep(2)  # let any duplicate show up
    finally:
        _stop(*workers)
    keys = list(Alert.objects.filter(channel="probe").values_list("key", flat=True))
    assert done, f"only {len(keys)} of 60 tasks ran"
    assert sorted(keys) == sorted(f"probe:{n}" for n in range(60))  # none twice, none lost
