"""Plan step M001 (routing.0006_move_billing_columns): billing values move, nothing is lost."""

import os
import subprocess
import sys
import time
from decimal import Decimal

import pytest
from psycopg import sql

from billing.legacy import (
    AGREEMENT_COLUMNS,
    CHANGES_DDL,
    MARKER_DDL,
    PAYMENT_COLUMNS,
    PLAN_FREQUENCIES,
    legacy_customers_sql,
    reconstruct_sql,
)
from routing.legacy import BILLING_COLUMN_NAMES
from tenants.conversion.snapshot import digest_expression

pytestmark = pytest.mark.cli

BEFORE = "0005_route_stops_organization"
MOVED = "0006_move_billing_columns"
MARKERS = {"legacy_customer_billing", "legacy_service_plans"}

# Legacy values the sample does not have but production may: free text outside the plan
# frequencies, a rate without a frequency, a frequency without a rate, '' (not NULL) notes,
# Stripe ids without a payment type, a payment type nobody spelled our way.
AWKWARD_VALUES = """
UPDATE customers SET service_rate = 60.00, billing_frequency = 'Bi-Weekly ', rate_notes = NULL
WHERE id = (SELECT id FROM customers ORDER BY id OFFSET 0 LIMIT 1);
UPDATE customers SET service_rate = 75.25, billing_frequency = NULL, rate_notes = ''
WHERE id = (SELECT id FROM customers ORDER BY id OFFSET 1 LIMIT 1);
UPDATE customers SET service_rate = NULL, billing_frequency = 'monthly', rate_notes = NULL
WHERE id = (SELECT id FROM customers ORDER BY id OFFSET 2 LIMIT 1);
UPDATE customers SET payment_method_type = NULL, stripe_customer_id = 'cus_only',
    stripe_payment_method_id = NULL, payment_last_four = NULL, payment_brand = NULL
WHERE id = (SELECT id FROM customers ORDER BY id OFFSET 3 LIMIT 1);
UPDATE customers SET payment_method_type = 'Visa card', payment_last_four = '0042',
    payment_brand = E'Caf\\u00e9 "Bank"\\t\\\\'
WHERE id = (SELECT id FROM customers ORDER BY id OFFSET 4 LIMIT 1);
"""


def customer_columns(db) -> list[str]:
    return [
        name
        for (name,) in db.sql(
            "SELECT attname FROM pg_attribute WHERE attrelid = 'customers'::regclass "
            "AND attnum > 0 AND NOT attisdropped ORDER BY attnum"
        )
    ]


def billing_columns_present(db) -> set[str]:
    return set(customer_columns(db)) & set(BILLING_COLUMN_NAMES)


def reconstructed(db) -> list[tuple]:
    columns = sql.SQL(", ").join(map(sql.Identifier, BILLING_COLUMN_NAMES))
    return db.sql(
        sql.SQL("SELECT customer_id, {} FROM ({}) b ORDER BY customer_id").format(
            columns, sql.SQL(reconstruct_sql())
        )
    )


def count(db, table: str) -> int:
    return db.value(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table)))


@pytest.fixture
def billing_db(legacy_db):
    """The sample (billing columns with values) plus awkward values, migrated up to M009."""
    legacy_db.script(AWKWARD_VALUES)
    legacy_db.manage("migrate", "routing", BEFORE)
    return legacy_db


def test_forward_moves_every_billing_value_and_drops_the_columns(billing_db):
    legacy = billing_db.contents(
        "customers", ["id", "organization_id", "created_at", *BILLING_COLUMN_NAMES]
    )
    with_agreement = [r for r in legacy if any(v is not None for v in r[3:6])]
    with_payment = [r for r in legacy if any(v is not None for v in r[6:])]
    plan_groups = {(r[1], r[4], r[3]) for r in with_agreement if r[4] in PLAN_FREQUENCIES}
    assert with_agreement and with_payment and len(plan_groups) > 1

    result = billing_db.manage("migrate", "routing", MOVED)

    billed = {r[0] for r in with_agreement + with_payment}
    assert f"moved the billing values of {len(billed)} customers" in result.stdout
    assert "dropped the eight billing columns" in result.stdout
    assert billing_columns_present(billing_db) == set()
    assert count(billing_db, "customer_service_agreements") == len(with_agreement)
    assert count(billing_db, "payment_methods") == len(with_payment)
    assert count(billing_db, "service_plans") == len(plan_groups)
    assert count(billing_db, "legacy_customer_billing") == len(billed)
    # Every value comes back out of the billing tables exactly.
    assert reconstructed(billing_db) == [(r[0], *r[3:]) for r in legacy]


