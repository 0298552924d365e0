"""The pre-migration snapshot: per legacy table its row count, a content checksum and row digests.

Taken inside `migrate` after the legacy tables are adopted and before any of them changes,
set-wise in SQL. A row's digest is a 64-bit hash (hashtextextended, the function behind hash
partitioning) of its legacy columns' row text, stored as a bigint; the table checksum is the
sum of the digests, so it does not depend on row order. validate_tenancy recomputes both from
the live tables to prove nothing was lost or changed.

Why this hash: at 5,000,000 route stops it is the cost the snapshot adds to `migrate`, and it
is about 2.4 times cheaper than MD5 over a JSON array (bench/migrate_at_scale.py); 64 bits
are plenty to notice a changed row. The row text depends on a few session settings, which
pin_digest_settings() fixes for both the snapshot and the validator.
"""

from __future__ import annotations

from psycopg import sql

from routing.legacy import LEGACY_TABLES, has_billing_columns, legacy_column_names


def rows_table(table: str) -> str:
    """The table holding (id, digest) for every row `table` had at snapshot time."""
    return f"tenancy_snapshot_rows_{table}"


DIGEST_SETTINGS = {
    # How timestamps, times and floats print in row text; fixed so that a session (or a
    # database) configured otherwise cannot make an unchanged row look changed.
    "DateStyle": "ISO, YMD",
    "IntervalStyle": "postgres",
    "extra_float_digits": "1",
}


def pin_digest_settings(cursor) -> None:
    """Fix, for the current transaction, the settings a row's text depends on."""
    for name, value in DIGEST_SETTINGS.items():
        cursor.execute("SELECT set_config(%s, %s, true)", [name, value])


def digest_expression(columns: list[str], alias: str = "t") -> sql.Composable:
    """SQL for one row's digest (a bigint) over `columns` of the row aliased `alias`."""
    values = sql.SQL(", ").join(sql.Identifier(alias, column) for column in columns)
    return sql.SQL("hashtextextended(ROW({})::text, 0)").format(values)


def checksum_expression(digest: sql.Composable) -> sql.Composable:
    """SQL aggregating digests into an order-independent checksum (a numeric)."""
    return sql.SQL("coalesce(sum({}), 0)").format(digest)


def legacy_columns_present(cursor, table: str) -> list[str]:
    """The contract's columns of `table`, plus the billing columns on customers when they exist."""
    return legacy_column_names(table, billing=table == "customers" and has_billing_columns(cursor))


def take_snapshot(cursor) -> dict[str, int]:
    """Record the snapshot once; a second call (a re-run migration) keeps the first one."""
    cursor.execute("SELECT count(*) FROM tenancy_legacy_snapshot")
    if cursor.fetchone()[0]:
        return {}
    counts = {}
    pin_digest_settings(cursor)
    for table in LEGACY_TABLES:
        columns = legacy_columns_present(cursor, table)
        target = sql.Identifier(rows_table(table))
        cursor.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(target))
        # No index: validate_tenancy joins these tables whole (hash joins), so an index
        # would only add a sort of every row to `migrate`.
        cursor.execute(
            sql.SQL("CREATE TABLE {} AS SELECT t.id, {} AS digest FROM {} AS t").format(
                target, digest_expression(columns), sql.Identifier(table)
            )
        )
        cursor.execute(sql.SQL("ANALYZE {}").format(target))
        cursor.execute(
            sql.SQL("SELECT count(*), {} FROM {}").format(
                checksum_expression(sql.Identifier("digest")), target
            )
        )
        row_count, checksum = cursor.fetchone()
        cursor.execute(
            "INSERT INTO tenancy_legacy_snapshot"
            " (table_name, row_count, checksum, columns, taken_at)"
            " VALUES (%s, %s, %s, %s::jsonb, now())",
            [table, row_count, checksum, _json(columns)],
        )
        counts[table] = row_count
    return counts


def drop_snapshot(cursor) -> None:
    for table in LEGACY_TABLES:
        cursor.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(rows_table(table))))
    cursor.execute("DELETE FROM tenancy_legacy_snapshot")


def _json(value) -> str:
    import json

    return json.dumps(value)
