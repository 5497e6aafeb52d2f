"""Benchmark: a 50,000-offer YML price file through the real supplier sync into PostgreSQL.

The file is written to a temporary directory and served by a local http.server (the real
download client, streamed to disk), then read by the real streamed parser, hashed and
bulk-written through the offer upsert, with matching (every offer is new and matches
nothing, so 50k products are created: the heaviest first run). Targets: first run ≤ 15 s
and ≤ 100 MB RSS growth; the unchanged second run writes 0 offer and product rows.

    .venv/bin/python bench/sync_pricefile.py [N]   (DATABASE_URL: default .../bench)
"""

import sys
import tempfile
import threading
import time
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _setup  # noqa: E402

N = int(sys.argv[1]) if len(sys.argv) > 1 else 50_000
PORT = 0  # any free port on 127.0.0.1


def reset_peak_rss() -> None:
    """Reset the kernel's high-water mark of this process (Linux: clear_refs 5), so the
    peak measured is the run's, not the set-up's (deleting the last run's rows)."""
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")


def peak_rss_since_reset_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # no access log between the figures
        pass


def write_yml(path: Path, n: int) -> None:
    with path.open("w", encoding="utf-8") as out:
        out.write('<?xml version="1.0" encoding="UTF-8"?>\n<yml_catalog date="2026-12-01">')
        out.write("<shop><name>Bench</name><categories>")
        for k in range(300):
            out.write(f'<category id="{k}">Категория {k}</category>')
        out.write("</categories><offers>")
        for i in range(n):
            out.write(
                f'<offer id="Y{i:06d}" available="{"true" if i % 7 else "false"}">'
                f"<name>Товар {i} &amp; &lt;demo&gt; «{i % 97}»</name>"
                f"<price>{1000 + (i * 37) % 500000}</price><currencyId>KZT</currencyId>"
                f"<categoryId>{i % 300}</categoryId><vendor>Brand {i % 150}</vendor>"
                f"<vendorCode>YPN-{i:06d}</vendorCode><barcode>{4600000000000 + i}</barcode>"
                f"<count>{i % 40}</count></offer>\n"
            )
        out.write("</offers></shop></yml_catalog>\n")


def main():
    _setup.setup()
    from django.db import connection

    from backoffice.models import JobLock, SyncRun
    from catalog.models import PriceRule, Product, Supplier, SupplierOffer
    from catalog.services import feed
    from catalog.services.supplier_sync import run_supplier_sync

    feed.request_feed_build = lambda **kw: (None, False)  # measure the sync alone
    SupplierOffer.objects.all().delete()
    Product.objects.all().delete()
    SyncRun.objects.all().delete()
    JobLock.objects.all().delete()
    PriceRule.objects.all().delete()
    PriceRule.objects.create(name="15%", markup_percent=15, rounding=10)

    directory = Path(tempfile.mkdtemp(prefix="bench-pricefile-"))
    path = directory / "price.xml"
    started = time.perf_counter()
    write_yml(path, N)
    print(
        f"YML file: {N} offers, {path.stat().st_size / 1e6:.1f} MB, written in "
        f"{time.perf_counter() - started:.1f} s"
    )
    handler = partial(QuietHandler, directory=str(directory))
    server = ThreadingHTTPServer(("127.0.0.1", PORT), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/price.xml"
    Supplier.objects.filter(code="bench").delete()
    supplier = Supplier.objects.create(
        code="bench", name="Bench YML", kind="pricefile", format="yml", url=url, sku_prefix="BY"
    )

    results = []
    try:
        for label in ("first run (all new)", "second run (unchanged)"):
            offers = _setup.WriteCounter("catalog_supplieroffer")
            products = _setup.WriteCounter("catalog_product")
            rss_before = _setup.current_rss_mb()
            reset_peak_rss()
            started = time.perf_counter()
            with connection.execute_wrapper(offers), connection.execute_wrapper(products):
                run = run_supplier_sync(supplier)
            elapsed = time.perf_counter() - started
            # The run's own peak (high-water mark reset before it) against the resident
            # size before it: the growth the run caused at its worst moment.
            growth = peak_rss_since_reset_mb() - rss_before
            writes = offers.writes + products.writes
            results.append((label, elapsed, writes, growth, run))
            print(
                f"{label}: {elapsed:.2f} s, status={run.status}, counts={run.counts}, "
                f"offer+product write statements={writes}, RSS growth {growth:.0f} MB"
            )
    finally:
        server.shutdown()
        path.unlink()
        directory.rmdir()
    print(
        f"offers in DB: {SupplierOffer.objects.filter(supplier=supplier).count()}, "
        f"products: {Product.objects.count()}; peak RSS of the process: {_setup.rss_mb():.0f} MB"
    )
    first, second = results
    ok = first[1] <= 15 and first[3] <= 100 and second[2] == 0
    print(
        f"targets: first ≤ 15 s and ≤ 100 MB RSS growth: {first[1]:.2f} s / {first[3]:.0f} MB; "
        f"second 0 writes: {second[2]} ({second[1]:.2f} s) -> {'PASS' if ok else 'FAIL'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
