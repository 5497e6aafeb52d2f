"""Benchmark: 10,000 Kaspi orders over 90 days from a local fake Kaspi server (real HTTP
on 127.0.0.1) imported into PostgreSQL. Targets: first import ≤ 90 s with entries fetched
once per new order; an unchanged re-run ≤ 20 s with 0 order/entry writes.
"""

import base64
import json
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _setup  # noqa: E402

N = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
END = datetime(2026, 11, 1, tzinfo=UTC)
START = END - timedelta(days=90)


def make_orders():
    span = (END - START).total_seconds() * 1000
    start_ms = int(START.timestamp() * 1000)
    orders = []
    for i in range(N):
        code = str(500000000 + i)
        created = start_ms + int(span * i / N)
        orders.append(
            {
                "type": "orders",
                "id": base64.b64encode(code.encode()).decode(),
                "attributes": {
                    "code": code,
                    "totalPrice": 10000.0 + i,
                    "paymentMode": "PREPAID",
                    "creationDate": created,
                    "state": "KASPI_DELIVERY",
                    "status": "COMPLETED" if i % 3 else "ACCEPTED_BY_MERCHANT",
                    "deliveryMode": "DELIVERY_LOCAL",
                    "isKaspiDelivery": True,
                    "deliveryCost": 0.0,
                    "customer": {"name": f"Покупатель {i}", "cellPhone": f"70{i:08d}"},
                    "deliveryAddress": {"formattedAddress": f"Алматы, улица {i % 300}"},
                },
                "relationships": {},
            }
        )
    return orders


ORDERS = make_orders()
BY_ID = {o["id"]: o for o in ORDERS}
COUNTS = {"list": 0, "entries": 0}


class FakeKaspi(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def _json(self, body):
        data = json.dumps(body, ensure_ascii=False).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/vnd.api+json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):  # noqa: N802
        if "Mozilla" not in self.headers.get("User-Agent", ""):
            time.sleep(5)  # Kaspi hangs without a browser agent: make it visible
        url = urlparse(self.path)
        if url.path.endswith("/entries"):
            COUNTS["entries"] += 1
            order = BY_ID[url.path.split("/")[-2]]
            code = int(order["attributes"]["code"])
            n = code % 3 + 1
            return self._json(
                {
                    "data": [
                        {
                            "type": "orderentries",
                            "id": f"E{order['id']}{k}",
                            "attributes": {
                                "quantity": 1,
                                "basePrice": 5000.0,
                                "totalPrice": 5000.0,
                                "entryNumber": k,
                                "offer": {
                                    "code": f"AS{100000 + (code + k) % 1000}",
                                    "name": "Товар",
                                },
                            },
                        }
                        for k in range(n)
                    ]
                }
            )
        COUNTS["list"] += 1
        q = {k: v[0] for k, v in parse_qs(url.query).items()}
        ge = int(q["filter[orders][creationDate][$ge]"])
        le = int(q["filter[orders][creationDate][$le]"])
        if le - ge > 14 * 86_400_000:
            self.send_response(400)
            self.end_headers()
            return None
        number, size = int(q["page[number]"]), int(q["page[size]"])
        hits = [o for o in ORDERS if ge <= o["attributes"]["creationDate"] <= le]
        pages = max(1, -(-len(hits) // size))
        return self._json(
            {
                "data": hits[number * size : (number + 1) * size],
                "meta": {"pageCount": pages, "totalCount": len(hits)},
            }
        )


def main():
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeKaspi)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    import os

    os.environ["KASPI_SHOP_API_URL"] = f"http://127.0.0.1:{server.server_port}/shop/api/v2"
    _setup.setup()
    from django.conf import settings
    from django.db import connection

    settings.KASPI_SHOP_API_URL = os.environ["KASPI_SHOP_API_URL"]
    from backoffice.core.db import insert_rows
    from backoffice.models import JobLock, SyncRun
    from catalog.models import Product
    from orders.models import Order
    from orders.services.imports import run_order_import
    from payments.models import Payment

    Payment.objects.all().delete()  # payments protect their orders; the bench DB is ours
    Order.objects.all().delete()
    SyncRun.objects.filter(kind="orders").delete()
    JobLock.objects.all().delete()
    if not Product.objects.filter(sku="AS100000").exists():
        Product.objects.filter(sku__startswith="AS1").delete()
        insert_rows(
            Product,
            [
                {"article": str(100000 + i), "sku": f"AS{100000 + i}", "name": f"P{i}"}
                for i in range(1000)
            ],
        )
    failed = False
    for label in ("first import (90 days)", "re-run (no changes)"):
        COUNTS.update(list=0, entries=0)
        counter = _setup.WriteCounter('"orders_order"')
        entry_counter = _setup.WriteCounter('"orders_orderentry"')
        started = time.perf_counter()
        with connection.execute_wrapper(counter), connection.execute_wrapper(entry_counter):
            run = run_order_import(since=START, until=END)
        elapsed = time.perf_counter() - started
        print(
            f"{label}: {elapsed:.2f} s, status={run.status}, counts={run.counts}, "
            f"requests: {COUNTS['list']} list pages + {COUNTS['entries']} entries, "
            f"write statements: orders={counter.writes} entries={entry_counter.writes}"
        )
        if run.status != "ok":
            failed = True
            print("  error:", run.error)
    print(f"orders in DB: {Order.objects.count()}")
    server.shutdown()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
