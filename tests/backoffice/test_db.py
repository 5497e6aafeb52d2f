import time
from datetime import UTC, datetime

import pytest

from backoffice.core.db import insert_rows
from catalog.models import Product
from tests import factories


def test_insert_rows_roundtrip_with_defaults_and_hostile_text():
    brand = factories.brand()
    seen = datetime(2026, 3, 1, 10, 30, tzinfo=UTC)
    name = "Кабель \"USB\" <&> 'q' 😀 \\ %s %(x)s"
    rows = [
        {"article": "1", "sku": "AS1", "name": name, "brand_id": brand.pk, "first_seen": seen},
        {"article": "2", "sku": "AS2", "name": "Plain", "price1": 1500, "quantity": 7},
    ]

    assert insert_rows(Product, rows) == 2

    first = Product.objects.get(article="1")
    assert first.name == name
    assert first.brand == brand
    assert first.first_seen == seen
    assert first.kaspi_enabled is True  # model default
    assert first.price1 is None  # null default
    assert first.full_name == ""  # blank text default
    assert first.updated_at is not None  # auto_now filled
    second = Product.objects.get(article="2")
    assert (second.price1, second.quantity) == (1500, 7)


def test_insert_rows_in_batches():
    rows = [{"article": str(n), "sku": f"AS{n}", "name": f"P{n}"} for n in range(25)]
    assert insert_rows(Product, rows, batch_size=10) == 25
    assert Product.objects.count() == 25


@pytest.mark.django_db(transaction=True)
def test_a_table_grown_from_empty_gets_fresh_planner_statistics():
    """refresh_statistics ANALYZEs a table once its changed rows reach the rows it had at
    the last ANALYZE: after a first import of 2,000 brands, not again right after."""
    from django.db import connection

    from backoffice.core.db import refresh_statistics
    from catalog.models import Brand

    if connection.vendor != "postgresql":
        insert_rows(Brand, [{"name": f"B{i}"} for i in range(2000)])
        assert refresh_statistics(Brand) == []  # SQLite plans without such statistics
        return
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {Brand._meta.db_table}")  # known empty
    insert_rows(Brand, [{"name": f"B{i}"} for i in range(2000)])
    due = []
    for _ in range(30):  # the server's activity counters arrive within about a second
        due = refresh_statistics(Brand, floor=1000)
        if due:
            break
        time.sleep(0.1)
    assert due == [Brand._meta.db_table]
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples FROM pg_class WHERE relname = %s", [Brand._meta.db_table])
        assert cursor.fetchone()[0] == 2000  # the planner now knows the table's size
    assert refresh_statistics(Brand, floor=1000) == []  # nothing changed since
