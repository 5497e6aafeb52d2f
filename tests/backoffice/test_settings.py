import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _import_settings(env):
    code = (
        "import backoffice.settings as s; "
        "print(s.TIME_ZONE, s.LANGUAGE_CODE, s.Q_CLUSTER['timeout'] < s.Q_CLUSTER['retry'])"
    )
    clean = {
        k: v
        for k, v in os.environ.items()
        if k not in {"SECRET_KEY", "DEBUG", "DJANGO_SETTINGS_MODULE"}
    }
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env={**clean, **env}, capture_output=True, text=True
    )


def test_secret_key_required_without_debug():
    result = _import_settings({"DEBUG": "0"})
    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr


def test_debug_runs_with_no_env_at_all():
    result = _import_settings({"DEBUG": "1"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["Asia/Almaty", "ru", "True"]


def test_almaty_is_utc_plus_5():
    from datetime import datetime
    from zoneinfo import ZoneInfo

    offset = datetime(2026, 7, 1, 12, tzinfo=ZoneInfo("Asia/Almaty")).utcoffset()
    assert offset.total_seconds() == 5 * 3600


def test_q_cluster_defaults_are_deliberate(settings):
    q = settings.Q_CLUSTER
    assert q["timeout"] < q["retry"]
    assert q["catch_up"] is False
    assert q["max_attempts"] >= 1
    assert q["workers"] >= 4
    assert q["sync"] is True


def test_cache_is_shared_not_locmem(settings):
    assert "locmem" not in settings.CACHES["default"]["BACKEND"]