def test_forward_creates_the_rows_the_mapping_describes(billing_db):
    legacy = {
        row[0]: row
        for row in billing_db.contents(
            "customers", ["id", "organization_id", "created_at", *BILLING_COLUMN_NAMES]
        )
    }

    billing_db.manage("migrate", "routing", MOVED)

    plans = {
        plan_id: (organization_id, name, base_rate, frequency)
        for plan_id, organization_id, name, base_rate, frequency in billing_db.sql(
            "SELECT id, organization_id, name, base_rate, billing_frequency FROM service_plans"
        )
    }
    for _organization_id, name, base_rate, frequency in plans.values():
        rate = "(no rate)" if base_rate is None else f"{base_rate:.2f}"
        assert name == f"Legacy {frequency} {rate}"
    assert any(name == "Legacy weekly 125.00" for _, name, _, _ in plans.values())
    assert any(name == "Legacy monthly (no rate)" for _, name, _, _ in plans.values())

    agreements = billing_db.sql(
        "SELECT customer_id, organization_id, service_plan_id, custom_rate, effective_date, "
        "end_date, rate_notes FROM customer_service_agreements"
    )
    for customer_id, organization_id, plan_id, rate, effective, end, notes in agreements:
        row = legacy[customer_id]
        service_rate, frequency, rate_notes = row[3:6]
        assert organization_id == row[1]
        assert (rate, notes, end) == (service_rate, rate_notes, None)
        assert effective == row[2].date()
        if frequency in PLAN_FREQUENCIES:
            assert plans[plan_id] == (row[1], plans[plan_id][1], service_rate, frequency)
        else:
            assert plan_id is None, "no plan for a NULL or unknown frequency"

    methods = billing_db.sql(
        "SELECT customer_id, organization_id, payment_type, is_primary, is_active, "
        "stripe_customer_id, stripe_payment_method_id, last_four, brand FROM payment_methods"
    )
    for customer_id, organization_id, *values in methods:
        row = legacy[customer_id]
        assert organization_id == row[1]
        assert values == [row[6], True, True, *row[7:]]
    assert ("Visa card", "0042") in {(m[2], m[7]) for m in methods}
    unknown_frequency = billing_db.value(
        "SELECT billing_frequency FROM legacy_customer_billing WHERE billing_frequency IS NOT NULL"
    )
    assert unknown_frequency == "Bi-Weekly ", "kept verbatim, trailing space included"


def test_reverse_restores_every_customer_row_exactly(billing_db):
    columns = customer_columns(billing_db)
    before = billing_db.contents("customers", columns)
    others = {t: billing_db.contents(t) for t in ("drivers", "routes", "route_stops")}
    assert billing_db.value("SELECT count(*) FROM customers WHERE rate_notes = ''") == 1

    billing_db.manage("migrate", "routing", MOVED)
    result = billing_db.manage("migrate", "routing", BEFORE)

    assert "restored the billing values of" in result.stdout
    assert set(customer_columns(billing_db)) == set(columns)
    assert billing_db.contents("customers", columns) == before, "every column of every row"
    assert {t: billing_db.contents(t) for t in others} == others
    # The column types are the legacy ones again.
    types = dict(
        billing_db.sql(
            "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
            "WHERE attrelid = 'customers'::regclass AND attname = ANY(%s)",
            [list(BILLING_COLUMN_NAMES)],
        )
    )
    assert types["service_rate"] == "numeric(10,2)"
    assert types["payment_last_four"] == "character varying(4)"
    # What the forward created is gone; the marker tables too.
    for table in ("service_plans", "customer_service_agreements", "payment_methods"):
        assert count(billing_db, table) == 0, table
    assert not MARKERS & billing_db.tables()


def test_reverse_keeps_what_the_new_application_created(billing_db):
    billing_db.manage("migrate", "routing", MOVED)
    organization_id = billing_db.value("SELECT id FROM organizations WHERE slug = 'demo'")
    billing_db.script(
        f"""
        INSERT INTO service_plans (organization_id, name, base_rate, billing_frequency)
        VALUES ('{organization_id}', 'Premium weekly', 150.00, 'weekly');
        INSERT INTO customer_service_agreements (organization_id, customer_id, service_plan_id,
            effective_date)
        SELECT '{organization_id}', c.id, p.id, '2026-01-01'
        FROM customers c, service_plans p
        WHERE p.name = 'Premium weekly'
          AND NOT EXISTS (SELECT 1 FROM legacy_customer_billing m WHERE m.customer_id = c.id)
        LIMIT 1;
        """
    )

    billing_db.manage("migrate", "routing", BEFORE)

    assert billing_db.sql("SELECT name FROM service_plans") == [("Premium weekly",)]
    assert count(billing_db, "customer_service_agreements") == 1


