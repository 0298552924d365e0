"""The pre-migration snapshot: per legacy table its row count, a content checksum and row digests.

Taken inside `migrate` after the legacy tables are adopted and before any of them changes,
set-wise in SQL. A row's digest is the MD5 of its legacy columns as a JSON array (JSON renders
timestamps, floats and text the same way whatever the session's settings), stored as a uuid;
the table checksum is the sum of the digests' first 64 bits, so it does not depend on row order.
validate_tenancy recomputes both from the live tables to prove nothing was lost or changed.
"""

from __future__ import annotations

from psycopg import sql

from routing.legacy import BILLING_COLUMN_NAMES, LEGACY_COLUMNS, LEGACY_TABLES


def rows_table(table: str) -> str:
    """The table holding (id, digest) for every row `table` had at snapshot time."""
    return f"tenancy_snapshot_rows_{table}"


def digest_expression(columns: list[str], alias: str = "t") -> sql.Composable:
    """SQL for one row's digest over `columns` of the row aliased `alias`."""
    values = sql.SQL(", ").join(sql.Identifier(alias, column) for column in columns)
    return sql.SQL("md5(jsonb_build_array({})::text)::uuid").format(values)


def checksum_expression(digest: sql.Composable) -> sql.Composable:
    """SQL aggregating digests into an order-independent checksum (a numeric)."""
    return sql.SQL(
        "coalesce(sum(('x' || left(replace(({})::text, '-', ''), 16))::bit(64)::bigint), 0)"
    ).format(digest)


def legacy_columns_present(cursor, table: str) -> list[str]:
    """The contract's columns of `table`, plus the billing columns on customers when they exist."""
    columns = [column.name for column in LEGACY_COLUMNS[table]]
    if table == "customers":
        cursor.execute(
            "SELECT count(*) FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND table_name = 'customers' "
            "AND column_name = ANY(%s)",
            [list(BILLING_COLUMN_NAMES)],
        )
        if cursor.fetchone()[0]:
            columns += BILLING_COLUMN_NAMES
    return columns


def take_snapshot(cursor) -> dict[str, int]:
    """Record the snapshot once; a second call (a re-run migration) keeps the first one."""
    cursor.execute("SELECT count(*) FROM tenancy_legacy_snapshot")
    if cursor.fetchone()[0]:
        return {}
    counts = {}
    for table in LEGACY_TABLES:
        columns = legacy_columns_present(cursor, table)
        target = sql.Identifier(rows_table(table))
        cursor.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(target))
        # Filled first, indexed after: one sort instead of millions of index insertions.
        cursor.execute(
            sql.SQL("CREATE TABLE {} AS SELECT t.id, {} AS digest FROM {} AS t").format(
                target, digest_expression(columns), sql.Identifier(table)
            )
        )
        cursor.execute(sql.SQL("ALTER TABLE {} ADD PRIMARY KEY (id)").format(target))
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
