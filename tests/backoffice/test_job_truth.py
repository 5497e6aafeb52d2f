"""Jobs that tell the truth: one exit-code table for every job command, one entry path per
schedule (command and task run the same service), a failed run is a failed task, and the
dashboard, /api/status and /health say off / failed / ok honestly."""

import re
from datetime import timedelta
from pathlib import Path
from unittest import mock

import pytest
from django.core.management import call_command, get_commands, load_command_class
from django.db import connections
from django.urls import reverse
from django.utils import timezone

from backoffice.core.runs import RunFailed, acquire_lock, release_lock
from backoffice.core.schedules import all_specs, setup_schedules
from backoffice.models import Alert, SyncRun

ROOT = Path(__file__).resolve().parents[2]


def _exit_code(name, *args) -> int:
    """Run a command as `manage.py name args` does (argv parsing, CommandError → exit code)
    and return its process exit code."""
    command = load_command_class(get_commands()[name], name)
    # run_from_argv closes the connections when done; the test's transaction needs its own.
    with mock.patch.object(connections, "close_all"):
        try:
            command.run_from_argv(["manage.py", name, *args])
        except SystemExit as exc:
            return exc.code or 0
    return 0


def _job_ending(status: str, error: str = ""):
    def job(*, run, **kwargs):
        if status == "raise":
            raise RuntimeError("supplier answered nonsense")
        run.status, run.error = status, error

    return job


# command argv, module holding the job's service, service name, run kind
JOB_COMMANDS = [
    (["sync_alstyle"], "catalog.services.sync", "sync_catalog", "catalog"),
    (["sync_alstyle", "--stock-only"], "catalog.services.sync", "sync_stock", "stock"),
    (["build_feed"], "catalog.services.feed", "build_feed", "feed"),
    (["pull_kaspi_orders"], "orders.services.imports", "import_orders", "orders"),
]
OUTCOMES = [  # what the job does → exit code
    ("running", 0),  # finishes without setting a status: ok
    ("partial", 2),
    ("held", 3),
    ("failed", 1),
    ("raise", 1),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("argv", "module", "service", "kind"), JOB_COMMANDS)
@pytest.mark.parametrize(("outcome", "code"), OUTCOMES)
def test_every_job_command_exits_with_the_table(
    monkeypatch, capsys, argv, module, service, kind, outcome, code
):
    monkeypatch.setattr(f"{module}.{service}", _job_ending(outcome, "312 of 1080 listed"))
    monkeypatch.setattr("orders.services.fulfilment.process_new_orders", lambda **kw: {})
    monkeypatch.setattr("catalog.services.sync._after_sync", lambda run, dry_run: None)

    assert _exit_code(*argv) == code
    run = SyncRun.objects.get(kind=kind)
    err = capsys.readouterr().err
    if code == 2:
        assert "partial: 312 of 1080 listed" in err
    if code == 3:
        assert "held for staff: 312 of 1080 listed" in err
    if code == 1:
        assert run.status == SyncRun.Status.FAILED
        assert "failed" in err


@pytest.mark.django_db
@pytest.mark.parametrize(("argv", "module", "service", "kind"), JOB_COMMANDS)
def test_a_command_skipped_because_the_job_runs_exits_0_and_says_so(
    monkeypatch, capsys, argv, module, service, kind
):
    monkeypatch.setattr(f"{module}.{service}", _job_ending("running"))
    assert acquire_lock(kind, "someone-else")
    try:
        assert _exit_code(*argv) == 0
    finally:
        release_lock(kind, "someone-else")
    assert "skipped: Another run of this kind is in progress" in capsys.readouterr().out
    assert SyncRun.objects.get(kind=kind).status == SyncRun.Status.SKIPPED


def test_the_readme_has_the_exit_code_table():
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Exit codes") :]
    for line in ("| 0 |", "| 1 |", "| 2 |", "| 3 |"):
        assert line in section
    for command in ("sync_alstyle", "pull_kaspi_orders", "build_feed", "push_kaspi_cards"):
        assert command in section


# --- One entry path ------------------------------------------------------------------------


