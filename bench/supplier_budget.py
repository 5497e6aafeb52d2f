"""Benchmark: the supplier budget at 10x the catalog, on a simulated clock (no real waiting).

A simulated Al-Style with 70,000 products (20,000 of them on sale on Kaspi) answers 403 to
any call within 5 s of the previous one. The real client, shared rate limiter, planner
(catalog/services/budget.py) and sync services (catalog/services/sync.py) run against it
through `responses`; time advances only when the limiter sleeps (and 0.2 s per answer).
The schedules tick as configured (catalog every 30 min, stock every 10 min) on ONE worker,
so a stock run waits behind a long listing run (pessimistic). 0.2% of the products change
price every simulated hour. The catalog starts as synced two days ago, never checked since.

Prints the calls per hour the default schedules would ask for without the planner, the
calls sent in the busiest hour vs what is allowed (must be ≤), the p50/p95 age of stock
and price for products on sale (target p95 ≤ 60 min) and for the rest, sampled every
10 minutes after a 2-hour warm-up, and the longest run vs Q_TIMEOUT.
Usage: python bench/supplier_budget.py [products] [on_sale] [hours]
"""

import math
import re
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _setup  # noqa: E402  (puts the project root on sys.path)

from tests.fakes.alstyle_budget import SimSupplier  # noqa: E402

N = int(sys.argv[1]) if len(sys.argv) > 1 else 70_000
ON_SALE = int(sys.argv[2]) if len(sys.argv) > 2 else 20_000
HOURS = float(sys.argv[3]) if len(sys.argv) > 3 else 8.0
WARM_UP_HOURS = 2.0
START = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)
FIRST = 100000


def catalog_rows(n: int) -> dict[str, dict]:
    """The simulated Al-Style catalog: n raw elements, articles FIRST, FIRST + 1 …"""
    return {
        str(FIRST + i): {
            "article": FIRST + i,
            "article_pn": f"PN-{i}",
            "name": f"Товар {i}",
            "full_name": f"Товар {i}, полное имя",
            "category": 10,
            "brand": "Demo",
            "price1": 1000 + i % 5000,
            "price2": 1200 + i % 5000,
            "quantity": [0, 3, 12, ">50"][i % 4],
            "isnew": 0,
        }
        for i in range(n)
    }


class _Counts:
    """Stands in for the SyncRun the offer upsert counts on."""

    def count(self, key, n=1) -> None:
        pass


def seed(supplier: SimSupplier) -> None:
    """The catalog as synced two days ago, written through the sync's own offer upsert
    (same data, hashes as the sync computes them), then 20,000 put on sale."""
    from unittest import mock

    from catalog.clients.records import parse_element
    from catalog.models import (
        Brand,
        CatalogListing,
        Category,
        Product,
        Supplier,
        SupplierCheck,
        SupplierOffer,
    )
    from catalog.services import offers

    SupplierCheck.objects.all().delete()
    CatalogListing.objects.all().delete()
    Product.objects.update(offer=None, pinned_offer=None)
    SupplierOffer.objects.all().delete()
    Product.objects.all().delete()
    category, _ = Category.objects.update_or_create(
        supplier_id=10, defaults={"name": "Электроника", "left": 1, "right": 2}
    )
    brand, _ = Brand.objects.update_or_create(name="Demo", defaults={"supplier_id": "g"})
    lookups = offers.Lookups(category_map={10: category.pk}, brand_map={"Demo": brand.pk})
    then = START - timedelta(days=2)
    records = [(parse_element(raw), raw) for raw in supplier.items.values()]
    with mock.patch("django.utils.timezone.now", return_value=then):
        for at in range(0, len(records), 2000):
            offers.upsert_offers(
                Supplier.alstyle(), records[at : at + 2000], run=_Counts(), lookups=lookups
            )
    on_sale = list(supplier.items)[:ON_SALE]
    Product.objects.update(first_seen=then, kaspi_enabled=False)
    for at in range(0, len(on_sale), 2000):
        Product.objects.filter(article__in=on_sale[at : at + 2000]).update(kaspi_enabled=True)


