"""import_organization: two legacy databases become two organizations of one shared database,
each proved equal to its source; clashes, interruptions and bad input change nothing."""

import json
import os
import signal
import subprocess
import sys
import time

import psycopg
import pytest

from tests.organizations.support import (
    import_args,
    legacy_digests,
    organization_id,
    organization_state,
    whole_state,
)
from tests.support import PROJECT_DIR

pytestmark = pytest.mark.cli

SAMPLE = {"drivers": 6, "customers": 180, "routes": 17, "route_stops": 169}


def counts_of(db, slug):
    organization = organization_id(db, slug)
    return {
        table: db.value(f"SELECT count(*) FROM {table} WHERE organization_id = %s", [organization])
        for table in SAMPLE
    }


def test_the_sample_into_demo_with_remapped_ids_and_a_second_database_without_clashes(
    shared_db, sample_source, synthetic_source, tmp_path
):
    source_before = legacy_digests(sample_source)
    demo_before = organization_state(shared_db, "demo")
    report_path = tmp_path / "acme.json"

    # In slices of a page or so (--batch-rows 7): every slice's TID range and id mapping is
    # exercised, and the proof shows no row was lost or written twice between slices.
    result = shared_db.manage(
        *import_args(sample_source, "acme", "owner@acme.test", "--remap-ids"),
        "--batch-rows",
        "7",
        "--report",
        str(report_path),
    )

    assert "proved equal to the source" in result.stdout
    assert "new ids for the clashing rows: 6 drivers, 180 customers, 17 routes" in result.stdout
    assert counts_of(shared_db, "acme") == SAMPLE
    assert organization_state(shared_db, "demo") == demo_before
    acme = organization_id(shared_db, "acme")
    # Every clashing id is remapped, kept in the table and the report; references followed.
    mapped = shared_db.value(
        "SELECT count(*) FROM tenancy_import_id_map WHERE organization_id = %s", [acme]
    )
    assert mapped == sum(SAMPLE.values())
    report = json.loads(report_path.read_text())
    assert sum(len(ids) for ids in report["id_map"].values()) == mapped
    assert (
        shared_db.value(
            "SELECT count(*) FROM route_stops s JOIN customers c ON c.id = s.customer_id "
            "JOIN routes r ON r.id = s.route_id WHERE s.organization_id = %s "
            "AND c.organization_id = %s AND r.organization_id = %s",
            [acme, acme, acme],
        )
        == SAMPLE["route_stops"]
    )
    # M001's billing move, as migrate made it for demo: same numbers of rows.
    for table in ("service_plans", "customer_service_agreements", "payment_methods"):
        in_demo, in_acme = (
            shared_db.value(
                f"SELECT count(*) FROM {table} WHERE organization_id = %s",
                [organization_id(shared_db, slug)],
            )
            for slug in ("demo", "acme")
        )
        assert in_acme == in_demo > 0, table
    # M015/M016's geocoding metadata, as demo got it.
    assert shared_db.sql(
        "SELECT geocoding_provider, count(*) FROM customers WHERE organization_id = %s "
        "GROUP BY 1 ORDER BY 1",
        [acme],
    ) == shared_db.sql(
        "SELECT geocoding_provider, count(*) FROM customers WHERE organization_id = %s "
        "GROUP BY 1 ORDER BY 1",
        [organization_id(shared_db, "demo")],
    )
    # The owner: a new account without a password, invited (not accepted).
    owner = shared_db.sql(
        "SELECT u.password_hash, m.role, m.invitation_token IS NOT NULL, m.invitation_accepted_at "
        "FROM users u JOIN organization_users m ON m.user_id = u.id "
        "WHERE m.organization_id = %s",
        [acme],
    )
    assert len(owner) == 1 and owner[0][1:] == ("owner", True, None)
    assert owner[0][0].startswith("!")  # Django's unusable password
    assert "You are invited to Acme" in result.stdout  # the console email backend

    result = shared_db.manage(*import_args(synthetic_source, "beta", "owner@beta.test"))
    assert "new ids" not in result.stdout
    # The suite's owner is a superuser: the per-row key triggers are skipped, the keys checked
    # set-wise instead (tenants.conversion.importing._skip_row_checks).
    assert "foreign keys verified set-wise" in result.stdout
    beta = organization_id(shared_db, "beta")
    assert not shared_db.value(
        "SELECT count(*) FROM tenancy_import_id_map WHERE organization_id = %s", [beta]
    )
    # No clash: the rows keep their source ids.
    assert {row[0] for row in synthetic_source.sql("SELECT id FROM customers")} == {
        row[0]
        for row in shared_db.sql("SELECT id FROM customers WHERE organization_id = %s", [beta])
    }
    # No billing columns, no billing rows.
    assert not shared_db.value(
        "SELECT count(*) FROM customer_service_agreements WHERE organization_id = %s", [beta]
    )

    shared_db.manage("validate_tenancy")
    for slug in ("acme", "beta"):
        checked = shared_db.manage("validate_tenancy", "--organization", slug)
        assert "every table's checksum (ids mapped back) equals the source's" in checked.stdout
    # The sources were only read.
    assert legacy_digests(sample_source) == source_before