def test_every_schedule_has_a_command_listed_in_crontab_example():
    crontab = (ROOT / "crontab.example").read_text()
    commands = get_commands()
    for spec in all_specs():
        command = spec["command"]
        assert command.split()[0] in commands, spec["name"]
        assert re.search(rf"manage\.py {re.escape(command)}( |>|$)", crontab, re.M), command


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("command", "task", "service"),
    [
        ("sweep_payments", "payments.tasks.sweep_payments_task", "payments.services.polling"),
        ("poll_card_imports", "catalog.tasks.poll_card_imports_task", "catalog.services.cards"),
        ("alert_incidents", "backoffice.tasks.incidents_task", "backoffice.ops.incidents"),
        ("orders_daily_summary", "orders.tasks.daily_summary_task", "orders.services.fulfilment"),
        ("cleanup_data", "backoffice.tasks.cleanup_task", "backoffice.ops.retention"),
    ],
)
def test_command_and_task_run_the_same_service(monkeypatch, command, task, service):
    from django.utils.module_loading import import_string

    names = {
        "sweep_payments": "sweep_payments",
        "poll_card_imports": "poll_card_imports",
        "alert_incidents": "alert_incidents",
        "orders_daily_summary": "send_daily_summary",
        "cleanup_data": "cleanup",
    }
    calls = []

    def service_stub(*args, **kwargs):
        calls.append(kwargs)
        return {} if command == "cleanup_data" else (0 if command != "orders_daily_summary" else "")

    # Patch the service where each entry point looks it up.
    monkeypatch.setattr(f"{service}.{names[command]}", service_stub)
    for module in (task.rsplit(".", 1)[0], f"{task.split('.')[0]}.management.commands.{command}"):
        try:
            mod = __import__(module, fromlist=["x"])
        except ImportError:
            mod = __import__(f"backoffice.management.commands.{command}", fromlist=["x"])
        if hasattr(mod, names[command]):
            monkeypatch.setattr(mod, names[command], service_stub)
    call_command(command)
    import_string(task)()
    assert len(calls) == 2


KASPI = "https://kaspi.kz/shop/api/v2/"
ALSTYLE = "https://api.al-style.kz/api/"


@pytest.mark.django_db
def test_pull_kaspi_orders_runs_the_new_order_flow_and_prints_counts(mocked_http, capsys):
    from orders.models import Order
    from tests import factories
    from tests.orders.test_orders import T0, entries_json, order_json, register_orders

    factories.product(article="12345", sku="AS12345")
    order = order_json(100000001, created=T0 + timedelta(days=1))
    register_orders(
        mocked_http, [[order]], entries={order["id"]: entries_json(("AS12345", 2, 5000))}
    )
    mocked_http.get(
        ALSTYLE + "quantity-price",
        json={"data": {"12345": {"quantity": 7, "price1": 1, "price2": 1}}},
    )

    code = _exit_code("pull_kaspi_orders", "--since", "2026-01-01", "--until", "2026-01-03")

    out = capsys.readouterr().out
    assert code == 0
    saved = Order.objects.get(code="100000001")
    assert saved.alerted_at is not None
    assert saved.entries.get().stock_checked_at is not None
    assert Alert.objects.filter(key="order:new:100000001").exists()
    assert "new orders: stock_checked=1, alerted=1, auto_accepted=0" in out
    run = SyncRun.objects.get(kind="orders")
    assert run.counts["new_stock_checked"] == 1


# --- A failed run is a failed task; off / failed / ok honestly ------------------------------


@pytest.mark.django_db
def test_a_failed_run_makes_the_task_fail_after_it_is_recorded(monkeypatch):
    from catalog.tasks import build_feed_task, sync_catalog_task
    from orders.tasks import import_orders_task

    monkeypatch.setattr("catalog.services.sync.sync_catalog", _job_ending("raise"))
    monkeypatch.setattr("catalog.services.feed.build_feed", _job_ending("failed", "too few"))
    monkeypatch.setattr("orders.services.imports.import_orders", _job_ending("failed", "401"))
    monkeypatch.setattr("orders.services.fulfilment.process_new_orders", lambda **kw: {})
    for task, kind in (
        (sync_catalog_task, "catalog"),
        (build_feed_task, "feed"),
        (import_orders_task, "orders"),
    ):
        with pytest.raises(RunFailed):
            task()
        assert SyncRun.objects.get(kind=kind).status == SyncRun.Status.FAILED


