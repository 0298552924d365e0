"""Plan step M018 (ours, after the plan's M001-M017): unique keys (organization_id, id).

drivers, customers and routes get a UNIQUE constraint on (organization_id, id), the target the
composite foreign keys of routing.0010 and billing.0006 need: a row can then only reference a
row of its own organization. route_stops gets none: nothing references it.

Locks, per table, one table at a time: CREATE UNIQUE INDEX CONCURRENTLY takes SHARE UPDATE
EXCLUSIVE (reads and writes go on; its time grows with the table: a few seconds for 1,000,000
customers), then ADD CONSTRAINT ... UNIQUE USING INDEX takes ACCESS EXCLUSIVE for milliseconds
(catalog-only; 50 ms lock_timeout, retried). That is fine with the old application writing:
its inserts get the default organization and a new id, which the index accepts; no row is
rewritten and no write waits longer than the lock_timeout.

atomic = False (CONCURRENTLY cannot run in a transaction); idempotent: a valid index or an
existing constraint is kept, an invalid index left by an interrupted build is rebuilt.
Reverse: DROP CONSTRAINT (catalog-only, short lock), which drops the index.
"""

from django.db import migrations

from tenants.conversion.operations import AddUniqueKeyConcurrently

KEYED = ("drivers", "customers", "routes")


def unique_key_name(table: str) -> str:
    return f"uq_{table}_organization_and_id"


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("routing", "0008_drivers_geocoding"),
    ]

    # Database only, like the composite foreign keys: Django's state keeps the plain
    # ForeignKey fields, and model validation has no use for a key that includes the primary key.
    operations = [
        AddUniqueKeyConcurrently(table, unique_key_name(table), ("organization_id", "id"))
        for table in KEYED
    ]
