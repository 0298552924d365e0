"""Ready to distribute by organization (Citus): after migrate, the only keys among tenant tables
without organization_id are the primary keys (id) and those of the reference tables."""

import pytest

from tenants.conversion.distribution import keys_without_organization
from tenants.conversion.validation import TENANT_TABLES

pytestmark = pytest.mark.cli

DISTRIBUTED = sorted(set(TENANT_TABLES) - {"service_plans", "organization_subscriptions"})


def keys(db):
    with db.connect() as connection, connection.cursor() as cursor:
        return keys_without_organization(cursor)


def test_after_migrate_only_primary_keys_remain_to_change(migrated_db):
    found = keys(migrated_db)

    to_change = [key for key in found if key.accepted is None]
    assert sorted((key.table, key.kind, key.definition) for key in to_change) == [
        (table, "primary key", "PRIMARY KEY (id)") for table in DISTRIBUTED
    ]
    accepted = {(key.table, key.kind) for key in found if key.accepted}
    assert accepted == {
        ("service_plans", "primary key"),
        ("organization_subscriptions", "primary key"),
        ("organization_subscriptions", "unique constraint"),
        ("customer_service_agreements", "foreign key"),  # -> service_plans, a reference table
    }


def test_a_key_without_organization_is_listed(migrated_db):
    migrated_db.script(
        "CREATE UNIQUE INDEX ix_routes_driver_day ON routes (driver_id, service_day);"
        "ALTER TABLE route_stops ADD CONSTRAINT route_stops_route_id_fkey "
        "FOREIGN KEY (route_id) REFERENCES routes (id)"
    )

    found = {key.name: key for key in keys(migrated_db)}

    assert found["ix_routes_driver_day"].kind == "unique index"
    assert found["route_stops_route_id_fkey"].kind == "foreign key"
    assert found["route_stops_route_id_fkey"].accepted is None


def test_preflight_lists_them_in_one_finding(migrated_db):
    result = migrated_db.manage("tenancy_preflight", check=False)

    assert result.returncode == 0, result.stdout + result.stderr
    assert (
        f"INFO  distribution    {len(DISTRIBUTED) + 4} keys among tenant tables lack "
        f"organization_id: "
        f"{len(DISTRIBUTED)} to change before distributing with Citus (primary key), 4 accepted"
        in result.stdout
    )
    assert "OK    statistics" in result.stdout