@pytest.mark.django_db
def test_partial_and_held_runs_are_done_tasks_that_say_so(monkeypatch):
    from catalog.tasks import sync_catalog_task, sync_stock_task

    monkeypatch.setattr("catalog.services.sync._after_sync", lambda run, dry_run: None)
    monkeypatch.setattr("catalog.services.sync.sync_catalog", _job_ending("held", "72 % vanished"))
    monkeypatch.setattr("catalog.services.sync.sync_stock", _job_ending("partial", "chunk 3"))
    assert sync_catalog_task().endswith("held: 72 % vanished")
    assert sync_stock_task().endswith("partial: chunk 3")


@pytest.mark.django_db(transaction=True)
def test_a_failing_task_is_a_django_q_failure(monkeypatch):
    """Through django-q2's own worker and monitor, as a cluster runs a task: the failed run
    becomes a Failure row (the dashboard's "failed tasks, 24 h"), not a Success."""
    from multiprocessing import Queue, Value

    from django_q.models import Failure, Success
    from django_q.monitor import monitor
    from django_q.worker import worker

    monkeypatch.setattr("catalog.services.sync.sync_catalog", _job_ending("raise"))
    tasks, results = Queue(), Queue()
    tasks.put(
        {
            "id": "a" * 32,
            "name": "catalog-sync-probe",
            "func": "catalog.tasks.sync_catalog_task",
            "args": (),
            "kwargs": {},
            "started": timezone.now(),
        }
    )
    tasks.put("STOP")
    worker(tasks, results, Value("f", -1))
    results.put("STOP")
    monitor(results)

    assert Success.objects.count() == 0
    failure = Failure.objects.get()
    assert "supplier answered nonsense" in failure.result
    assert SyncRun.objects.get(kind="catalog").status == SyncRun.Status.FAILED


@pytest.fixture
def no_tokens(settings):
    settings.ALSTYLE_TOKEN = ""
    settings.KASPI_SHOP_TOKEN = ""
    settings.PAYMENTS_PROVIDER = "none"


@pytest.mark.django_db
def test_health_with_no_tokens_says_off_not_ok(client, no_tokens):
    body = client.get("/health").json()
    assert body["checks"]["catalog_sync"]["state"] == "off"
    assert body["checks"]["order_import"]["state"] == "off"
    assert {"catalog_sync", "order_import"} <= set(body["off"])


@pytest.mark.django_db
def test_health_after_a_failed_run_is_failed_even_with_a_recent_good_run(client):
    now = timezone.now()
    SyncRun.objects.create(
        kind="catalog", status="ok", started_at=now - timedelta(minutes=20), finished_at=now
    )
    SyncRun.objects.create(kind="catalog", status="failed", error="HTTP 500", finished_at=now)
    check = client.get("/health").json()["checks"]["catalog_sync"]
    assert (check["ok"], check["state"]) == (False, "failed")


@pytest.mark.django_db
def test_dashboard_and_api_status_show_off_and_failed(staff_client, no_tokens, settings):
    from django_q.models import Schedule, Task

    setup_schedules()
    Schedule.objects.filter(name="incidents").update(repeats=0)  # switched off by staff
    failed = Task.objects.create(
        id="t1",
        name="cleanup",
        func="backoffice.tasks.cleanup_task",
        started=timezone.now(),
        stopped=timezone.now(),
        success=False,
    )
    Schedule.objects.filter(name="data-cleanup").update(task=failed.id)

    states = {s["name"]: s for s in staff_client.get("/api/status").json()["schedules"]}
    assert states["catalog-sync"]["state"] == "off"
    assert states["kaspi-orders"]["state"] == "off"
    assert states["payments-sweep"]["state"] == "off"
    assert states["incidents"]["state"] == "off"
    assert states["data-cleanup"]["state"] == "failed"
    assert states["daily-summary"]["state"] == "never"

    settings.LANGUAGE_CODE = "ru"
    page = staff_client.get(reverse("dashboard")).content.decode()
    assert "выключено" in page
    assert "✓" not in page  # nothing here ran fine