def test_clashing_ids_are_refused_with_nothing_written(shared_db, sample_source):
    before = whole_state(shared_db)

    result = shared_db.manage(*import_args(sample_source), check=False)

    assert result.returncode == 1
    assert (
        "ids of the source exist already in the shared database (drivers: 6 of 6, customers: "
        "180 of 180, routes: 17 of 17, route_stops: 169 of 169); nothing was imported. Run again "
        "with --remap-ids" in result.stderr
    )
    assert "Traceback" not in result.stderr
    assert whole_state(shared_db) == before


def test_dry_run_prints_counts_clashes_and_billing_and_changes_nothing(shared_db, sample_source):
    before = whole_state(shared_db)

    result = shared_db.manage(*import_args(sample_source, "acme", "o@acme.test", "--dry-run"))

    assert "Dry run, nothing changed. Would import as 'acme': 6 drivers, 180 customers" in (
        result.stdout
    )
    assert "billing (M001): 40 customers with billing values, 17 service plans" in result.stdout
    assert "ids existing already in the shared database: 6 drivers, 180 customers" in (
        result.stdout
    )
    assert whole_state(shared_db) == before


def _manage_process(database_url: str, *args: str) -> subprocess.Popen:
    environment = {
        **os.environ,
        "DATABASE_URL": database_url,
        "DJANGO_SETTINGS_MODULE": "routeoptimizer.settings",
        "SECRET_KEY": "test-only-secret-key-not-for-production",
        "PYTHONUNBUFFERED": "1",
    }
    return subprocess.Popen(
        [sys.executable, str(PROJECT_DIR / "manage.py"), *args],
        cwd=PROJECT_DIR,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for(predicate, timeout: float = 60.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _backends(db, application_name: str, *, waiting: bool = False) -> int:
    return db.value(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND application_name = %s"
        + (" AND wait_event_type = 'Lock'" if waiting else ""),
        [db.name, application_name],
    )


def test_kill_9_in_the_middle_leaves_nothing_and_running_again_imports(shared_db, synthetic_source):
    before = whole_state(shared_db)
    # Another session holds route_stops: the import, having created the organization and written
    # drivers, customers and routes in its transaction, waits there; then it is killed.
    with psycopg.connect(shared_db.url) as blocker:
        blocker.execute("LOCK TABLE route_stops IN SHARE MODE")
        process = _manage_process(shared_db.url, *import_args(synthetic_source, "beta"))
        try:
            _wait_for(
                lambda: _backends(shared_db, "import_organization", waiting=True) == 1,
                what="the import to wait for route_stops",
            )
            assert shared_db.value(
                "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
                "WHERE a.application_name = 'import_organization' AND l.granted "
                "AND l.relation = 'customers'::regclass AND l.mode = 'RowExclusiveLock'"
            ), "the import had written customers before it was killed"
        finally:
            process.send_signal(signal.SIGKILL)
            process.wait()
        blocker.rollback()
    _wait_for(
        lambda: _backends(shared_db, "import_organization") == 0,
        what="the killed import's session to end",
    )
    assert process.returncode == -signal.SIGKILL
    assert whole_state(shared_db) == before  # nothing of it: no organization, owner, rows

    # This time with a trigger of its own on a legacy table: the keys are then checked row by
    # row (replica mode would skip that trigger), not set-wise after the inserts.
    shared_db.script(
        "CREATE FUNCTION noop() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NEW; END$$; "
        "CREATE TRIGGER noop BEFORE INSERT ON drivers FOR EACH ROW EXECUTE FUNCTION noop()"
    )
    result = shared_db.manage(*import_args(synthetic_source, "beta"))

    assert "proved equal to the source" in result.stdout
    assert "foreign keys verified set-wise" not in result.stdout
    shared_db.manage("validate_tenancy", "--organization", "beta")


def test_bad_input_is_one_line_and_changes_nothing_on_either_side(
    shared_db, sample_source, synthetic_source, make_scratch_db
):
    shared_before = whole_state(shared_db)
    synthetic_before = legacy_digests(synthetic_source)
    empty = make_scratch_db()
    cases = [
        (
            import_args(synthetic_source, "demo"),
            "an organization with slug 'demo' exists already: choose another --slug",
        ),
        (
            import_args(synthetic_source, "beta", "Brian@Example.com"),
            "an account with email 'Brian@example.com' exists already in the shared database",
        ),
        (
            import_args(synthetic_source, "beta", "not-an-email"),
            "--owner-email 'not-an-email' is not an email address",
        ),
        (
            [*import_args(synthetic_source, "beta"), "--batch-rows", "0"],
            "--batch-rows 0 is not a number of rows: give 1 or more",
        ),
        (
            [
                "import_organization",
                "--from",
                "postgresql://nobody@127.0.0.1:1/none",
                "--slug",
                "beta",
                "--name",
                "Beta",
                "--owner-email",
                "o@beta.test",
            ],
            "cannot connect to the database --from names (127.0.0.1:1/none as nobody)",
        ),
        (
            import_args(empty, "beta"),
            "is not a legacy RouteOptimizer database: it has none of the tables",
        ),
        (
            import_args(shared_db, "beta"),  # a migrated database is not a legacy one
            "the source's legacy schema does not match",
        ),
    ]
    for args, message in cases:
        result = shared_db.manage(*args, check=False)
        assert result.returncode == 1, (args, result.stdout, result.stderr)
        assert message in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr
    assert "customers.organization_id: expected no such column, found uuid NOT NULL" in (
        result.stderr
    )

    # Rows the shared database's keys refuse: a stop of a customer the source does not have
    # (its foreign key dropped), named with the reason.
    synthetic_source.script(
        "ALTER TABLE route_stops DROP CONSTRAINT route_stops_customer_id_fkey; "
        "UPDATE route_stops SET customer_id = '00000000-0000-0000-0000-00000000000b' "
        "WHERE id = (SELECT id FROM route_stops ORDER BY id LIMIT 1)"
    )
    broken = synthetic_source.value("SELECT id FROM route_stops ORDER BY id LIMIT 1")
    synthetic_before = legacy_digests(synthetic_source)
    result = shared_db.manage(*import_args(synthetic_source, "beta"), check=False)
    assert result.returncode == 1
    assert "rows of the source break the shared database's constraints" in result.stderr
    assert (
        f"1 route_stops reference(s) through customer_id a customer the source does not have, "
        f"e.g. {broken} (customer_id 00000000-0000-0000-0000-00000000000b)" in result.stderr
    )

    # A column the contract does not know: the same differences list as migrate.
    synthetic_source.script("ALTER TABLE drivers ADD COLUMN nickname text")
    result = shared_db.manage(*import_args(synthetic_source, "beta"), check=False)
    assert result.returncode == 1
    assert "  - drivers.nickname: expected no such column, found text NULL" in result.stderr

    assert whole_state(shared_db) == shared_before
    synthetic_source.script("ALTER TABLE drivers DROP COLUMN nickname")
    assert legacy_digests(synthetic_source) == synthetic_before
