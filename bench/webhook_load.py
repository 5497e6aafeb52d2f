"""Benchmark: the payment webhook under local load, in a real server process on 127.0.0.1.

1,000 signed deliveries of 100 distinct transactions (each sent 10 times, shuffled) from
6 client processes to gunicorn with 3 sync workers (both share the machine's 2 cores);
prints accepted notifications per second and latency percentiles, then checks that exactly
100 events and 100 state changes were recorded.
Targets: ≥ 200 accepted/s; exactly 100 events and 100 changes.
"""

import hashlib
import hmac
import json
import multiprocessing
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _setup  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SECRET = "bench-webhook-secret-0123456789"
DISTINCT, REPEATS, CLIENTS, WORKERS = (
    100,
    10,
    int(os.environ.get("CLIENTS", 6)),
    int(os.environ.get("WORKERS", 3)),
)


def main():
    os.environ["PAYMENTS_WEBHOOK_SECRET"] = SECRET
    _setup.setup()
    import requests

    from payments.models import Payment, PaymentEvent, WebhookDelivery
    from payments.services.create import create_payment

    Payment.objects.all().delete()
    WebhookDelivery.objects.all().delete()
    from orders.models import Order

    Order.objects.filter(channel="direct").delete()
    payments = [create_payment(amount=1000 + n) for n in range(DISTINCT)]
    bodies = []
    for n, payment in enumerate(payments):
        body = json.dumps(
            {
                "orderId": payment.reference,
                "amount": payment.amount,
                "status": "completed",
                "transactionId": f"BENCH-{n}",
            }
        ).encode()
        signature = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        bodies.extend([(body, signature)] * REPEATS)
    random.Random(7).shuffle(bodies)

    port = "8766"
    # Production-like: gunicorn, DEBUG off, persistent database connections.
    env = {
        **os.environ,
        "DEBUG": "0",
        "DJANGO_SETTINGS_MODULE": "backoffice.settings",
        "SECRET_KEY": "bench-" + "x" * 50,
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "0",
        "PAYMENTS_ALLOW_DEMO": "1",
        "LOG_FILE": "",
        "LOG_LEVEL": "WARNING",
        "PAYMENTS_WEBHOOK_SECRET": SECRET,
    }
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "backoffice.wsgi",
            "-b",
            f"127.0.0.1:{port}",
            "-w",
            str(WORKERS),
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/api/kaspi-webhook"
    try:
        for _ in range(100):
            try:
                requests.get(f"http://127.0.0.1:{port}/health", timeout=1)
                break
            except requests.RequestException:
                time.sleep(0.1)
        chunks = [(url, bodies[i::CLIENTS]) for i in range(CLIENTS)]
        # Client processes, not threads: one GIL would make the client the bottleneck.
        with multiprocessing.get_context("fork").Pool(CLIENTS) as pool:
            started = time.perf_counter()
            results = pool.map(send_all, chunks)
            elapsed = time.perf_counter() - started
        latencies = [lat for part in results for lat, _code in part]
        codes = [code for part in results for _lat, code in part]
    finally:
        server.terminate()
        server.wait(timeout=10)

    accepted = codes.count(200)
    latencies.sort()
    p50 = statistics.median(latencies) * 1000
    p99 = latencies[int(len(latencies) * 0.99) - 1] * 1000
    events = PaymentEvent.objects.filter(source="webhook").count()
    changes = (
        PaymentEvent.objects.filter(source="webhook")
        .exclude(status_before=models_F("status_after"))
        .count()
    )
    paid = Payment.objects.filter(status="paid").count()
    rate = accepted / elapsed
    print(
        f"deliveries: {len(codes)} in {elapsed:.2f} s, accepted (200): {accepted}, "
        f"other: {sorted(set(codes) - {200})}"
    )
    print(
        f"rate: {rate:.0f} accepted/s; latency p50 {p50:.1f} ms, p99 {p99:.1f} ms "
        f"(gunicorn, {WORKERS} workers, {CLIENTS} client processes)"
    )
    print(
        f"events: {events}, state changes: {changes}, payments paid: {paid}, "
        f"deliveries stored: {WebhookDelivery.objects.count()}"
    )
    ok = rate >= 200 and events == DISTINCT and changes == DISTINCT and paid == DISTINCT
    print(f"targets: ≥ 200/s and exactly {DISTINCT} events/changes -> {'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


def send_all(job):
    import requests

    url, items = job
    session = requests.Session()
    out = []
    for body, signature in items:
        started = time.perf_counter()
        response = session.post(
            url,
            data=body,
            timeout=10,
            headers={"Content-Type": "application/json", "X-Signature": signature},
        )
        out.append((time.perf_counter() - started, response.status_code))
    return out


def models_F(name):  # noqa: N802
    from django.db.models import F

    return F(name)


if __name__ == "__main__":
    sys.exit(main())
