"""Fast bulk insert, and fresh planner statistics after one (`refresh_statistics`).

`bulk_create` prepares every value of every row through each field's generic machinery
(about 250 µs a row for our 35-column Product), and psycopg2 then adapts every parameter
client-side: a 50,000-product first sync spent most of its time there, while PostgreSQL
itself inserts such rows in a few µs each. `insert_rows` therefore:

- on PostgreSQL, sends each batch as ONE JSON parameter expanded server-side by
  `json_populate_recordset` (types converted by PostgreSQL from the column types);
- elsewhere (SQLite), sends a multi-row `INSERT … VALUES` converting only the values that
  need it (JSON, datetimes, decimals) with Django's own field methods.

Rows are dicts of attribute names (`category_id`, not `category`); a missing key takes the
field's default; the primary key is sent only when the rows carry it (`allocate_ids`).
No model instances are made (~100 µs each for a 35-field model). It
returns the number of rows, not primary keys, and sends no signals.
"""

import itertools
import json
from decimal import Decimal

from django.db import connections, router, transaction
from django.utils import timezone

_PREPARED_TYPES = {"JSONField", "DateTimeField", "DateField", "DecimalField", "TimeField"}


def insert_rows(model, rows: list[dict], *, using: str | None = None, batch_size=2000) -> int:
    if not rows:
        return 0
    connection = connections[using or router.db_for_write(model)]
    # The primary key only when the rows bring it (ids allocated beforehand).
    given_pk = model._meta.pk.attname in rows[0]
    fields = [f for f in model._meta.concrete_fields if given_pk or not f.primary_key]
    # Defaults as Django would give them ("" for blank text, None for null); a column
    # with neither that a row leaves out fails in the database as NOT NULL.
    now = timezone.now()
    template = {
        field.attname: now
        if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False)
        else field.get_default()
        for field in fields
    }
    full = [{**template, **row} for row in rows]
    if connection.vendor == "postgresql":
        _insert_json(connection, model, fields, full, batch_size)
    else:
        _insert_values(connection, model, fields, full)
    return len(rows)


def _json_value(value):
    """json.dumps fallback for the types it does not know (called only for those)."""
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"insert_rows cannot send {type(value).__name__}")


def _insert_json(connection, model, fields, rows, batch_size) -> None:
    table = connection.ops.quote_name(model._meta.db_table)
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    # Only quoted model identifiers are formatted in; the rows travel as one parameter.
    sql = (
        f"INSERT INTO {table} ({columns}) "  # noqa: S608
        f"SELECT {columns} FROM json_populate_recordset(NULL::{table}, %s)"
    )
    renamed = [(f.attname, f.column) for f in fields if f.attname != f.column]
    with connection.cursor() as cursor:
        for start in range(0, len(rows), batch_size):
            batch = []
            for row in rows[start : start + batch_size]:
                row = dict(row)
                for attname, column in renamed:
                    row[column] = row.pop(attname)
                batch.append(row)
            cursor.execute(sql, [json.dumps(batch, ensure_ascii=False, default=_json_value)])


def _insert_values(connection, model, fields, rows) -> None:
    prepared = [
        (index, field)
        for index, field in enumerate(fields)
        if field.get_internal_type() in _PREPARED_TYPES
    ]
    table = connection.ops.quote_name(model._meta.db_table)
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    row_sql = "(" + ", ".join(["%s"] * len(fields)) + ")"
    batch = max(1, connection.ops.bulk_batch_size(fields, rows))
    attnames = [field.attname for field in fields]
    with connection.cursor() as cursor:
        for start in range(0, len(rows), batch):
            chunk = rows[start : start + batch]
            params = []
            for row in chunk:
                values = [row[name] for name in attnames]
                for index, field in prepared:
                    values[index] = field.get_db_prep_save(values[index], connection)
                params.extend(values)
            # Only quoted model identifiers and %s placeholders are formatted in; every
            # value travels as a parameter.
            values = ", ".join([row_sql] * len(chunk))
            sql = f"INSERT INTO {table} ({columns}) VALUES {values}"  # noqa: S608
            cursor.execute(sql, params)


