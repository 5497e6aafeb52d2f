"""A real HTTP server on 127.0.0.1 per test, whose behaviour each test scripts.

Bounded: it serves only loopback, each request handler is a plain function, and the
server is shut down when the test ends (client read timeouts are set short by the tests).
"""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pytest


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
