"""Issue 14.1 and 14.4: every Al-Style attempt takes a slot from the one shared limiter,
with a safety margin, across threads and processes; truncated answers and read timeouts
are retried through it. The fakes below refuse (403) a second call within the interval,
as Al-Style does, and restart their clock on every call, refused ones too."""

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from django.core.cache import cache
from django.db import connection

from backoffice.core.exceptions import ExternalServiceError
from catalog.clients.alstyle import AlStyleClient, RateLimiter

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "alstyle-test-token-9f8e7d6c5b4a"
INTERVAL = 0.3
MARGIN = 0.3  # generous: a loaded test machine delays a thread more than a real margin


class Supplier:
    """A handler for `fake_server` that enforces one call per INTERVAL per token."""

    def __init__(self, interval=INTERVAL):
        self.interval = interval
        self.lock = threading.Lock()
        self.last = None
        self.log = []  # (path, status)
        self.faults = {}  # path -> list of fault answers to give first

    def __call__(self, path, query, headers, body):
        with self.lock:
            now = time.monotonic()
            refused = self.last is not None and now - self.last < self.interval
            self.last = now
            if refused:
                self.log.append((path, 403))
                return 403, {"name": "Forbidden", "message": "Слишком много запросов"}, 0
            faults = self.faults.get(path)
            answer = faults.pop(0) if faults else (200, [{"id": 1, "name": "A"}], 0)
            self.log.append((path, answer[0]))
            return answer

    def refused(self):
        return sum(1 for _path, status in self.log if status == 403)


def client_for(server, **kw):
    limiter = RateLimiter("limiter-test", INTERVAL, margin=MARGIN)
    return AlStyleClient(token=TOKEN, base_url=server.url + "/api/", limiter=limiter, **kw)


@pytest.fixture
def supplier(fake_server, settings):
    settings.ALSTYLE_RATE_LIMIT_PAUSE = 0.5
    settings.HTTP_BACKOFF_FACTOR = 0
    handler = Supplier()
    fake_server.handler = handler
    return handler


def test_retry_after_5xx_takes_a_new_slot(fake_server, supplier):
    supplier.faults["/api/categories"] = [(503, b"<html>503</html>", 0)]
    client = client_for(fake_server)

    client.categories()
    client.brands()

    assert supplier.log == [
        ("/api/categories", 503),
        ("/api/categories", 200),
        ("/api/brands", 200),
    ]
    assert supplier.refused() == 0


def test_truncated_answer_is_retried_through_the_limiter(fake_server, supplier):
    """Issue 14.4: a 200 with its JSON cut in half (--malformed-every) is retried."""
    supplier.faults["/api/categories"] = [(200, b'[{"id": 1, "na', 0)]

    assert client_for(fake_server).categories() == [{"id": 1, "name": "A"}]
    assert [status for _p, status in supplier.log] == [200, 200]
    assert supplier.refused() == 0


def test_read_timeout_is_retried_through_the_limiter(fake_server, supplier, settings):
    settings.HTTP_READ_TIMEOUT = 0.3
    supplier.faults["/api/categories"] = [(200, [], 1.0)]  # answers after the timeout

    client = client_for(fake_server)
    client.http.timeout = (2, 0.3)
    assert client.categories() == [{"id": 1, "name": "A"}]
    assert len(supplier.log) == 2
    assert supplier.refused() == 0


def test_403_pause_then_retry_takes_a_new_slot(fake_server, supplier):
    client = client_for(fake_server)
    supplier.last = time.monotonic()  # someone else just called with our token

    client.categories()  # the limiter knows nothing of that call: one 403, then a slot
    client.brands()

    assert [status for _p, status in supplier.log] == [403, 200, 200]


