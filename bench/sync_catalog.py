"""Benchmark: 50,000 fake Al-Style products through the real sync service into PostgreSQL.

The supplier is faked at the HTTP layer (`responses`), so the client, parsing, hashing and
bulk writes all run for real; the 5 s rate limit is set to 0 (in production the network,
at one call per 5 s, is the limit: 200 pages ≈ 17 minutes). Since issue 18 every page
writes two tables: the supplier offers and the products they supply (the snapshot).
Targets: first run ≤ 20 s, unchanged second run ≤ 5 s with 0 rows written to either
table. Prints peak memory.
"""

import json
import sys
import time
from pathlib import Path
from urllib.parse import parse_qs, urlparse

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _setup  # noqa: E402

N = int(sys.argv[1]) if len(sys.argv) > 1 else 50_000
PAGE = 250


def element(i: int) -> dict:
    return {
        "article": 100000 + i,
        "article_pn": f"PN-{i:06d}/X",
        "name": f"Товар {i} & <demo> «{i % 97}»",
        "full_name": f"Товар {i}, полное описание модели {i}",
        "category": 10 + i % 300,
        "brand": f"Brand {i % 150}",
        "price1": 1000 + (i * 37) % 500000,
        "price2": 1200 + (i * 37) % 600000,
        "quantity": [0, 3, 12, ">50", ">100", "<10"][i % 6],
        "isnew": int(i % 50 == 0),
    }


def main():
    _setup.setup()
    import responses
    from django.db import connection

    from backoffice.models import JobLock, SyncRun
    from catalog.models import (
        Brand,
        CatalogListing,
        Category,
        PriceRule,
        Product,
        Supplier,
        SupplierCheck,
        SupplierOffer,
    )
    from catalog.services import feed
    from catalog.services.sync import run_catalog_sync

    feed.request_feed_build = lambda **kw: (None, False)  # measure the sync alone
    CatalogListing.objects.all().delete()  # a killed run's cursor would resume mid-listing
    SupplierCheck.objects.all().delete()
    SupplierOffer.objects.all().delete()
    Product.objects.all().delete()
    Supplier.alstyle()
    Supplier.objects.filter(code=Supplier.ALSTYLE).update(min_interval=0)
    if connection.vendor == "postgresql":
        # Repeated runs delete and re-insert 50,000 rows in each table: without a vacuum
        # every index lookup wades through the dead versions of earlier runs.
        with connection.cursor() as cursor:
            for table in ("catalog_supplieroffer", "catalog_product", "catalog_suppliercheck"):
                cursor.execute(f"VACUUM ANALYZE {table}")
    Category.objects.all().delete()
    Brand.objects.all().delete()
    SyncRun.objects.all().delete()
    JobLock.objects.all().delete()
    PriceRule.objects.all().delete()
    PriceRule.objects.create(name="15%", markup_percent=15, rounding=10)

    categories = [
        {"id": 1, "name": "Root", "level": 1, "left": 1, "right": 602},
        *[
            {"id": 10 + k, "name": f"Cat {k}", "level": 2, "left": 2 + 2 * k, "right": 3 + 2 * k}
            for k in range(300)
        ],
    ]
    pages_served = {"n": 0}

    def elements_page(request):
        query = parse_qs(urlparse(request.url).query)
        offset, limit = int(query["offset"][0]), int(query["limit"][0])
        items = [element(i) for i in range(offset, min(offset + limit, N))]
        pages_served["n"] += 1
        body = {
            "elements": items,
            "pagination": {
                "totalCount": N,
                "totalPages": (N + limit - 1) // limit,
                "currentPage": offset // limit + 1,
                "limit": limit,
                "offset": offset,
            },
        }
        return 200, {}, json.dumps(body, ensure_ascii=False)

    api = "https://api.al-style.kz/api/"
    results = []
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.get(api + "categories", json=categories)
        rsps.get(api + "brands", json={"data": [{"name": f"Brand {b}"} for b in range(150)]})
        rsps.add_callback(responses.GET, api + "elements-pagination", callback=elements_page)
        for label in ("first run (all new)", "second run (unchanged)"):
            counter = _setup.WriteCounter("catalog_product", "catalog_supplieroffer")
            rss_before = _setup.current_rss_mb()
            started = time.perf_counter()
            with connection.execute_wrapper(counter):
                run = run_catalog_sync()
            elapsed = time.perf_counter() - started
            results.append((label, elapsed, counter.writes, run))
            print(
                f"{label}: {elapsed:.2f} s, status={run.status}, counts={run.counts}, "
                f"write statements: {counter.by_table}, "
                f"RSS now {_setup.current_rss_mb():.0f} MB (was {rss_before:.0f} MB)"
            )
    print(
        f"products in DB: {Product.objects.count()}, offers: {SupplierOffer.objects.count()}, "
        f"pages served: {pages_served['n']}"
    )
    print(f"peak RSS of the process: {_setup.rss_mb():.0f} MB")
    first, second = results
    ok = first[1] <= 20 and second[1] <= 5 and second[2] == 0
    print(
        f"targets: first ≤ 20 s: {first[1]:.2f} s; second ≤ 5 s with 0 writes: "
        f"{second[1]:.2f} s / {second[2]} writes -> {'PASS' if ok else 'FAIL'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
