import io
import json
import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pytest
import responses as responses_lib

from catalog.services import fetches

# Everything logged during the suite, through the same masking filter as production
# handlers; tests/test_zz_secrets.py checks it holds no secret.
SUITE_LOG = io.StringIO()


@pytest.fixture(scope="session", autouse=True)
def _capture_suite_log():
    from backoffice.core.logging import SecretMaskingFilter

    handler = logging.StreamHandler(SUITE_LOG)
    handler.setLevel(logging.DEBUG)
    handler.addFilter(SecretMaskingFilter())
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    yield
    root.removeHandler(handler)


@pytest.fixture
def mocked_http():
    """Every outgoing request must be faked: an unexpected one fails the test."""
    with responses_lib.RequestsMock(assert_all_requests_are_fired=True) as rsps:
        yield rsps


@pytest.fixture(autouse=True)
def _isolated(settings, tmp_path, db):
    settings.FEED_DIR = tmp_path / "feed"
    settings.MEDIA_ROOT = tmp_path
    fetches.reset_fetch_throttle()
    from django.core.cache import cache

    cache.clear()


@pytest.fixture
def staff_client(client, django_user_model):
    user = django_user_model.objects.create_superuser("admin", "", "pw-123456")
    client.force_login(user)
    client.user = user
    return client


# --- A scriptable HTTP server on 127.0.0.1 (fault and process tests) ---------------------


class Script:
    """What the fake answers: `handler(path, query, headers, body)` → (status, body, delay)."""

    def __init__(self):
        self.handler = lambda *args: (404, {"error": "not scripted"}, 0)
        self.requests: list[tuple[str, dict, dict]] = []


@pytest.fixture
def fake_server():
    script = Script()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def _serve(self):
            url = urlparse(self.path)
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            script.requests.append((url.path, query, dict(self.headers)))
            status, payload, delay = script.handler(url.path, query, dict(self.headers), body)
            if delay:
                time.sleep(delay)
            data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (a timeout test)

        do_GET = do_POST = _serve  # noqa: N815

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    script.url = f"http://127.0.0.1:{server.server_port}"
    yield script
    server.shutdown()
    server.server_close()
