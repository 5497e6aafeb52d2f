"""Shared set-up for benchmarks: Django on a dedicated PostgreSQL database, migrated."""

import os
import resource
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/bench")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "backoffice.settings_test")


def create_database(url: str) -> None:
    import psycopg2

    name = url.rsplit("/", 1)[1]
    if not url.startswith("postgres"):
        return
    base = url.rsplit("/", 1)[0] + "/postgres"
    conn = psycopg2.connect(base)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
        if not cur.fetchone():
            cur.execute(f'CREATE DATABASE "{name}"')
    conn.close()


def setup():
    create_database(os.environ["DATABASE_URL"])
    import django

    django.setup()
    import logging

    logging.disable(logging.WARNING)
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    call_command("createcachetable", verbosity=0)


def insert_products(n: int, name, extra=None) -> None:
    """Delete every product and price-list build, then insert `n` products fast
    (backoffice.core.db.insert_rows): article 100000+i, SKU AS100000+i, 50 brands, stock
    i % 20 (none: not available), dealer prices 1000+i / 1200+i, Kaspi price 1500+i;
    `name(i)` is product i's name, `extra(i)` (a dict) any other column."""
    from django.utils import timezone

    from backoffice.core.db import insert_rows
    from catalog.models import Brand, FeedBuild, Product

    Product.objects.all().delete()
    FeedBuild.objects.all().delete()
    brands = [Brand.objects.get_or_create(name=f"Brand {b}")[0] for b in range(50)]
    now = timezone.now()
    rows = []
    for i in range(n):
        rows.append(
            {
                "article": str(100000 + i),
                "sku": f"AS{100000 + i}",
                "name": name(i),
                "brand_id": brands[i % 50].pk,
                "price1": 1000 + i,
                "price2": 1200 + i,
                "quantity": i % 20,
                "available": i % 20 > 0,
                "kaspi_price": 1500 + i,
                "first_seen": now,
                "last_seen": now,
                **(extra(i) if extra else {}),
            }
        )
        if len(rows) == 5000:
            insert_rows(Product, rows)
            rows = []
    insert_rows(Product, rows)
    vacuum_analyze(Product)


def vacuum_analyze(model) -> None:
    """PostgreSQL: the table as autovacuum keeps a live one (no dead rows of the previous
    run, planner statistics), so a run measures the code, not the bench's own churn."""
    from django.db import connection

    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"VACUUM ANALYZE {connection.ops.quote_name(model._meta.db_table)}")


def rss_mb() -> float:
    """Peak resident set size of this process so far, in MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


class WriteCounter:
    """Counts INSERT/UPDATE/DELETE statements on some tables (a connection execute wrapper):
    `writes` in all, `by_table` per table."""

    def __init__(self, *tables: str):
        self.tables = tables
        self.by_table = {table.strip('"'): 0 for table in tables}
        self.writes = 0

    def __call__(self, execute, sql, params, many, context):
        head = sql.lstrip()[:6].upper()
        if head in {"INSERT", "UPDATE", "DELETE"}:
            target = sql.split(None, 3)[2 if head != "UPDATE" else 1].strip('"')
            if target in self.by_table:
                self.by_table[target] += 1
                self.writes += 1
        return execute(sql, params, many, context)
