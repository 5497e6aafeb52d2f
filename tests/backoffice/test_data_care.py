import os
import shutil
import sqlite3
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from backoffice.models import Alert, SyncRun
from backoffice.ops.retention import cleanup
from orders.models import Order
from payments.models import WebhookDelivery

ROOT = Path(__file__).resolve().parents[2]


def test_retention(settings):
    old = timezone.now() - timedelta(days=400)
    WebhookDelivery.objects.create(body='{"a": 1}', headers="{}", received_at=old)
    fresh = WebhookDelivery.objects.create(body='{"b": 2}', headers="{}")
    SyncRun.objects.create(kind="catalog", created_at=old)
    SyncRun.objects.create(kind="catalog")
    Alert.objects.create(key="k", text="t", sent_at=old)
    finished = Order.objects.create(
        kaspi_id="A",
        code="1",
        status="COMPLETED",
        creation_date=old,
        customer_name="Айгерим",
        customer_phone="+77001234567",
        raw='{"x": 1}',
        total_price=5000,
    )
    open_order = Order.objects.create(
        kaspi_id="B",
        code="2",
        status="ACCEPTED_BY_MERCHANT",
        creation_date=old,
        customer_name="Данияр",
    )

    assert cleanup(dry_run=True)["customer_data"] == 1
    counts = cleanup()

    assert counts == {
        "webhook_bodies": 1,
        "runs": 1,
        "alerts": 1,
        "task_results": 0,
        "market_observations": 0,
        "customer_data": 1,
    }
    assert WebhookDelivery.objects.count() == 2
    assert WebhookDelivery.objects.get(pk=fresh.pk).body == '{"b": 2}'
    finished.refresh_from_db()
    assert (finished.customer_name, finished.customer_phone, finished.raw) == ("", "", "")
    assert finished.total_price == 5000  # the money record stays
    assert Order.objects.get(pk=open_order.pk).customer_name == "Данияр"
    assert cleanup() == {k: 0 for k in counts}


def test_backup_and_restore_sqlite(tmp_path):
    """A real SQLite file: migrate, add a row, back up, restore the copy, read it back."""
    db = tmp_path / "live.sqlite3"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "backoffice.settings_test",
        "DATABASE_URL": f"sqlite:///{db}",
    }
    run = lambda *args: subprocess.run(  # noqa: E731
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert run("migrate", "-v0").returncode == 0
    with sqlite3.connect(db) as conn:
        conn.execute("INSERT INTO catalog_brand (name, supplier_id) VALUES ('Резерв', '')")
    backup = tmp_path / "backup.sqlite3"
    result = run("backup_db", str(backup))
    assert result.returncode == 0, result.stderr
    restored = tmp_path / "restored.sqlite3"
    shutil.copy(backup, restored)  # restore = put the file back with the app stopped
    with sqlite3.connect(restored) as conn:
        assert conn.execute("SELECT name FROM catalog_brand").fetchall() == [("Резерв",)]


@pytest.mark.django_db(transaction=True)
def test_backup_and_restore_postgresql(tmp_path, settings):
    if connection.vendor != "postgresql" or not shutil.which("pg_restore"):
        pytest.skip("needs PostgreSQL and pg_dump/pg_restore")
    from catalog.models import Brand

    Brand.objects.create(name="Резерв")
    backup = tmp_path / "backup.dump"
    call_command("backup_db", str(backup))
    db = settings.DATABASES["default"]
    scratch = f"{db['NAME']}_restore"
    base = ["--host", db["HOST"], "--port", str(db["PORT"]), "--username", db["USER"]]
    subprocess.run(["dropdb", *base, "--if-exists", scratch], check=True)
    subprocess.run(["createdb", *base, scratch], check=True)
    try:
        subprocess.run(
            ["pg_restore", *base, "--no-owner", "--dbname", scratch, str(backup)], check=True
        )
        out = subprocess.run(
            ["psql", *base, "-At", "-d", scratch, "-c", "SELECT name FROM catalog_brand"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        assert out.strip() == "Резерв"
    finally:
        subprocess.run(["dropdb", *base, "--if-exists", scratch], check=True)
