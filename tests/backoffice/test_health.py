import json
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone


@pytest.fixture(autouse=True)
def _integrations_off(settings):
    """Supplier and Kaspi tokens unset: their checks report "not configured", not failed."""
    settings.ALSTYLE_TOKEN = ""
    settings.KASPI_SHOP_TOKEN = ""


@pytest.fixture
def worker_alive(monkeypatch):
    monkeypatch.setattr(
        "backoffice.core.health.worker_heartbeats", lambda: [timezone.now() - timedelta(seconds=5)]
    )


@pytest.fixture
def feed_published(settings):
    from catalog.services.feed import feed_path

    path = feed_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("<x/>")


def test_health_ok_when_everything_is_up(client, worker_alive, feed_published, settings):
    settings.ALSTYLE_TOKEN = ""
    response = client.get("/health")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["cache"]["ok"] is True
    assert body["checks"]["task_worker"]["last_heartbeat_age_s"] <= 6


def test_health_503_without_worker(client, monkeypatch, feed_published, settings):
    settings.ALSTYLE_TOKEN = ""
    monkeypatch.setattr("backoffice.core.health.worker_heartbeats", lambda: [])
    response = client.get("/health")

    assert response.status_code == 503
    assert response.json()["checks"]["task_worker"]["ok"] is False


def test_health_503_with_stale_worker(client, monkeypatch, feed_published, settings):
    settings.ALSTYLE_TOKEN = ""
    monkeypatch.setattr(
        "backoffice.core.health.worker_heartbeats", lambda: [timezone.now() - timedelta(hours=1)]
    )
    assert client.get("/health").status_code == 503


def test_healthcheck_command_exit_codes(
    worker_alive, feed_published, settings, capsys, monkeypatch
):
    settings.ALSTYLE_TOKEN = ""
    call_command("healthcheck")
    assert json.loads(capsys.readouterr().out)["status"] == "ok"

    monkeypatch.setattr("backoffice.core.health.worker_heartbeats", lambda: [])
    with pytest.raises(CommandError, match="task_worker"):
        call_command("healthcheck")


def test_a_raising_check_counts_as_failed(settings, client, worker_alive):
    settings.HEALTH_CHECKS = [
        "backoffice.core.health.check_database",
        "tests.backoffice.test_health.boom",
    ]
    body = client.get("/health").json()
    assert body["checks"]["boom"] == {
        "ok": False,
        "state": "failed",
        "error": "RuntimeError: broken",
    }


def boom():
    raise RuntimeError("broken")
