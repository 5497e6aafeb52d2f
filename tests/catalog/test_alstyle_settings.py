"""Issue 14.7: an ALSTYLE_STOCK_CHUNK Al-Style would refuse stops the app at start-up."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def import_settings(**env):
    clean = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    return subprocess.run(  # noqa: S603
        [sys.executable, "-c", "import backoffice.settings as s; print(s.ALSTYLE_STOCK_CHUNK)"],
        cwd=ROOT,
        env={**clean, "DEBUG": "1", **env},
        capture_output=True,
        text=True,
    )


@pytest.mark.parametrize("value", ["0", "251", "1000", "-5"])
def test_stock_chunk_outside_1_to_250_is_refused(value):
    result = import_settings(ALSTYLE_STOCK_CHUNK=value)
    assert result.returncode != 0
    assert f"ALSTYLE_STOCK_CHUNK={value} is outside 1-250" in result.stderr
    assert "at most 250 articles per quantity-price call" in result.stderr


@pytest.mark.parametrize("value", ["1", "250"])
def test_stock_chunk_within_limits_starts(value):
    result = import_settings(ALSTYLE_STOCK_CHUNK=value)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == value
