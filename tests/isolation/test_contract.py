"""`contract_tenancy`: the old application's inserts keep working until it runs, fail after it,
and work again after `--undo`; row level security is FORCEd by it, not by `migrate`."""

import pytest

from tenants.rls import LEGACY_TENANT_TABLES
from tests.isolation.conftest import TENANT_MODELS

pytestmark = pytest.mark.cli

TABLES = sorted(model._meta.db_table for model in TENANT_MODELS)

# What the old application does: an insert that names no organization.
LEGACY_INSERT = (
    "INSERT INTO drivers (id, name, start_location_address, end_location_address, "
    "working_hours_start, working_hours_end, max_customers_per_day, is_active, created_at, "
    "updated_at, color) VALUES (gen_random_uuid(), %s, 'a', 'b', '08:00', '17:00', 10, true, "
    "now(), now(), '#123456') RETURNING organization_id"
)


def state(db) -> dict:
    return {
        "forced": dict(
            db.sql(
                "SELECT relname, relforcerowsecurity FROM pg_class WHERE relname = ANY(%s)",
                [TABLES],
            )
        ),
        "enabled": dict(
            db.sql("SELECT relname, relrowsecurity FROM pg_class WHERE relname = ANY(%s)", [TABLES])
        ),
        "defaults": {
            table
            for (table,) in db.sql(
                "SELECT c.relname FROM pg_attrdef d JOIN pg_class c ON c.oid = d.adrelid "
                "JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = d.adnum "
                "WHERE a.attname = 'organization_id' AND c.relname = ANY(%s)",
                [TABLES],
            )
        },
    }


def test_contract_forces_row_level_security_and_drops_the_legacy_defaults(legacy_db):
    legacy_db.manage("migrate")
    demo = legacy_db.value("SELECT id FROM organizations WHERE slug = 'demo'")

    expanded = state(legacy_db)
    assert all(expanded["enabled"].values()) and len(expanded["enabled"]) == len(TABLES)
    assert not any(expanded["forced"].values()), "migrate ENABLEs only"
    assert expanded["defaults"] == set(LEGACY_TENANT_TABLES)
    assert legacy_db.value(LEGACY_INSERT, ["during expand"]) == demo

    result = legacy_db.manage("contract_tenancy")

    assert "Contracted" in result.stdout
    contracted = state(legacy_db)
    assert all(contracted["forced"].values())
    assert contracted["defaults"] == set()
    with pytest.raises(Exception, match="organization_id"):
        legacy_db.value(LEGACY_INSERT, ["after contract"])

    again = legacy_db.manage("contract_tenancy")
    assert "Nothing to do" in again.stdout

    undone = legacy_db.manage("contract_tenancy", "--undo")

    assert "Undone" in undone.stdout
    assert state(legacy_db) == expanded
    assert legacy_db.value(LEGACY_INSERT, ["after undo"]) == demo


def test_rolling_back_after_contract_gives_the_old_application_its_tables_back(legacy_db):
    before = legacy_db.legacy_contents()
    legacy_db.manage("migrate")
    legacy_db.manage("contract_tenancy")

    legacy_db.manage("rollback_tenancy", "--noinput")

    assert legacy_db.legacy_contents() == before
    assert (
        legacy_db.sql(
            "SELECT relname FROM pg_class WHERE relname = ANY(%s) AND "
            "(relrowsecurity OR relforcerowsecurity)",
            [TABLES],
        )
        == []
    )
    assert legacy_db.value("SELECT count(*) FROM pg_policy") == 0


def test_contract_before_migrate_says_to_migrate_first(legacy_db):
    legacy_db.manage("migrate", "routing", "0001_legacy_schema")

    result = legacy_db.manage("contract_tenancy", check=False)

    assert result.returncode == 1
    assert "run `python manage.py migrate` first" in result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