def test_database_without_billing_columns_moves_nothing_and_gets_none_back(make_scratch_db):
    db = make_scratch_db()
    db.load_sample()
    db.script(
        "ALTER TABLE customers " + ", ".join(f"DROP COLUMN {c}" for c in BILLING_COLUMN_NAMES)
    )
    db.manage("migrate", "routing", BEFORE)
    columns = customer_columns(db)
    before = db.contents("customers", columns)

    forward = db.manage("migrate", "routing", MOVED)

    assert "nothing to move, nothing to drop" in forward.stdout
    assert customer_columns(db) == columns
    for table in ("service_plans", "customer_service_agreements", "payment_methods"):
        assert count(db, table) == 0, table
    assert reconstructed(db) == [(row[0], *[None] * 8) for row in before]

    db.manage("migrate", "routing", BEFORE)

    assert customer_columns(db) == columns, "the reverse must not create the billing columns"
    assert db.contents("customers", columns) == before
    assert not MARKERS & db.tables()


def test_empty_database_gets_the_columns_dropped_and_back(scratch_db):
    scratch_db.manage("migrate", "routing", MOVED)
    assert billing_columns_present(scratch_db) == set()

    scratch_db.manage("migrate", "routing", BEFORE)

    assert billing_columns_present(scratch_db) == set(BILLING_COLUMN_NAMES)


def test_customers_written_while_the_move_runs_are_moved_again(billing_db):
    """An interrupted run resumed later: rows moved before the crash and written since are
    re-moved from their current values under the final lock, nothing stale survives."""
    from billing.legacy import _EVERY_CUSTOMER, _MOVE_STATEMENTS

    billing_db.manage("migrate", "billing", "0003_payment_methods")
    billing_db.script(MARKER_DDL + CHANGES_DDL)

    for _, statement in _MOVE_STATEMENTS:  # the first, crashed run's move
        billing_db.script(statement.format(scope=_EVERY_CUSTOMER))
    moved = billing_db.value("SELECT count(*) FROM legacy_customer_billing")
    changed, deleted = billing_db.sql(
        "SELECT customer_id FROM legacy_customer_billing ORDER BY customer_id LIMIT 2"
    )
    billing_db.script(
        f"""
        UPDATE customers SET service_rate = 999.99, billing_frequency = 'weekly',
            payment_brand = 'Changed' WHERE id = '{changed[0]}';
        DELETE FROM route_stops WHERE customer_id = '{deleted[0]}';
        DELETE FROM customers WHERE id = '{deleted[0]}';
        INSERT INTO customers (id, address, service_type, difficulty, service_day, locked,
            is_active, created_at, updated_at, service_days_per_week, display_name,
            service_rate, billing_frequency, payment_method_type)
        VALUES ('00000000-0000-4000-8000-0000000000aa', '1 New St', 'residential', 1, 'monday',
            false, true, '2026-01-02 03:04:05', '2026-01-02 03:04:05', 1, 'Written meanwhile',
            42.00, 'per-visit', 'cash');
        """
    )
    current = billing_db.contents("customers", ["id", *BILLING_COLUMN_NAMES])
    assert count(billing_db, "legacy_customer_billing_changes") == 3

    result = billing_db.manage("migrate", "routing", MOVED)

    assert "moved again 3 customers written while the move ran" in result.stdout
    assert reconstructed(billing_db) == current
    assert count(billing_db, "legacy_customer_billing") == moved  # one gone, one new
    assert "legacy_customer_billing_changes" not in billing_db.tables()
    assert not billing_db.value(
        "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'customers'::regclass "
        "AND tgname = 'customers_legacy_billing_changes'"
    )
    assert (
        billing_db.value("SELECT count(*) FROM service_plans WHERE name = 'Legacy weekly 999.99'")
        == 1
    )


def test_validator_reconstruction_matches_the_pre_migration_digests(billing_db):
    billing_db.manage("migrate", "routing", MOVED)
    columns = billing_db.value(
        "SELECT columns FROM tenancy_legacy_snapshot WHERE table_name = 'customers'"
    )
    assert set(BILLING_COLUMN_NAMES) <= set(columns)

    mismatches = billing_db.value(
        sql.SQL(
            "SELECT count(*) FROM ({}) AS t "
            "FULL JOIN tenancy_snapshot_rows_customers s ON s.id = t.id "
            "WHERE s.digest IS DISTINCT FROM {}"
        ).format(sql.SQL(legacy_customers_sql()), digest_expression(columns, "t"))
    )

    assert mismatches == 0


def test_sample_values_land_where_the_mapping_says(billing_db):
    """A spot check against one known sample customer (the brief's example values)."""
    billing_db.manage("migrate", "routing", MOVED)

    rates = {r for (r,) in billing_db.sql("SELECT custom_rate FROM customer_service_agreements")}
    assert {Decimal("125.00"), Decimal("89.50"), Decimal("0.00")} <= rates
    assert set(AGREEMENT_COLUMNS) | set(PAYMENT_COLUMNS) == set(BILLING_COLUMN_NAMES)


