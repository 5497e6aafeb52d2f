"""Benchmark: the market-read budget planner on a simulated clock (no waiting, no HTTP).

5,000 linked cards in 3 cities = 15,000 (card, city) pairs; the top 500 cards (on sale, with
competitors) in the home city are "hot". Reads are paced at KASPI_OFFERS_MIN_INTERVAL
(2 s = 1,800 calls an hour); the kaspi_market schedule runs every
KASPI_MARKET_INTERVAL_MINUTES with at most KASPI_MARKET_BATCH reads, each run choosing with
catalog.services.market.plan_reads. After a day of warm-up (the first pass over 15,000
pairs takes over 8 hours), the second day is sampled every 10 minutes.

Prints calls per hour used vs the setting's capacity, the p95 age of the hot 500 (target
≤ 60 min) and of all 15,000 pairs (target ≤ 24 h), and the worst age seen.
Usage: python bench/market_budget.py [cards] [cities] [hot]
"""

import os
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "backoffice.settings_test")
os.environ.setdefault("DATABASE_URL", "sqlite://:memory:")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402

from catalog.services.market import PlanItem, age_percentiles, plan_reads  # noqa: E402

CARDS = int(sys.argv[1]) if len(sys.argv) > 1 else 5_000
CITIES = int(sys.argv[2]) if len(sys.argv) > 2 else 3
HOT = int(sys.argv[3]) if len(sys.argv) > 3 else 500


def main() -> None:
    interval = settings.KASPI_OFFERS_MIN_INTERVAL
    run_every = timedelta(minutes=settings.KASPI_MARKET_INTERVAL_MINUTES)
    per_run = min(settings.KASPI_MARKET_BATCH, int(run_every.total_seconds() // interval))
    capacity = 3600 / interval
    items = [
        PlanItem((card, city), None, hot=(city == 0 and card < HOT))
        for card in range(CARDS)
        for city in range(CITIES)
    ]
    start = datetime(2026, 1, 1, tzinfo=UTC)
    now, end, sample_from = start, start + timedelta(days=2), start + timedelta(days=1)
    calls_measured = 0
    hot_ages, all_ages, worst = [], [], 0.0
    next_sample = sample_from
    wall = time.perf_counter()
    while now < end:
        plan = plan_reads(items, now, limit=per_run)
        for i, item in enumerate(plan):
            item.read_at = now + timedelta(seconds=i * interval)
        if now >= sample_from:
            calls_measured += len(plan)
        run_end = now + run_every
        while next_sample < run_end and next_sample < end:
            if next_sample >= sample_from:
                for item in items:
                    if item.read_at is None or item.read_at > next_sample:
                        continue
                    age = (next_sample - item.read_at).total_seconds() / 60
                    all_ages.append(age)
                    worst = max(worst, age)
                    if item.hot:
                        hot_ages.append(age)
            next_sample += timedelta(minutes=10)
        now = run_end
    hours = (end - sample_from).total_seconds() / 3600
    calls_per_hour = calls_measured / hours
    hot, every = age_percentiles(hot_ages), age_percentiles(all_ages)
    print(f"pairs: {len(items):,} ({CARDS:,} cards x {CITIES} cities), hot: {HOT} home-city cards")
    print(
        f"pacing {interval:g} s -> capacity {capacity:,.0f} calls/h; one run every "
        f"{run_every.total_seconds() / 60:g} min reads <= {per_run}"
    )
    print(
        f"calls per hour used: {calls_per_hour:,.0f} ({calls_per_hour / capacity:.0%} of capacity)"
    )
    print(
        f"hot 500 home city: p50 {hot['p50']:.0f} min, p95 {hot['p95']:.0f} min "
        f"(target <= 60 min: {'ok' if hot['p95'] <= 60 else 'MISSED'}, "
        f"ratio {hot['p95'] / 60:.2f})"
    )
    print(
        f"all pairs: p50 {every['p50'] / 60:.1f} h, p95 {every['p95'] / 60:.1f} h, worst "
        f"{worst / 60:.1f} h (target p95 <= 24 h: {'ok' if every['p95'] <= 1440 else 'MISSED'}, "
        f"ratio {every['p95'] / 1440:.2f})"
    )
    print(f"simulated 48 h in {time.perf_counter() - wall:.1f} s")


if __name__ == "__main__":
    main()