def main() -> int:
    _setup.setup()
    import responses
    from django.conf import settings
    from django.utils import timezone

    from backoffice.models import JobLock, SyncRun
    from catalog.services import budget, feed
    from catalog.services.sync import run_catalog_sync, run_stock_sync

    settings.ALSTYLE_MIN_INTERVAL = 5.0
    settings.ALSTYLE_SLOT_MARGIN = 0.5
    settings.ALSTYLE_RATE_LIMIT_PAUSE = 10.0
    # The Supplier row's rate budget wins over the setting (issue 18).
    from catalog.models import Supplier

    Supplier.alstyle()
    Supplier.objects.filter(code=Supplier.ALSTYLE).update(min_interval=5.0)
    feed.request_feed_build = lambda **kw: (None, False)  # the budget alone
    SyncRun.objects.all().delete()
    JobLock.objects.all().delete()
    supplier = SimSupplier(
        catalog_rows(N),
        interval=settings.ALSTYLE_MIN_INTERVAL,
        start=START,
        category=(10, "Электроника"),
    )
    wall = time.perf_counter()
    seed(supplier)
    seeded = time.perf_counter() - wall
    timezone.now = supplier.now  # every service reads the simulated clock

    key = f"bench-{time.time_ns()}"  # a fresh slot clock: a previous run's is in its time

    def client():
        return supplier.client(key=key, margin=None)  # the margin from the settings

    plan = budget.make_plan()
    pages = math.ceil(N / settings.ALSTYLE_PAGE_SIZE)
    stock_calls = math.ceil(N / settings.ALSTYLE_STOCK_CHUNK)
    unplanned = pages * 60 / settings.CATALOG_SYNC_INTERVAL_MINUTES + stock_calls * 60 / (
        settings.STOCK_SYNC_INTERVAL_MINUTES
    )
    end, warm = HOURS * 3600, WARM_UP_HOURS * 3600
    next_catalog = next_stock = 0.0
    next_sample, next_change = warm, 3600.0
    samples, longest = [], 0.0
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.add_callback(
            responses.GET,
            re.compile(re.escape(settings.ALSTYLE_API_URL) + ".*"),
            callback=supplier,
        )
        while supplier.t < end:
            for kind in ("catalog", "stock"):
                due = next_catalog if kind == "catalog" else next_stock
                if supplier.t < due:
                    continue
                began = supplier.t
                runner = run_catalog_sync if kind == "catalog" else run_stock_sync
                runner(triggered_by="schedule", client=client(), clock=supplier.clock)
                longest = max(longest, supplier.t - began)
                if kind == "catalog":
                    next_catalog += settings.CATALOG_SYNC_INTERVAL_MINUTES * 60
                else:
                    next_stock += settings.STOCK_SYNC_INTERVAL_MINUTES * 60
            if supplier.t >= next_change:
                supplier.change(0.002, int(next_change))
                next_change += 3600
            if supplier.t >= next_sample:
                samples.append(budget.freshness())
                next_sample += 600
            supplier.t = max(supplier.t, min(next_catalog, next_stock, next_sample, next_change))

    from catalog.models import CatalogListing

    capacity = plan.capacity
    busiest = supplier.calls_in_window(3600, since=warm)
    mean = len([t for t, _m, _q in supplier.calls if t >= warm]) / ((end - warm) / 3600)
    listings = CatalogListing.objects.filter(phase="done").order_by("started_at")
    done = [(x.finished_at - x.started_at).total_seconds() / 60 for x in listings]

    def fig(part, key, agg):
        values = [s[part][key] for s in samples]
        return math.inf if any(v is None for v in values) else agg(values)

    on50, on95 = fig("on_sale", "p50", max), fig("on_sale", "p95", max)
    rest50, rest95 = fig("rest", "p50", max), fig("rest", "p95", max)
    print(
        f"catalog {N:,} products, {ON_SALE:,} on sale; simulated {HOURS:g} h "
        f"(sampled after {WARM_UP_HOURS:g} h), one worker; wall {time.perf_counter() - wall:.0f} s"
        f" (seeding {seeded:.0f} s)"
    )
    print(
        f"capacity {capacity} calls/h (1 per {budget.spacing():g} s); reserve {plan.reserve}; "
        f"sync budget {plan.sync_budget}: catalog {plan.catalog_per_hour}/h, "
        f"stock {plan.stock_per_hour}/h (hot {plan.hot:,} need {plan.hot_calls_per_hour}/h)"
    )
    print(f"without the planner the default schedules ask for {unplanned:,.0f} calls/h")
    print(
        f"calls sent: busiest hour {busiest}, mean {mean:.0f}/h; allowed ≤ {plan.sync_budget} "
        f"(capacity {capacity}, reserve kept); 403 answers: {supplier.refused}"
    )
    print(
        f"full listings completed: {len(done)}, minutes each: "
        + (", ".join(f"{m:.0f}" for m in done) or "-")
    )
    print(
        f"longest run {longest / 60:.1f} min (SUPPLIER_RUN_MAX_SECONDS "
        f"{settings.SUPPLIER_RUN_MAX_SECONDS} s, Q_TIMEOUT {settings.Q_TIMEOUT} s)"
    )
    print(
        f"stock and price age, on sale: worst sampled p50 {on50:.0f} min, p95 {on95:.0f} min "
        f"(target p95 ≤ 60 min); the rest: worst p50 {rest50:.0f} min, p95 {rest95:.0f} min"
    )
    ok = (
        busiest <= plan.sync_budget
        and supplier.refused == 0
        and on95 <= 60
        and longest < settings.Q_TIMEOUT
    )
    print(
        f"targets: busiest hour {busiest} ≤ {plan.sync_budget}, 0 × 403, on-sale p95 "
        f"{on95:.0f} ≤ 60 min, longest run < Q_TIMEOUT -> {'PASS' if ok else 'FAIL'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
