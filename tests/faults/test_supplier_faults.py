"""Al-Style faults over real HTTP: the run ends with a clear status, nothing is corrupted,
and the next run recovers."""

import pytest

from backoffice.models import SyncRun
from catalog.models import Product
from catalog.services.sync import run_catalog_sync
from tests.factories import element

CATEGORIES = [{"id": 3500, "name": "Ноутбуки", "level": 1, "left": 1, "right": 2}]


@pytest.fixture(autouse=True)
def _supplier(settings, fake_server, monkeypatch):
    settings.ALSTYLE_API_URL = fake_server.url + "/api/"
    settings.ALSTYLE_PAGE_SIZE = 2
    settings.HTTP_READ_TIMEOUT = 0.5
    settings.HTTP_CONNECT_TIMEOUT = 0.5
    settings.HTTP_RETRIES = 2
    monkeypatch.setattr("catalog.services.feed.request_feed_build", lambda **kw: (None, False))


def catalog(pages, *, fault=None):
    """A scripted supplier: `fault(path, query, n)` may return an answer to use instead."""
    calls = {"n": 0}

    def handler(path, query, headers, body):
        calls["n"] += 1
        if fault:
            answer = fault(path, query, calls["n"])
            if answer is not None:
                return answer
        if path.endswith("/categories"):
            return 200, CATEGORIES, 0
        if path.endswith("/brands"):
            return 200, {"data": [{"name": "Demo"}]}, 0
        offset = int(query.get("offset", 0))
        number = offset // 2
        items = pages[number] if number < len(pages) else []
        total = sum(len(p) for p in pages)
        return (
            200,
            {
                "elements": items,
                "pagination": {
                    "totalCount": total,
                    "totalPages": len(pages),
                    "currentPage": number + 1,
                },
            },
            0,
        )

    return handler


PAGES = [[element(1), element(2)], [element(3)]]


def baseline(fake_server):
    fake_server.handler = catalog(PAGES)
    assert run_catalog_sync().status == SyncRun.Status.OK
    return {p.article: (p.data_hash, p.quantity) for p in Product.objects.all()}


def assert_unchanged(before):
    after = {p.article: (p.data_hash, p.quantity) for p in Product.objects.all()}
    assert after == before
    assert Product.objects.filter(listed=False).count() == 0


def test_timeout_on_page_2_then_recovery(fake_server):
    before = baseline(fake_server)
    fake_server.handler = catalog(
        PAGES, fault=lambda path, q, n: (200, {}, 2) if q.get("offset") == "2" else None
    )
    run = run_catalog_sync()
    assert run.status == SyncRun.Status.PARTIAL
    assert "no answer within" in run.error
    assert_unchanged(before)
    fake_server.handler = catalog(PAGES)
    assert run_catalog_sync().status == SyncRun.Status.OK


def test_5xx_burst_is_retried(fake_server):
    baseline(fake_server)
    burst = {"left": 2}

    def fault(path, q, n):
        if path.endswith("elements-pagination") and burst["left"]:
            burst["left"] -= 1
            return 503, {"error": "busy"}, 0
        return None

    fake_server.handler = catalog(PAGES, fault=fault)
    run = run_catalog_sync()
    assert run.status == SyncRun.Status.OK
    assert burst["left"] == 0


def test_5xx_that_does_not_stop_fails_clearly(fake_server):
    before = baseline(fake_server)
    fake_server.handler = catalog(
        PAGES, fault=lambda path, q, n: (502, {}, 0) if path.endswith("pagination") else None
    )
    run = run_catalog_sync()
    assert run.status == SyncRun.Status.FAILED
    assert "HTTP 502" in run.error
    assert_unchanged(before)


def test_403_rate_limit_then_recovery(fake_server, settings):
    settings.ALSTYLE_RATE_LIMIT_PAUSE = 0.05
    baseline(fake_server)
    limited = {"left": 2}

    def fault(path, q, n):
        if limited["left"]:
            limited["left"] -= 1
            return 403, {"message": "Too many requests"}, 0
        return None

    fake_server.handler = catalog(PAGES, fault=fault)
    assert run_catalog_sync().status == SyncRun.Status.OK


def test_truncated_json_fails_and_keeps_data(fake_server):
    before = baseline(fake_server)
    fake_server.handler = catalog(
        PAGES,
        fault=lambda path, q, n: (
            (200, b'{"elements": [{"article": 1, "na', 0) if path.endswith("pagination") else None
        ),
    )
    run = run_catalog_sync()
    assert run.status == SyncRun.Status.FAILED
    assert "not JSON" in run.error
    assert_unchanged(before)


def test_page_that_never_ends_is_stopped(fake_server, settings):
    settings.ALSTYLE_MAX_PAGES = 5
    before = baseline(fake_server)
    fake_server.handler = catalog(
        PAGES,
        fault=lambda path, q, n: (
            (
                200,
                {
                    "elements": [element(1)],
                    "pagination": {"totalCount": 10**9, "totalPages": 10**6, "currentPage": 1},
                },
                0,
            )
            if path.endswith("pagination")
            else None
        ),
    )
    run = run_catalog_sync()
    assert run.status == SyncRun.Status.PARTIAL
    assert "did not end after 5 pages" in run.error
    assert Product.objects.filter(listed=False).count() == 0  # nothing marked vanished
    assert set(before) == set(Product.objects.values_list("article", flat=True))


def test_garbage_records_do_not_stop_the_run(fake_server):
    hostile = [
        [element(1), {"article": None}, "not an object", element(2, price1=[1])],
        [element(3, quantity={"x": 1}, name="\x00\x01<&>")],
    ]
    fake_server.handler = catalog(hostile)
    run = run_catalog_sync()
    assert run.status == SyncRun.Status.PARTIAL
    assert run.counts["errors"] == 3
    assert set(Product.objects.values_list("article", flat=True)) == {"1", "3"}
