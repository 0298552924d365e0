"""tenancy_preflight: the state of the database, what must be fixed first, and the lock plan."""

import psycopg
import pytest

from tests.support import run_manage

pytestmark = pytest.mark.cli


def preflight(db):
    return db.manage("tenancy_preflight", check=False)


def finding(result, topic: str) -> str:
    """The line of the finding about `topic`."""
    for text in result.stdout.splitlines():
        if text[6:].startswith(topic):
            return text
    raise AssertionError(f"no finding about {topic}:\n{result.stdout}")


def test_legacy_database_is_ready_and_every_migration_is_listed_with_its_lock(legacy_db):
    result = preflight(legacy_db)

    assert result.returncode == 0, result.stdout + result.stderr
    assert finding(result, "connection").startswith("OK")
    assert "PostgreSQL" in finding(result, "connection")
    assert "legacy: the old application's tables (" in finding(result, "database state")
    assert "matches legacy_schema.sql" in finding(result, "legacy schema")
    assert finding(result, "sessions").startswith("OK")
    assert finding(result, "disk").split()[0] in {"OK", "WARN"}
    assert (
        "- routing.0002_customers_organization: ACCESS EXCLUSIVE on customers (does not grow)"
        in result.stdout
    )
    assert (
        "- tenants.0001_legacy_snapshot: ACCESS SHARE on customers, drivers, routes, "
        "route_stops (grows with the table's size)" in result.stdout
    )
    assert "no lock plan recorded" not in result.stdout
    assert "Ready to migrate" in result.stdout


def test_migrated_database_has_nothing_to_apply(migrated_db):
    result = preflight(migrated_db)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "migrated: every migration is applied" in finding(result, "database state")
    assert "none to apply" in finding(result, "migrations")
    assert "Nothing to migrate" in result.stdout


def test_half_migrated_database_names_the_interrupted_migration(legacy_db):
    # A crash inside the non-atomic 0005: its column exists, the migration is not recorded.
    legacy_db.manage("migrate", "routing", "0005_route_stops_organization")
    legacy_db.script(
        "DELETE FROM django_migrations "
        "WHERE app = 'routing' AND name = '0005_route_stops_organization'"
    )

    result = preflight(legacy_db)

    assert result.returncode == 0, result.stdout + result.stderr
    state = finding(result, "database state")
    assert state.startswith("WARN")
    assert "partly migrated" in state
    assert "interrupted in routing.0005_route_stops_organization" in state
    assert (
        "routing.0005_route_stops_organization was interrupted: route_stops.organization_id "
        "exists but the migration is not recorded" in result.stdout
    )
    assert "- routing.0005_route_stops_organization: ACCESS EXCLUSIVE on route_stops" in (
        result.stdout
    )


def test_inconsistent_history_must_be_fixed_first(migrated_db):
    migrated_db.script(
        "DELETE FROM django_migrations "
        "WHERE app = 'routing' AND name = '0002_customers_organization'"
    )

    result = preflight(migrated_db)

    assert result.returncode == 1
    assert "history is inconsistent" in finding(result, "database state")
    assert "fix 1 problem before migrating: database state" in result.stderr


def test_a_session_holding_a_lock_on_customers_must_end_first(legacy_db):
    with psycopg.connect(legacy_db.url, application_name="old-app-report") as session:
        session.execute("LOCK TABLE customers IN ACCESS SHARE MODE")  # opens a transaction
        pid = session.info.backend_pid

        result = preflight(legacy_db)

        session.rollback()

    assert result.returncode == 1, result.stdout + result.stderr
    sessions = finding(result, "sessions")
    assert sessions.startswith("FIX")
    assert f"pid {pid} (old-app-report, postgres@" in result.stdout
    assert "idle in transaction" in result.stdout
    assert "holds AccessShareLock on customers" in result.stdout
    assert f"SELECT pg_terminate_backend({pid})" in result.stdout
    assert result.stderr.count("\n") == 1
    assert "fix 1 problem before migrating: sessions" in result.stderr

    assert preflight(legacy_db).returncode == 0, "ready once the session ended"


def test_a_mismatching_legacy_schema_must_be_fixed_first(legacy_db):
    legacy_db.script("ALTER TABLE customers DROP COLUMN email")

    result = preflight(legacy_db)

    assert result.returncode == 1
    assert finding(result, "legacy schema").startswith("FIX")
    assert "customers.email: expected character varying(255) NULL, found no such column" in (
        result.stdout
    )


def test_preflight_changes_nothing(legacy_db):
    schema, rows = legacy_db.schema_fingerprint(), legacy_db.legacy_contents()
    tables = legacy_db.tables()

    assert preflight(legacy_db).returncode == 0

    assert legacy_db.tables() == tables, "not even django_migrations is created"
    assert legacy_db.schema_fingerprint() == schema
    assert legacy_db.legacy_contents() == rows


def test_unreachable_database_exits_2():
    result = run_manage(
        "tenancy_preflight", database_url="postgresql://postgres@127.0.0.1:1/nowhere", check=False
    )

    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert "cannot connect to PostgreSQL database 'nowhere'" in result.stderr