def allocate_ids(model, count: int, *, using: str | None = None) -> list[int] | None:
    """`count` primary keys taken from the table's sequence (PostgreSQL), so related rows
    can point at rows not inserted yet; None elsewhere (the caller links them after)."""
    connection = connections[using or router.db_for_write(model)]
    if connection.vendor != "postgresql" or count <= 0:
        return None
    table = model._meta.db_table
    column = model._meta.pk.column
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
            [table, column, count],
        )
        return [row[0] for row in cursor.fetchall()]


def refresh_statistics(*models, using: str | None = None, floor: int = 1000) -> list[str]:
    """PostgreSQL: ANALYZE each model's table once the rows changed since its last ANALYZE
    reach the rows it then had (and at least `floor`); returns the tables analysed.

    The planner works from table statistics that autovacuum refreshes only some time after
    a table grew. A first import that grows a table from empty meanwhile gets plans made
    for an empty table: a supplier page's lookup of 250 articles became a bitmap scan of
    all 50,000 offers (14 ms) instead of an index probe (0.4 ms). Called after bulk writes;
    the doubling threshold makes it a handful of ANALYZEs for a whole first import and
    none for a routine sync. Other databases: nothing to do."""
    connection = connections[using or router.db_for_write(models[0])]
    if connection.vendor != "postgresql":
        return []
    if connection.in_atomic_block:
        # Inside a transaction its own rows are not counted yet and ANALYZE would hold its
        # lock until the commit: run once it is committed.
        transaction.on_commit(
            lambda: refresh_statistics(*models, using=connection.alias, floor=floor),
            using=connection.alias,
        )
        return []
    tables = [model._meta.db_table for model in models]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT s.relname FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid "
            "WHERE s.relname = ANY(%s) AND s.n_mod_since_analyze >= GREATEST(%s, c.reltuples)",
            [tables, floor],
        )
        due = [row[0] for row in cursor.fetchall()]
        for table in due:
            cursor.execute(f"ANALYZE {connection.ops.quote_name(table)}")
    return due


def update_rows(
    model, rows: list[dict], columns: list[str], *, using: str | None = None, batch_size=5000
) -> None:
    """UPDATE many rows by id, each with its own values, in a few statements.

    `bulk_update` builds one CASE per column over the batch (quadratic; 50,000 SKUs took
    over a minute). On PostgreSQL each batch travels as one JSON parameter expanded by
    json_populate_recordset (as backoffice.core.db.insert_rows does); elsewhere executemany.
    """
    connection = connections[using or router.db_for_write(model)]
    quote = connection.ops.quote_name
    table = quote(model._meta.db_table)
    fields = [model._meta.get_field(name) for name in columns]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            sets = ", ".join(f"{quote(f.column)} = v.{quote(f.column)}" for f in fields)
            # Only quoted model identifiers are formatted in; rows travel as one parameter.
            sql = (
                f"UPDATE {table} AS t SET {sets} "  # noqa: S608
                f"FROM json_populate_recordset(NULL::{table}, %s) AS v WHERE t.id = v.id"
            )
            renamed = [(f.attname, f.column) for f in fields if f.attname != f.column]
            rows = iter(rows)
            while batch := list(itertools.islice(rows, batch_size)):
                for row in batch:
                    for attname, column in renamed:
                        row[column] = row.pop(attname)
                cursor.execute(sql, [json.dumps(batch, ensure_ascii=False, default=str)])
        else:
            sets = ", ".join(f"{quote(f.column)} = %s" for f in fields)
            sql = f"UPDATE {table} SET {sets} WHERE id = %s"  # noqa: S608
            cursor.executemany(
                sql,
                (
                    [f.get_db_prep_save(row[f.attname], connection) for f in fields] + [row["id"]]
                    for row in rows
                ),
            )


def update_objects(model, objects, fields: list[str], *, using: str | None = None) -> int:
    """`bulk_update(objects, fields)` through `update_rows`: each object's `fields` written
    by id in a few statements instead of one CASE per column (quadratic in the batch; a
    reprice of 9,000 products spent 13.6 of 14.2 s there). Returns how many objects."""
    objects = list(objects)
    if not objects:
        return 0
    attnames = [model._meta.get_field(name).attname for name in fields]
    rows = [{"id": obj.pk, **{name: getattr(obj, name) for name in attnames}} for obj in objects]
    update_rows(model, rows, attnames, using=using)
    return len(objects)