def test_stale_markers_of_an_interrupted_run_are_moved_again_not_dropped(billing_db):
    """An earlier run moved the values, died before dropping the columns, and its billing rows
    were rolled back with the billing tables: its markers now point at nothing."""
    legacy = billing_db.contents("customers", ["id", *BILLING_COLUMN_NAMES])
    billing_db.script(
        "CREATE TABLE legacy_customer_billing (customer_id uuid PRIMARY KEY, agreement_id uuid, "
        "payment_method_id uuid, billing_frequency varchar(20)); "
        "INSERT INTO legacy_customer_billing SELECT id, gen_random_uuid(), gen_random_uuid(), "
        "NULL FROM customers WHERE service_rate IS NOT NULL OR payment_method_type IS NOT NULL"
    )

    result = billing_db.manage("migrate", "routing", MOVED)

    assert "customers of an interrupted earlier run are moved again" in result.stdout
    assert billing_columns_present(billing_db) == set()
    assert reconstructed(billing_db) == legacy, "every billing value survives in the tables"


def test_the_columns_are_not_dropped_when_the_tables_would_not_give_the_values_back(billing_db):
    # A marker the move trusts (its rows exist) but whose payment method lost a value.
    billing_db.manage("migrate", "billing", "0003_payment_methods")
    billing_db.manage("shell", "-c", MOVE_WITHOUT_FINISHING)
    billing_db.sql(
        "UPDATE payment_methods SET brand = 'tampered' WHERE id = "
        "(SELECT payment_method_id FROM legacy_customer_billing "
        "WHERE payment_method_id IS NOT NULL LIMIT 1)"
    )

    result = billing_db.manage("migrate", "routing", MOVED, check=False)

    assert result.returncode == 1
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line.startswith("error: M001 stopped before dropping the billing columns")
    assert "Traceback" not in result.stderr
    assert billing_columns_present(billing_db) == set(BILLING_COLUMN_NAMES)


MOVE_WITHOUT_FINISHING = """
from django.db import connection, transaction
from billing import legacy
with connection.cursor() as cursor:
    cursor.execute(legacy.MARKER_DDL)
    cursor.execute(legacy.CHANGES_DDL)
with transaction.atomic(), connection.cursor() as cursor:
    legacy._move(cursor, legacy._EVERY_CUSTOMER)
"""


def test_a_customer_the_old_application_deletes_during_the_move_does_not_abort_it(
    billing_db, tmp_path
):
    """The old application deletes a billing customer after its batch inserted the agreement
    and before that batch commits (the deferred foreign key then fails at COMMIT): the batch
    is moved again without it, and every surviving customer's values are still rebuilt."""
    from tests.support import PROJECT_DIR

    billing_db.manage("migrate", "billing", "0003_payment_methods")
    victim = billing_db.value(
        "SELECT id FROM customers WHERE service_rate IS NOT NULL ORDER BY id LIMIT 1"
    )
    pause = tmp_path / "pause"
    pause.write_text("")
    point = "forward:routing.0006_move_billing_columns:checkpoint:batch-before-commit"
    environment = {  # as tests.support.run_manage, but in the background
        **os.environ,
        "DATABASE_URL": billing_db.url,
        "DJANGO_SETTINGS_MODULE": "routeoptimizer.settings",
        "SECRET_KEY": "test-only-secret-key-not-for-production",
        "PYTHONUNBUFFERED": "1",
        "ROUTEOPTIMIZER_PAUSE_AT": f"{point}={pause}",
    }
    process = subprocess.Popen(
        [sys.executable, str(PROJECT_DIR / "manage.py"), "migrate", "routing", MOVED],
        cwd=PROJECT_DIR,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        paused = pause.with_name("pause.paused")
        for _ in range(600):
            if paused.exists() or process.poll() is not None:
                break
            time.sleep(0.05)
        assert paused.exists(), "the move never reached its batch's commit"
        billing_db.script(
            f"DELETE FROM route_stops WHERE customer_id = '{victim}';"
            f"DELETE FROM customers WHERE id = '{victim}';"
        )
        before = billing_db.contents("customers", ["id", *BILLING_COLUMN_NAMES])
    finally:
        pause.unlink(missing_ok=True)
        stdout, stderr = process.communicate(timeout=300)

    assert process.returncode == 0, stderr
    assert "a customer was deleted while its billing values moved: batch moved again" in stdout
    assert not billing_columns_present(billing_db)
    rebuilt = [
        row for row in reconstructed(billing_db) if any(value is not None for value in row[1:])
    ]
    assert rebuilt == [row for row in before if any(value is not None for value in row[1:])]
    assert not billing_db.value(
        "SELECT count(*) FROM legacy_customer_billing WHERE customer_id = %s", [victim]
    )
