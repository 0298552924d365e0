"""Geocoding metadata on customers and drivers (plan M015-M016): columns, backfill, operations.

Which provider geocoded an address (geocoding_provider), who (geocoded_by, a user) and when
(geocoded_at, `timestamp` holding UTC like the other legacy columns). The operations change
the busy legacy tables the way tenants.conversion.operations does: catalog-only DDL under a short,
retried lock_timeout; the foreign key added NOT VALID and validated without blocking writers;
the backfill in keyset batches, each its own transaction; indexes built CONCURRENTLY.
"""

from __future__ import annotations

from collections.abc import Callable

from django.db import transaction
from psycopg import sql

from tenants.conversion.operations import (
    AddForeignKeyNotValid,
    CreateIndexConcurrently,
    DatabaseOnlyOperation,
    run_ddl_with_short_lock,
)

# The plan's backfill: rows with coordinates were geocoded by OpenStreetMap when created.
BACKFILL_PROVIDER = "openstreetmap"
COLUMNS = ("geocoding_provider", "geocoded_by", "geocoded_at")
# Per table with geocoding metadata (M015 customers, M016 drivers): its coordinate columns.
COORDINATES = {
    "customers": ("latitude", "longitude"),
    "drivers": ("start_latitude", "start_longitude"),
}


def has_coordinates(table: str, alias: str | None = None) -> sql.Composable:
    """The backfill's condition on a row of `table` (read as `alias`, if given)."""
    latitude, longitude = (
        sql.Identifier(alias, column) if alias else sql.Identifier(column)
        for column in COORDINATES[table]
    )
    return sql.SQL("{} IS NOT NULL AND {} IS NOT NULL").format(latitude, longitude)


def backfilled_values(table: str, alias: str) -> list[tuple[str, sql.Composable]]:
    """(column, value) the backfill gives a legacy row of `table` read as `alias`, for rows
    written with their metadata at once (import_organization) instead of backfilled after."""
    condition = has_coordinates(table, alias)
    return [
        (
            "geocoding_provider",
            sql.SQL("CASE WHEN {} THEN {} END").format(condition, sql.Literal(BACKFILL_PROVIDER)),
        ),
        (
            "geocoded_at",
            sql.SQL("CASE WHEN {} THEN {} END").format(
                condition, sql.Identifier(alias, "created_at")
            ),
        ),
    ]


class AddGeocodingColumns(DatabaseOnlyOperation):
    """geocoding_provider varchar(50), geocoded_by uuid, geocoded_at timestamp: all nullable
    without a default, so catalog-only (ACCESS EXCLUSIVE for milliseconds, no rewrite).
    Reverse: DROP COLUMN, catalog-only as well."""

    def __init__(self, table: str):
        self.table = table

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        run_ddl_with_short_lock(
            schema_editor.connection,
            sql.SQL(
                "ALTER TABLE {} ADD COLUMN IF NOT EXISTS geocoding_provider varchar(50), "
                "ADD COLUMN IF NOT EXISTS geocoded_by uuid, "
                "ADD COLUMN IF NOT EXISTS geocoded_at timestamp"
            ).format(sql.Identifier(self.table)),
        )

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        drops = sql.SQL(", ").join(
            sql.SQL("DROP COLUMN IF EXISTS {}").format(sql.Identifier(column)) for column in COLUMNS
        )
        run_ddl_with_short_lock(
            schema_editor.connection,
            sql.SQL("ALTER TABLE {} {}").format(sql.Identifier(self.table), drops),
        )

    def describe(self):
        return f"Add geocoding_provider, geocoded_by, geocoded_at to {self.table}"


