"""Adoption of existing legacy databases by `migrate` (routing.0001_legacy_schema)."""

import pytest

from routing.legacy import LEGACY_TABLES
from tests.support import run_manage

pytestmark = pytest.mark.cli

ADOPTED = ("routing", "0001_legacy_schema")


def adopt(db):
    return db.manage("migrate", "routing", "0001_legacy_schema")


def test_adopts_sample_with_billing_columns_extra_indexes_and_comments(legacy_db):
    before_rows = legacy_db.legacy_contents()
    before_schema = legacy_db.schema_fingerprint()
    assert legacy_db.value("SELECT count(*) FROM customers WHERE service_rate IS NOT NULL") > 0
    assert legacy_db.value("SELECT to_regclass('ix_routes_created_at') IS NOT NULL")

    result = adopt(legacy_db)

    assert "Adopted the legacy tables" in result.stdout
    assert "with the billing columns" in result.stdout
    assert ADOPTED in legacy_db.applied_migrations()
    assert legacy_db.legacy_contents() == before_rows
    legacy_tables_after = [row for row in legacy_db.schema_fingerprint() if _is_legacy(row)]
    assert legacy_tables_after == [row for row in before_schema if _is_legacy(row)]
    assert legacy_db.value(
        "SELECT col_description('customers'::regclass, "
        "(SELECT attnum FROM pg_attribute WHERE attrelid = 'customers'::regclass "
        "AND attname = 'display_name'))"
    ), "column comments survive adoption"


def test_adopts_schema_without_billing_columns(scratch_db):
    scratch_db.load_legacy_schema(billing_columns=False)
    scratch_db.script(
        "INSERT INTO drivers VALUES ('00000000-0000-4000-8000-000000000001', 'Ana', NULL, NULL, "
        "'1 Main St', NULL, NULL, '1 Main St', NULL, NULL, '08:00', '17:00', 20, true, "
        "E'tab\\there', '2025-01-01 08:00', '2025-01-01 08:00', '#123456')"
    )
    before = scratch_db.legacy_contents()

    result = adopt(scratch_db)

    assert "without the billing columns" in result.stdout
    assert scratch_db.legacy_contents() == before
    assert ADOPTED in scratch_db.applied_migrations()


@pytest.mark.parametrize(
    ("damage", "expected_line"),
    [
        ("ALTER TABLE customers DROP COLUMN display_name", "customers.display_name: expected"),
        (
            "ALTER TABLE routes ALTER COLUMN total_customers TYPE bigint",
            "routes.total_customers: expected integer NULL, found bigint NULL",
        ),
        ("DROP TABLE route_stops", "route_stops: expected table present, found no such table"),
        (
            "ALTER TABLE drivers ALTER COLUMN notes SET NOT NULL",
            "drivers.notes: expected character varying(1000) NULL, found "
            "character varying(1000) NOT NULL",
        ),
        ("ALTER TABLE customers DROP COLUMN payment_brand", "customers.payment_brand: expected"),
        (
            "ALTER TABLE drivers ADD COLUMN nickname text",
            "drivers.nickname: expected no such column",
        ),
    ],
    ids=[
        "missing-column",
        "changed-type",
        "missing-table",
        "nullability",
        "partial-billing",
        "extra",
    ],
)
def test_mismatching_schema_is_refused_and_nothing_changes(scratch_db, damage, expected_line):
    scratch_db.load_legacy_schema()
    scratch_db.script(damage)
    before_schema = scratch_db.schema_fingerprint()
    before_tables = scratch_db.tables()

    result = scratch_db.manage("migrate", check=False)

    assert result.returncode == 1
    assert "the legacy schema does not match" in result.stderr
    assert expected_line in result.stderr
    assert "Traceback" not in result.stderr
    assert scratch_db.tables() == before_tables, "not even django_migrations may be created"
    assert scratch_db.schema_fingerprint() == before_schema


def test_every_difference_is_listed(scratch_db):
    scratch_db.load_legacy_schema()
    scratch_db.script(
        "ALTER TABLE customers DROP COLUMN email; ALTER TABLE drivers ALTER COLUMN color TYPE text"
    )

    result = scratch_db.manage("migrate", check=False)

    assert result.returncode == 1
    assert "(2 differences)" in result.stderr
    assert "customers.email" in result.stderr
    assert "drivers.color: expected character varying(7) NOT NULL, found text NOT NULL" in (
        result.stderr
    )


def test_partial_legacy_schema_is_refused(scratch_db):
    scratch_db.load_legacy_schema()
    scratch_db.script("DROP TABLE route_stops; DROP TABLE routes")

    result = scratch_db.manage("migrate", check=False)

    assert result.returncode == 1
    assert "routes: expected table present" in result.stderr
    assert "route_stops: expected table present" in result.stderr
    assert "django_migrations" not in scratch_db.tables()


def test_second_run_is_a_no_op(legacy_db):
    adopt(legacy_db)
    fingerprint = legacy_db.schema_fingerprint()
    rows = legacy_db.legacy_contents()

    result = adopt(legacy_db)

    assert "No migrations to apply" in result.stdout
    assert legacy_db.schema_fingerprint() == fingerprint
    assert legacy_db.legacy_contents() == rows


def test_empty_database_gets_the_legacy_tables(scratch_db, legacy_db):
    adopt(scratch_db)

    assert set(LEGACY_TABLES) <= scratch_db.tables()
    created = [row for row in scratch_db.schema_fingerprint() if _is_legacy(row)]
    # The created schema is the production one (less the extras production grew by hand).
    expected = [
        row
        for row in legacy_db.schema_fingerprint()
        if _is_legacy(row) and row[1] != "ix_routes_created_at"
    ]
    assert created == expected


def test_sample_loads_with_the_command_and_adopts(scratch_db):
    loaded = scratch_db.manage("load_legacy_sample")
    assert "Loaded the sample legacy database" in loaded.stdout

    adopt(scratch_db)

    assert scratch_db.value("SELECT count(*) FROM customers") >= 150
    assert scratch_db.value("SELECT count(*) FROM customers WHERE name IS NULL") > 0
    assert scratch_db.value("SELECT count(*) FROM customers WHERE latitude IS NULL") > 0


def test_sample_refuses_a_database_that_is_not_empty(legacy_db):
    result = legacy_db.manage("load_legacy_sample", check=False)

    assert result.returncode == 1
    assert "the database is not empty" in result.stderr


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("postgresql://postgres@127.0.0.1:1/nowhere", "cannot connect to PostgreSQL database"),
        ("mysql://root@127.0.0.1/app", "DATABASE_URL must be a PostgreSQL URI"),
        ("postgresql://postgres@127.0.0.1:5432", "DATABASE_URL names no database"),
    ],
    ids=["unreachable", "not-postgres", "no-database-name"],
)
def test_bad_database_url_gives_one_line(url, message):
    result = run_manage("migrate", database_url=url, check=False)

    assert result.returncode == 2
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith(f"error: {message}")
    assert "DATABASE_URL" in result.stderr


def _is_legacy(row) -> bool:
    relation = row[1].split(".")[-1]
    return relation in LEGACY_TABLES or any(relation.startswith(f"ix_{t}") for t in LEGACY_TABLES)


def test_a_database_error_in_a_command_is_one_line_not_a_traceback(scratch_db):
    result = scratch_db.manage(
        "create_organization",
        "--name",
        "X",
        "--slug",
        "x",
        "--owner-email",
        "x@example.com",
        check=False,
    )

    assert result.returncode == 1
    assert result.stderr.startswith("error: the database refused the command (")
    assert result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.stderr