def test_threads_sharing_the_token_get_no_403(fake_server, supplier, settings):
    """Two syncs and a cart call at once, each with its own client (as in separate
    processes): the shared clock spaces them all. (The in-memory cache here is shared by
    threads; processes share the DB or Redis cache, see the PostgreSQL test below.)"""
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": "limiter-threads",
        }
    }
    settings.ALSTYLE_CART_API_URL = fake_server.url + "/cart-api/"
    supplier.faults["/api/categories"] = [(502, b"<html>502</html>", 0)]
    errors = []

    def work(call):
        try:
            client = client_for(fake_server)
            for _ in range(3):
                call(client)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [
        threading.Thread(target=work, args=(lambda c: c.categories(),)),
        threading.Thread(target=work, args=(lambda c: c.quantity_price(["1"]),)),
        threading.Thread(target=work, args=(lambda c: c.cart("get"),)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    assert len(supplier.log) == 10  # 9 calls and the retry of the 502
    assert supplier.refused() == 0


def test_slots_keep_a_margin():
    clock = {"now": 1000.0}
    sleeps = []

    def sleep(seconds):
        sleeps.append(round(seconds, 3))
        clock["now"] += seconds

    limiter = RateLimiter("margin", 5.0, margin=0.5, clock=lambda: clock["now"], sleep=sleep)
    limiter.wait()
    limiter.wait()
    clock["now"] += 2.0
    limiter.wait()

    assert sleeps == [5.5, 3.5]


def test_default_margin_comes_from_settings(settings):
    settings.ALSTYLE_SLOT_MARGIN = 0.75
    assert RateLimiter("x", 5.0).spacing == 5.75


def test_mutex_held_by_another_is_never_deleted():
    """A caller that cannot get the mutex gives up with an error; it does not carry on
    and delete the lock of the process holding it."""
    clock = {"now": 0.0}

    def sleep(seconds):
        clock["now"] += seconds

    limiter = RateLimiter("held", 5.0, margin=0.5, clock=lambda: clock["now"], sleep=sleep)
    mutex = f"{limiter.key}:mutex"
    cache.set(mutex, "another-process", timeout=60)

    with pytest.raises(ExternalServiceError, match="could not take a call slot"):
        limiter.wait()

    assert cache.get(mutex) == "another-process"
    assert cache.get(limiter.key) is None  # no slot was taken without the mutex


def test_mutex_released_by_its_holder():
    limiter = RateLimiter("own", 5.0, margin=0.5, sleep=lambda s: None)
    limiter.wait()
    assert cache.get(f"{limiter.key}:mutex") is None
    assert cache.get(limiter.key) is not None


SCRIPT = """
import django, os, sys
django.setup()
from catalog.clients.alstyle import AlStyleClient, RateLimiter
limiter = RateLimiter("limiter-test", float(sys.argv[2]), margin=float(sys.argv[3]))
client = AlStyleClient(base_url=os.environ["ALSTYLE_API_URL"], limiter=limiter)
for _ in range(int(sys.argv[1])):
    client.categories()
"""


@pytest.mark.django_db(transaction=True)
def test_two_processes_share_one_budget(fake_server, supplier, settings):
    if connection.vendor != "postgresql":
        pytest.skip("two processes share the cache table of the PostgreSQL test DB")
    supplier.faults["/api/categories"] = [(503, b"<html>503</html>", 0)]
    db = settings.DATABASES["default"]
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "backoffice.settings_test",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "ALSTYLE_API_URL": fake_server.url + "/api/",
    }
    procs = [
        subprocess.Popen(  # noqa: S603
            [sys.executable, "-c", SCRIPT, "4", str(INTERVAL), str(MARGIN)],
            cwd=ROOT,
            env=env,
            stderr=subprocess.PIPE,
        )
        for _ in range(2)
    ]
    for proc in procs:
        _out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()[-2000:]

    assert len(supplier.log) == 9
    assert supplier.refused() == 0


def test_a_403_holds_back_every_process():
    """After a 403 the supplier's clock restarted: no one (any process) may call for the
    pause, and the next slot after it still keeps the spacing."""
    clock = {"now": 1000.0}
    sleeps = []

    def sleep(seconds):
        sleeps.append(round(seconds, 3))
        clock["now"] += seconds

    refused = RateLimiter("hold", 5.0, margin=0.5, clock=lambda: clock["now"], sleep=sleep)
    other = RateLimiter("hold", 5.0, margin=0.5, clock=lambda: clock["now"], sleep=sleep)
    refused.wait()
    refused.hold(10.0)

    other.wait()
    other.wait()

    assert sleeps == [10.0, 5.5]


def test_a_request_abandoned_on_read_timeout_still_counts(fake_server, settings):
    """A slow supplier handles (and counts) a request after we gave up on it: the retry and
    the next call must not land right behind it. The fake counts the call when it handles
    it, 0.8 s after it was sent; we stop waiting after 0.5 s."""
    settings.HTTP_BACKOFF_FACTOR = 0
    settings.ALSTYLE_RATE_LIMIT_PAUSE = 0.5
    supplier = Supplier()
    first = {"slow": True}

    def handler(path, query, headers, body):
        if first.pop("slow", False):
            time.sleep(0.8)
        return supplier(path, query, headers, body)

    fake_server.handler = handler
    client = client_for(fake_server)
    client.http.timeout = (2, 0.5)

    client.categories()
    client.brands()
    time.sleep(0.5)  # let the abandoned request finish on the server

    assert len(supplier.log) == 3  # the abandoned one, its retry, brands
    assert supplier.refused() == 0


def test_a_hold_placed_while_waiting_voids_the_reserved_slot():
    """A process that reserved its slot before another one's 403 or timeout must not go
    at that slot: it takes a new one after the hold."""
    clock = {"now": 1000.0}
    sleeps = []
    other = None

    def sleep(seconds):
        sleeps.append(round(seconds, 3))
        clock["now"] += seconds
        if len(sleeps) == 1:  # while we wait for our slot, another process gets a 403
            other.hold(10.0)

    waiting = RateLimiter("void", 5.0, margin=0.5, clock=lambda: clock["now"], sleep=sleep)
    other = RateLimiter("void", 5.0, margin=0.5, clock=lambda: clock["now"], sleep=lambda s: None)
    cache.set(waiting.key, 1000.0)  # someone called just now

    waiting.wait()

    # 5.5 s to the reserved slot; the hold from then runs to 1015.5: 10 s more.
    assert sleeps == [5.5, 10.0]
    assert clock["now"] == 1015.5
