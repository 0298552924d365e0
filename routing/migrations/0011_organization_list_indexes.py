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
  filter), (organization_id, customer_id, route_id, sequence, id).

No trigram (pg_trgm) or full-text index for `?search=`: the application role reads these
tables under row level security, and PostgreSQL uses a condition of a query as an index
condition under a policy only when its operator is LEAKPROOF (it would otherwise run on other
organizations' rows before the policy). Only the comparison operators of btree (=, <, >) are;
LIKE, pg_trgm's operators and full-text @@ are not, so such an index would cost every write of
the legacy tables and serve no request. Search reads the organization's rows through these
indexes instead (docs/tenant-isolation.md, "Query plans under row level security").

Locks: CREATE INDEX CONCURRENTLY, one index at a time, SHARE UPDATE EXCLUSIVE on its table
(reads and writes go on; the time grows with the table: one scan per index).

atomic = False (CONCURRENTLY cannot run in a transaction); idempotent: a valid index is kept,
an invalid one left by an interrupted build is dropped and built again. Reverse: DROP INDEX
CONCURRENTLY each (SHARE UPDATE EXCLUSIVE).
"""

from django.db import migrations

from tenants.conversion.operations import CreateIndexConcurrently

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


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("routing", "0010_organization_foreign_keys"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                CreateIndexConcurrently(table, name, definition)
                for table, name, definition in INDEXES
            ],
        ),
    ]
