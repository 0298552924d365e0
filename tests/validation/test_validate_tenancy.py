"""validate_tenancy: passes on a freshly migrated database, names each corruption, never writes."""

import json
import re
import uuid

import psycopg
import pytest

from tests.support import run_manage

pytestmark = pytest.mark.cli

CHECKS = [
    "row_counts",
    "organization_not_null",
    "organization_exists",
    "legacy_rows_in_default_organization",
    "content_fidelity",
    "tenant_consistency",
    "schema",
    "default_organization",
    "enforcement",
]
OTHER_ORGANIZATION = """
INSERT INTO organizations (name, slug, billing_email, billing_address, stripe_customer_id,
    stripe_subscription_id, google_maps_api_key, logo_url, primary_color)
VALUES ('Other Pools', 'other', '', '', '', '', '', '', '')
RETURNING id
"""


def validate(db, *args):
    return db.manage("validate_tenancy", *args, check=False)


def line(result, check: str) -> str:
    """The report line of `check`."""
    for text in result.stdout.splitlines():
        parts = text.split()
        if len(parts) > 1 and parts[1] == check:
            return text
    raise AssertionError(f"no line for {check}:\n{result.stdout}")


def assert_fails_only(result, *failing: str) -> None:
    assert result.returncode == 1, result.stdout + result.stderr
    for check in CHECKS:
        expected = "FAIL" if check in failing else "PASS"
        assert line(result, check).startswith(expected), line(result, check)
    assert result.stderr.count("\n") == 1, result.stderr
    assert f"{len(failing)} of {len(CHECKS)} checks failed" in result.stderr


def test_passes_on_a_freshly_migrated_sample(migrated_db):
    result = validate(migrated_db)

    assert result.returncode == 0, result.stdout + result.stderr
    for check in CHECKS:
        assert line(result, check).startswith("PASS")
    assert "All 9 checks passed" in result.stdout
    assert "every snapshot row present" in line(result, "row_counts")
    customers = migrated_db.value("SELECT count(*) FROM customers")
    assert f"customers {customers}" in line(result, "row_counts")


def test_rows_the_old_application_added_are_reported_not_failed(migrated_db):
    # The old application knows no organization_id: the column default files it under demo.
    migrated_db.script(
        "INSERT INTO customers (id, address, service_type, difficulty, service_day, locked, "
        "is_active, created_at, updated_at, service_days_per_week, visit_duration, "
        "display_name, status) VALUES (gen_random_uuid(), '1 New St', 'residential', 1, "
        "'monday', false, true, now(), now(), 1, 15, 'New Customer', 'active')"
    )

    result = validate(migrated_db)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "(+1 added since the snapshot)" in line(result, "row_counts")


def test_a_deleted_legacy_row_fails_row_counts_and_content(migrated_db):
    stop = migrated_db.value("SELECT id::text FROM route_stops ORDER BY id LIMIT 1")
    migrated_db.script(f"DELETE FROM route_stops WHERE id = '{stop}'")

    result = validate(migrated_db)

    assert_fails_only(result, "row_counts", "content_fidelity")
    assert "route_stops: 1 of" in line(result, "row_counts")
    assert f"{stop} missing" in line(result, "content_fidelity")


def test_a_changed_legacy_value_fails_content_fidelity_naming_the_row(migrated_db):
    customer = migrated_db.value(
        "SELECT id::text FROM customers WHERE notes IS DISTINCT FROM 'x' ORDER BY id LIMIT 1"
    )
    migrated_db.script(f"UPDATE customers SET notes = 'x' WHERE id = '{customer}'")

    result = validate(migrated_db)

    assert_fails_only(result, "content_fidelity")
    assert f"customers: 1 changed (ids: {customer} changed)" in line(result, "content_fidelity")