def backfill_geocoding_metadata(
    connection,
    table: str,
    *,
    pages_per_batch: int = 1000,
    progress: Callable[[str], None] | None = None,
) -> int:
    """Rows with coordinates and no metadata yet: provider openstreetmap, geocoded_at = created_at.

    Batches are ranges of the table's physical pages (TID range scans, PostgreSQL 14+), each
    in its own short transaction: a batch reads and rewrites adjacent pages instead of rows
    scattered over the whole table by random UUID keys, which at 1,000,000 customers is the
    difference between seconds and minutes. A plain UPDATE takes FOR NO KEY UPDATE row locks,
    which do not block the old application's foreign-key checks (FOR KEY SHARE) the way
    SELECT ... FOR UPDATE would. Updated rows' new versions may land on pages past the first
    count; the loop follows the table's end until it stops moving, and skips them (their
    metadata is set). Only rows whose metadata is still NULL are touched, so a re-run (or a
    run after the new application has recorded metadata) changes nothing it should not.
    """
    update_batch = sql.SQL(
        "UPDATE {table} SET geocoding_provider = %s, geocoded_at = created_at "
        "WHERE ctid >= %s::tid AND ctid < %s::tid AND {has_coordinates} "
        "AND geocoding_provider IS NULL AND geocoded_at IS NULL"
    ).format(table=sql.Identifier(table), has_coordinates=has_coordinates(table))
    updated, first_page = 0, 0
    while first_page < _page_count(connection, table):
        last_page = first_page + pages_per_batch
        with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
            cursor.execute(
                update_batch, [BACKFILL_PROVIDER, f"({first_page},0)", f"({last_page},0)"]
            )
            updated += cursor.rowcount
        first_page = last_page
        if progress and updated:
            progress(f"  {table}: geocoding metadata backfilled for {updated} rows")
    return updated


def _page_count(connection, table: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_relation_size(%s::regclass) / current_setting('block_size')::int", [table]
        )
        return cursor.fetchone()[0]


def geocoding_metadata_operations(*, model_name: str, table: str, related_name: str) -> list:
    """Plan steps M015 (customers) / M016 (drivers) for one table, for a non-atomic migration."""
    from django.conf import settings
    from django.db import migrations, models

    import routing.fields

    provider_index = f"idx_{table}_geocoding_provider"
    geocoded_by_index = f"idx_{table}_geocoded_by"

    def backfill(apps, schema_editor):
        backfill_geocoding_metadata(schema_editor.connection, table, progress=print)

    return [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                AddGeocodingColumns(table),
                # ON DELETE SET NULL: deleting a user keeps the rows they geocoded.
                AddForeignKeyNotValid(
                    table,
                    f"fk_{table}_geocoded_by",
                    "geocoded_by",
                    "users (id)",
                    "ON DELETE SET NULL DEFERRABLE INITIALLY DEFERRED",
                ),
                # Reverse: nothing to undo, the columns go with AddGeocodingColumns.
                migrations.RunPython(backfill, migrations.RunPython.noop, elidable=False),
                CreateIndexConcurrently(table, provider_index, "(geocoding_provider)"),
                # Deleting a user sets geocoded_by NULL: without this (small, partial) index
                # every user deletion would scan the whole table.
                CreateIndexConcurrently(
                    table, geocoded_by_index, "(geocoded_by) WHERE geocoded_by IS NOT NULL"
                ),
            ],
            state_operations=[
                migrations.AddField(
                    model_name=model_name,
                    name="geocoding_provider",
                    field=models.CharField(
                        blank=True,
                        choices=[
                            ("openstreetmap", "Openstreetmap"),
                            ("google_maps", "Google Maps"),
                        ],
                        max_length=50,
                        null=True,
                    ),
                ),
                migrations.AddField(
                    model_name=model_name,
                    name="geocoded_by",
                    field=models.ForeignKey(
                        blank=True,
                        db_column="geocoded_by",
                        db_index=False,
                        null=True,
                        on_delete=models.SET_NULL,
                        related_name=related_name,
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                migrations.AddField(
                    model_name=model_name,
                    name="geocoded_at",
                    field=routing.fields.UTCDateTimeField(blank=True, null=True),
                ),
                migrations.AddIndex(
                    model_name=model_name,
                    index=models.Index(fields=["geocoding_provider"], name=provider_index),
                ),
                migrations.AddIndex(
                    model_name=model_name,
                    index=models.Index(
                        fields=["geocoded_by"],
                        name=geocoded_by_index,
                        condition=models.Q(geocoded_by__isnull=False),
                    ),
                ),
            ],
        )
    ]
