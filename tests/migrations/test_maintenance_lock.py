"""Before `migrate` changes anything: one maintenance command at a time, bounded waits that name
their blocker, and nothing in the way of what the chain creates (tenants.conversion.advisory,
tenants.conversion.preflight.chain_collisions)."""

import psycopg
import pytest

from tenants.conversion.advisory import LOCK_CLASS

pytestmark = pytest.mark.cli


def error_line(result) -> str:
    """The command's one error line (system check warnings may precede it), no traceback."""
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("CommandError: ")]
    assert len(lines) == 1, result.stderr
    return lines[0]


def hold_maintenance_lock(db, application_name: str) -> psycopg.Connection:
    holder = db.connect()
    holder.execute(f"SET application_name = '{application_name}'")
    holder.execute("SELECT pg_advisory_lock(%s, hashtext(current_database()))", [LOCK_CLASS])
    return holder


def test_a_second_maintenance_command_waits_names_the_holder_and_refuses(legacy_db):
    tables = legacy_db.tables()
    holder = hold_maintenance_lock(legacy_db, "deploy hook")
    try:
        pid = holder.info.backend_pid
        refused = legacy_db.manage("migrate", "--nowait", check=False, timeout=60)
        waited = legacy_db.manage("migrate", "--lock-wait", "1", check=False, timeout=60)
        rollback = legacy_db.manage(
            "rollback_tenancy", "--noinput", "--nowait", check=False, timeout=60
        )
    finally:
        holder.close()

    assert refused.returncode == 1
    assert "holds this database's maintenance lock (--nowait)" in error_line(refused)
    assert f"pid {pid} (deploy hook" in error_line(refused)
    assert waited.returncode == 1
    assert "waiting for the maintenance lock (0 s of at most 1 s" in waited.stdout
    assert f"pid {pid} (deploy hook" in waited.stdout
    assert "(waited 1 s)" in error_line(waited)
    assert rollback.returncode == 1 and "maintenance lock (--nowait)" in error_line(rollback)
    assert legacy_db.tables() == tables, "nothing was changed"

    # Once the holder is gone, migrate takes the lock at once.
    assert "Adopted the legacy tables" in legacy_db.manage("migrate", "--nowait").stdout


def test_a_lock_wait_is_bounded_and_names_the_blocker_not_the_connection(legacy_db):
    blocker = psycopg.connect(legacy_db.url)
    blocker.execute("SET application_name = 'nightly report'")
    blocker.execute("LOCK TABLE customers IN ACCESS EXCLUSIVE MODE")
    try:
        result = legacy_db.manage("migrate", "--lock-timeout", "3s", check=False, timeout=120)
        pid = blocker.info.backend_pid
    finally:
        blocker.close()

    assert result.returncode == 1, result.stdout
    error = error_line(result)
    assert "cannot connect" not in result.stderr
    assert "migrate gave up waiting for a lock (canceling statement due to lock timeout)" in error
    assert f"blocked by pid {pid} (nightly report" in error
    assert "pg_terminate_backend" in error


def test_leftovers_of_the_original_plan_are_refused_before_anything_changes(legacy_db):
    legacy_db.script(
        "CREATE TABLE organizations (id uuid PRIMARY KEY, name varchar(255) NOT NULL);"
        "CREATE INDEX idx_orgs_slug ON organizations (name);"
        "CREATE TYPE service_plans AS ENUM ('weekly');"
    )
    schema, tables = legacy_db.schema_fingerprint(), legacy_db.tables()

    result = legacy_db.manage("migrate", check=False)
    preflight = legacy_db.manage("tenancy_preflight", check=False)

    assert result.returncode == 1
    error = error_line(result)
    assert "already holds 2 object(s) the migration is about to create" in error
    assert "table organizations" in error and "type service_plans" in error
    assert "leftovers of a half-run attempt of the original (Alembic) plan" in error
    assert "DROP TABLE organizations CASCADE" in error
    assert error.endswith("nothing was changed")
    assert legacy_db.schema_fingerprint() == schema
    assert legacy_db.tables() == tables, "not even Django's bookkeeping table"
    assert preflight.returncode == 1
    assert "FIX   chain objects" in preflight.stdout


def test_a_role_or_database_statement_timeout_does_not_kill_migrate(legacy_db):
    """A statement_timeout meant for the application (here on the database, as a role's would
    be) used to cancel migrate's first long statement, reported as "cannot connect" (exit 2);
    migrate now sets its own for its session. 20 ms: the old code failed on this machine at
    tenants.0002 (a statement longer than that under load); the new one runs nothing before its
    own setting but Django's connection set-up."""
    legacy_db.script(f"ALTER DATABASE \"{legacy_db.name}\" SET statement_timeout = '20ms'")

    result = legacy_db.manage("migrate", check=False)

    assert result.returncode == 0, result.stderr
    assert "Adopted the legacy tables" in result.stdout
