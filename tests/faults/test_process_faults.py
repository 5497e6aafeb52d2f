"""A worker killed in the middle of a sync, and a disk that fills during a feed build."""

import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import connection

from backoffice.models import JobLock, SyncRun
from catalog.models import Product
from catalog.services.feed import build_feed, feed_path
from catalog.services.sync import run_catalog_sync
from tests import factories
from tests.factories import element

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.django_db(transaction=True)
def test_worker_killed_mid_sync_leaves_db_consistent_and_lock_expires(fake_server, settings):
    if connection.vendor != "postgresql":
        pytest.skip("the killed worker is a second process: it needs the PostgreSQL test DB")
    stalled = {"on": True}

    def handler(path, query, headers, body):
        if path.endswith("/categories"):
            return 200, [], 0
        if path.endswith("/brands"):
            return 200, {"data": []}, 0
        offset = int(query.get("offset", 0))
        if offset >= 2 and stalled["on"]:
            return 200, {}, 30  # the worker hangs here until we kill it
        items = [element(1), element(2)] if offset == 0 else [element(3)]
        return (
            200,
            {
                "elements": items,
                "pagination": {"totalCount": 3, "totalPages": 2, "currentPage": offset // 2 + 1},
            },
            0,
        )

    fake_server.handler = handler
    db = settings.DATABASES["default"]
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "backoffice.settings_test",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "ALSTYLE_API_URL": fake_server.url + "/api/",
        "ALSTYLE_PAGE_SIZE": "2",
        "HTTP_READ_TIMEOUT": "60",
    }
    worker = subprocess.Popen(  # noqa: S603
        [sys.executable, "manage.py", "sync_alstyle"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(200):
            if Product.objects.count() == 2:
                break
            time.sleep(0.05)
        assert Product.objects.count() == 2  # page 1 committed, page 2 in flight
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
    finally:
        if worker.poll() is None:
            worker.kill()

    lock = JobLock.objects.get(kind="catalog")
    assert lock.holder  # the dead worker still "holds" it
    assert SyncRun.objects.get().status == SyncRun.Status.RUNNING
    stalled["on"] = False

    settings.JOB_LOCK_STALE_SECONDS = 3600
    assert run_catalog_sync().status == SyncRun.Status.SKIPPED  # a live-looking lock is kept
    settings.JOB_LOCK_STALE_SECONDS = 0  # the dead holder's heartbeat is now stale
    settings.ALSTYLE_API_URL = fake_server.url + "/api/"
    settings.ALSTYLE_PAGE_SIZE = 2
    run = run_catalog_sync()
    assert run.status == SyncRun.Status.OK, run.error
    assert sorted(Product.objects.values_list("article", flat=True)) == ["1", "2", "3"]
    assert JobLock.objects.get(kind="catalog").holder == ""


def test_disk_full_during_feed_build_keeps_serving_the_old_file(client, monkeypatch):
    factories.product(article="1", sku="AS1", kaspi_price=5000)
    build_feed()
    old = feed_path().read_bytes()
    factories.product(article="2", sku="AS2", kaspi_price=7000)

    calls = {"n": 0}
    real_fdopen = os.fdopen

    class FullDisk:
        """The temp file on a full disk: every write fails."""

        def __init__(self, raw):
            self.raw = raw

        def write(self, data):
            calls["n"] += 1
            raise OSError(errno.ENOSPC, "No space left on device")

        def __getattr__(self, name):
            return getattr(self.raw, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return self.raw.__exit__(*exc)

    def fdopen(fd, mode="r", *args, **kwargs):
        handle = real_fdopen(fd, mode, *args, **kwargs)
        return FullDisk(handle) if "w" in mode else handle

    monkeypatch.setattr("catalog.services.feed.os.fdopen", fdopen)
    with pytest.raises(OSError, match="No space left"):
        build_feed()
    monkeypatch.undo()

    assert feed_path().read_bytes() == old
    response = client.get("/feed.xml")
    assert b"".join(response.streaming_content) == old
    assert not [p for p in feed_path().parent.iterdir() if p.name.endswith(".tmp")]
    assert calls["n"] >= 1
