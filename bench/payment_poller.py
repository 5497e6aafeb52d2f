"""Benchmark: one poller for many waiting Kaspi QR payments, with a real task worker.

Starts a stub of the Kaspi QR status call on 127.0.0.1 (every payment stays
`QrTokenCreated`, so customers keep waiting), a django-q2 cluster with 4 workers (ORM
broker, as the default install), creates PAYMENTS waiting payments with a poll interval
of INTERVAL seconds, lets them wait SECONDS, and then reports from what the stub saw:
the gaps between two status checks of the same payment, and from django-q2's task records:
how many tasks ran at the same time (workers busy with polling).
Targets: every gap ≤ interval + 1 s; at most one worker busy polling at any moment.
Run: DATABASE_URL=postgres://…/bench .venv/bin/python bench/payment_poller.py
"""

import json
import os
import subprocess
import sys
import threading
import time
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _setup  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PAYMENTS = int(os.environ.get("PAYMENTS", 20))
INTERVAL = int(os.environ.get("INTERVAL", 5))
SECONDS = int(os.environ.get("SECONDS", 45))
SLICE = int(os.environ.get("SLICE", 15))  # short slices: the run includes handovers
WORKERS = 4

seen: dict[str, list[float]] = defaultdict(list)


class StatusStub(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):  # noqa: N802
        if "/payment/status/" in self.path:
            seen[self.path.rsplit("/", 1)[1]].append(time.time())
        body = json.dumps({"StatusCode": 0, "Data": {"Status": "QrTokenCreated"}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def main():
    stub = ThreadingHTTPServer(("127.0.0.1", 0), StatusStub)
    threading.Thread(target=stub.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{stub.server_port}/r1"
    os.environ.update(
        PAYMENTS_PROVIDER="kaspi_qr",
        KASPI_QR_API_URL=base,
        KASPI_QR_API_KEY="bench-qr-key-0123456789",
        PAYMENTS_POLLER_SLICE_SECONDS=str(SLICE),
        # The real settings (test settings run tasks inline): tasks go through the broker.
        DJANGO_SETTINGS_MODULE="backoffice.settings",
        DEBUG="1",
        SECRET_KEY="bench-" + "x" * 50,
        LOG_FILE="",
        LOG_LEVEL="WARNING",
        Q_WORKERS=str(WORKERS),
    )
    _setup.setup()
    from datetime import timedelta

    from django.utils import timezone
    from django_q.models import OrmQ, Task

    from backoffice.models import JobLock
    from payments.models import Payment
    from payments.services.polling import POLLER_LOCK, start_poller

    Payment.objects.filter(status__in=Payment.OPEN_STATUSES).update(status="expired")
    Task.objects.all().delete()
    OrmQ.objects.all().delete()
    JobLock.objects.filter(kind=POLLER_LOCK).delete()
    now = timezone.now()
    for n in range(PAYMENTS):
        Payment.objects.create(
            provider="kaspi_qr",
            amount=1000 + n,
            status="pending",
            external_id=str(7_000_000 + n),
            options={"poll": INTERVAL, "scan_timeout": 3600, "confirm_timeout": 3600},
            expires_at=now + timedelta(hours=1),
            next_poll_at=now + timedelta(seconds=n * INTERVAL / PAYMENTS),  # staggered
        )
    cluster = subprocess.Popen(
        [sys.executable, "manage.py", "qcluster"],
        cwd=ROOT,
        env=os.environ,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        start_poller()
        time.sleep(SECONDS)
        Payment.objects.filter(external_id__startswith="7000").update(status="expired")
        time.sleep(INTERVAL + 2)  # the poller sees nothing open and ends
    finally:
        cluster.terminate()
        cluster.wait(timeout=30)
        stub.shutdown()

    gaps = []
    for times in seen.values():
        gaps += [b - a for a, b in zip(times, times[1:], strict=False)]
    checks = sum(len(times) for times in seen.values())
    tasks = list(Task.objects.filter(func="payments.tasks.poll_payments_task"))
    # django-q2's `started` is when a task was queued; the task reports how long it ran.
    edges = []
    for t in tasks:
        ran = float(str(t.result).rsplit(" in ", 1)[1].split()[0])
        edges += [(t.stopped.timestamp() - ran, 1), (t.stopped.timestamp(), -1)]
    edges.sort()
    # A slice queues its successor after releasing the lock, so their checks never
    # overlap; any overlap of the tasks themselves is measured too.
    busy = peak = 0
    overlap, since = 0.0, None
    for at, step in edges:
        busy += step
        peak = max(peak, busy)
        if busy > 1 and since is None:
            since = at
        elif busy <= 1 and since is not None:
            overlap, since = overlap + at - since, None
    worst = max(gaps) if gaps else float("nan")
    print(
        f"payments: {PAYMENTS} waiting {SECONDS} s, interval {INTERVAL} s, poller slice {SLICE} s, "
        f"{WORKERS} workers"
    )
    print(
        f"status checks: {checks} ({len(seen)} payments); gaps: min {min(gaps):.2f} s, "
        f"median {sorted(gaps)[len(gaps) // 2]:.2f} s, max {worst:.2f} s "
        f"(limit {INTERVAL + 1} s, ratio {worst / (INTERVAL + 1):.2f})"
    )
    print(
        f"poller tasks: {len(tasks)} (handovers {max(len(tasks) - 1, 0)}), "
        f"most running at once: {peak} (more than one for {overlap * 1000:.0f} ms), results: "
        + ", ".join(sorted({str(t.result).split(":")[0] for t in tasks}))
    )
    ok = gaps and worst <= INTERVAL + 1 and peak <= 1 and len(seen) == PAYMENTS
    print(f"targets: gaps ≤ {INTERVAL + 1} s, ≤ 1 worker busy -> {'PASS' if ok else 'FAIL'}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