def test_a_changed_billing_value_is_caught_after_the_billing_columns_moved(migrated_db):
    assert not migrated_db.value(
        "SELECT count(*) FROM information_schema.columns "
        "WHERE table_name = 'customers' AND column_name = 'service_rate'"
    ), "routing.0006_move_billing_columns moved the billing columns off customers"
    customer = migrated_db.value(
        "SELECT customer_id::text FROM payment_methods WHERE last_four IS NOT NULL "
        "ORDER BY customer_id LIMIT 1"
    )
    migrated_db.script(
        f"UPDATE payment_methods SET last_four = '0000' WHERE customer_id = '{customer}'"
    )

    result = validate(migrated_db)

    assert_fails_only(result, "content_fidelity")
    assert f"{customer} changed" in line(result, "content_fidelity")


def test_many_changes_name_twenty_ids_then_a_count(migrated_db):
    migrated_db.script("UPDATE customers SET notes = 'changed everywhere'")
    customers = migrated_db.value("SELECT count(*) FROM customers")
    assert customers > 20

    result = validate(migrated_db)

    detail = line(result, "content_fidelity")
    assert f"customers: {customers} changed" in detail
    assert (
        len(re.findall(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", detail))
        == 20
    )
    assert f"and {customers - 20} more)" in detail


def drop_organization_keys(db, *names: str) -> None:
    """A database whose composite keys someone dropped: the SQL check is the second layer."""
    for name in names:
        table = db.value(
            "SELECT conrelid::regclass::text FROM pg_constraint WHERE conname = %s", [name]
        )
        db.script(f"ALTER TABLE {table} DROP CONSTRAINT {name}")


def test_a_cross_organization_reference_is_refused_by_postgresql(migrated_db):
    other = migrated_db.value(OTHER_ORGANIZATION)
    stop = migrated_db.value("SELECT id::text FROM route_stops ORDER BY id LIMIT 1")

    with pytest.raises(psycopg.errors.ForeignKeyViolation):
        migrated_db.script(
            f"UPDATE route_stops SET organization_id = '{other}' WHERE id = '{stop}'"
        )

    result = validate(migrated_db)
    consistency = line(result, "tenant_consistency")
    assert "6 proven by a composite foreign key, 1 guarded by a trigger" in consistency
    report = json.loads(validate(migrated_db, "--json").stdout)
    figures = {check["name"]: check for check in report["checks"]}["tenant_consistency"]["figures"]
    assert figures["proven_by_constraint"]["route_stops.route_id -> routes"] == (
        "fk_route_stops_route_in_organization"
    )
    assert figures["guarded_by_trigger"] == {
        "customer_service_agreements.service_plan_id -> service_plans": (
            "agreements_service_plan_in_organization"
        )
    }
    assert figures["sql_check_only"] == []


def test_a_route_stop_moved_to_another_organization_fails_tenant_consistency(migrated_db):
    other = migrated_db.value(OTHER_ORGANIZATION)
    stop = migrated_db.value("SELECT id::text FROM route_stops ORDER BY id LIMIT 1")
    drop_organization_keys(
        migrated_db,
        "fk_route_stops_route_in_organization",
        "fk_route_stops_customer_in_organization",
    )
    migrated_db.script(f"UPDATE route_stops SET organization_id = '{other}' WHERE id = '{stop}'")

    result = validate(migrated_db)

    # A legacy row outside the default organization is also named as such, and the missing
    # keys in schema.
    assert_fails_only(result, "tenant_consistency", "legacy_rows_in_default_organization", "schema")
    assert (
        "route_stops.route_id -> routes: no validated foreign key (organization_id, route_id)"
        in line(result, "schema")
    )
    consistency = line(result, "tenant_consistency")
    assert "route_stops.route_id -> routes: 1 row in another organization" in consistency
    assert "route_stops.customer_id -> customers: 1 row in another" in consistency
    assert stop in consistency
    assert stop in line(result, "legacy_rows_in_default_organization")


def test_a_whole_table_moved_to_another_organization_is_not_proven_consistent(migrated_db):
    # Each table is then in one organization, but not the same one as its parent's.
    other = migrated_db.value(OTHER_ORGANIZATION)
    drop_organization_keys(
        migrated_db, "fk_routes_driver_in_organization", "fk_route_stops_route_in_organization"
    )
    migrated_db.script(f"UPDATE routes SET organization_id = '{other}'")
    routes = migrated_db.value("SELECT count(*) FROM routes")
    stops = migrated_db.value("SELECT count(*) FROM route_stops")

    result = validate(migrated_db)

    assert_fails_only(result, "tenant_consistency", "legacy_rows_in_default_organization", "schema")
    consistency = line(result, "tenant_consistency")
    assert f"routes.driver_id -> drivers: {routes} rows in another organization" in consistency
    assert f"route_stops.route_id -> routes: {stops} rows" in consistency
    assert "route_stops.customer_id" not in consistency


def test_the_default_organizations_owner_deleted_fails(migrated_db):
    migrated_db.script(
        "DELETE FROM organization_users WHERE role = 'owner' AND organization_id = "
        "(SELECT id FROM organizations WHERE slug = 'demo');"
        "DELETE FROM users WHERE email = 'brian@example.com'"
    )

    result = validate(migrated_db)

    assert_fails_only(result, "default_organization")
    assert "'demo' has no owner" in line(result, "default_organization")


def test_an_unvalidated_foreign_key_fails_schema(migrated_db):
    migrated_db.script(
        "ALTER TABLE routes DROP CONSTRAINT fk_routes_organization;"
        "ALTER TABLE routes ADD CONSTRAINT fk_routes_organization FOREIGN KEY (organization_id) "
        "REFERENCES organizations (id) NOT VALID"
    )

    result = validate(migrated_db)

    assert_fails_only(result, "schema")
    assert "fk_routes_organization NOT VALID" in line(result, "schema")


def test_row_level_security_switched_off_fails_enforcement(migrated_db):
    migrated_db.script("ALTER TABLE route_stops DISABLE ROW LEVEL SECURITY")

    result = validate(migrated_db)

    assert_fails_only(result, "enforcement")
    assert "route_stops: row level security not enabled" in line(result, "enforcement")


def test_a_tenancy_key_the_database_does_not_know_fails_enforcement_and_check(migrated_db):
    assert "organization claims verify" in line(validate(migrated_db), "enforcement")
    migrated_db.script("DELETE FROM tenancy_keys")

    result = validate(migrated_db)

    assert_fails_only(result, "enforcement")
    assert "does not know the tenancy key" in line(result, "enforcement")
    assert "tenancy_key install" in line(result, "enforcement")
    check = migrated_db.manage("check", "--database", "default", check=False)
    assert check.returncode != 0
    assert "tenants.E002" in check.stdout + check.stderr
    migrated_db.manage("tenancy_key", "install")
    assert validate(migrated_db).returncode == 0


def test_after_contract_row_level_security_is_forced_and_validation_still_sees_every_row(
    migrated_db,
):
    migrated_db.manage("contract_tenancy")

    result = validate(migrated_db)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "(forced on all, owner included)" in line(result, "enforcement")


def one_line_error(result, returncode: int = 2) -> str:
    assert result.returncode == returncode, result.stdout + result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.stderr
    return result.stderr


def test_an_unmigrated_database_cannot_be_validated(legacy_db):
    error = one_line_error(validate(legacy_db))

    assert "the database is not migrated" in error
    assert "python manage.py migrate" in error


def test_a_partly_migrated_database_cannot_be_validated(legacy_db):
    legacy_db.manage("migrate", "routing", "0002_customers_organization")

    error = one_line_error(validate(legacy_db))

    assert "the schema is not migrated" in error
    assert "still to apply (next: " in error


def test_without_the_snapshot_there_is_nothing_to_compare(migrated_db):
    migrated_db.script("DELETE FROM tenancy_legacy_snapshot")

    error = one_line_error(validate(migrated_db))

    assert "no pre-migration snapshot" in error


def test_an_unreachable_database_exits_2_with_one_line():
    result = run_manage(
        "validate_tenancy", database_url="postgresql://postgres@127.0.0.1:1/nowhere", check=False
    )

    error = one_line_error(result)
    assert "cannot connect to PostgreSQL database 'nowhere'" in error
    assert "DATABASE_URL" in error


def test_a_role_that_row_level_security_binds_cannot_validate(migrated_db):
    # validate_tenancy runs as the owner role, whose sessions carry app.unscoped = on, which the
    # policies honour. A role that row level security binds without such a
    # policy sees one organization at most: counting through it would report every other row
    # missing, so validation refuses to run.
    role = f"ro_validation_reader_{uuid.uuid4().hex[:8]}"
    with migrated_db._maintenance() as server:
        server.execute(f"CREATE ROLE {role} LOGIN NOSUPERUSER NOBYPASSRLS")
    try:
        migrated_db.script(
            f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role};"
            f"GRANT USAGE ON SCHEMA public TO {role};"
            # customers' policies replaced by one that ignores app.unscoped
            "DO $$ DECLARE p text; BEGIN FOR p IN SELECT polname FROM pg_policy "
            "WHERE polrelid = 'customers'::regclass LOOP "
            "EXECUTE format('DROP POLICY %I ON customers', p); END LOOP; END $$;"
            "CREATE POLICY current_only ON customers USING (organization_id = "
            "NULLIF(current_setting('app.current_organization_id', true), '')::uuid)"
        )
        url = migrated_db.url.replace(migrated_db.server_settings["USER"] + "@", f"{role}@", 1)
        assert role in url

        error = one_line_error(run_manage("validate_tenancy", database_url=url, check=False))

        assert "row level security hides rows of public.customers" in error
        assert f"from role '{role}'" in error
        assert "MIGRATION_DATABASE_URL" in error
    finally:
        migrated_db.script(f"DROP OWNED BY {role}")
        with migrated_db._maintenance() as server:
            server.execute(f"DROP ROLE IF EXISTS {role}")


def test_json_report_shape(migrated_db):
    migrated_db.script("UPDATE drivers SET notes = 'changed'")

    result = validate(migrated_db, "--json")

    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert set(report) == {"status", "checks", "database", "duration_seconds"}
    assert report["status"] == "fail"
    assert report["database"]["name"] == migrated_db.name
    assert isinstance(report["duration_seconds"], float)
    assert [check["name"] for check in report["checks"]] == CHECKS
    for check in report["checks"]:
        assert {"name", "status", "figures", "detail"} <= set(check)
        assert check["status"] in {"PASS", "FAIL"}
        assert isinstance(check["figures"], dict)
        assert "\n" not in check["detail"]
    by_name = {check["name"]: check for check in report["checks"]}
    drivers = migrated_db.value("SELECT count(*) FROM drivers")
    assert by_name["content_fidelity"]["status"] == "FAIL"
    assert by_name["content_fidelity"]["figures"]["drivers"]["changed"] == drivers
    assert by_name["row_counts"]["figures"]["drivers"] == {
        "snapshot": drivers,
        "live": drivers,
        "missing": 0,
        "added": 0,
    }


def test_json_report_when_it_cannot_run(legacy_db):
    result = validate(legacy_db, "--json")

    assert result.returncode == 2
    report = json.loads(result.stdout)
    assert report["status"] == "error"
    assert "not migrated" in report["error"]


def test_validation_never_changes_the_database(migrated_db):
    # Failing checks too: their queries naming the ids run as well.
    migrated_db.script(
        "DELETE FROM route_stops WHERE id = (SELECT id FROM route_stops ORDER BY id LIMIT 1);"
        "UPDATE customers SET notes = 'x' WHERE id = (SELECT id FROM customers ORDER BY id "
        "LIMIT 1)"
    )
    schema = migrated_db.schema_fingerprint()
    contents = every_table_digest(migrated_db)

    assert validate(migrated_db).returncode == 1
    assert validate(migrated_db, "--json").returncode == 1

    assert migrated_db.schema_fingerprint() == schema
    assert every_table_digest(migrated_db) == contents


def every_table_digest(db) -> dict[str, str]:
    tables = [
        name
        for (name,) in db.sql(
            "SELECT quote_ident(relname) FROM pg_class "
            "WHERE relnamespace = 'public'::regnamespace AND relkind IN ('r', 'p')"
        )
    ]
    assert "customers" in tables and "tenancy_snapshot_rows_customers" in tables
    return {
        table: db.value(
            f"SELECT count(*) || ':' || md5(coalesce(string_agg(x::text, ',' ORDER BY x::text), "
            f"'')) FROM {table} x"
        )
        for table in tables
    }
