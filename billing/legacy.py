"""Billing and the legacy application: customer foreign keys it can live with, and plan step M001.

Part one, the foreign keys from billing tables to `customers`: ON DELETE CASCADE in the
database, so the old application's DELETE FROM customers keeps working during the expand phase.

Part two, M001: the eight billing columns of the "bad" migration leave `customers` without
losing a value. This module owns the mapping in both directions:

    service_rate               -> customer_service_agreements.custom_rate
    billing_frequency          -> service_plans.billing_frequency of the agreement's plan (one
                                  "Legacy <frequency> <rate>" plan per organization, frequency
                                  and rate); a value outside weekly|monthly|per-visit cannot be a
                                  plan's (CHECK) and stays verbatim in the marker (see below)
    rate_notes                 -> customer_service_agreements.rate_notes
    payment_method_type        -> payment_methods.payment_type (verbatim, no CHECK)
    stripe_customer_id         -> payment_methods.stripe_customer_id
    stripe_payment_method_id   -> payment_methods.stripe_payment_method_id
    payment_last_four          -> payment_methods.last_four
    payment_brand              -> payment_methods.brand

A customer with any of the first three gets one current agreement (effective from the day the
customer was created); one with any of the last five gets one active primary payment method.

The marker. The rows M001 creates are recorded in two bookkeeping tables, so the reverse finds
exactly them and nothing the new application created:

    legacy_customer_billing (customer_id PK, agreement_id, payment_method_id, billing_frequency)
    legacy_service_plans    (service_plan_id PK)

legacy_customer_billing.billing_frequency is NULL except for a frequency no plan can hold. The
billing tables keep exactly the columns the product lists (no marker column in them), and the
values live in the billing tables only: reconstruct_sql() rebuilds the eight legacy values from
them, which is what both the reverse migration and validate_tenancy read. The marker tables
have no foreign keys on purpose: adding them would lock customers and the billing tables, and a
marker whose agreement was since deleted simply reconstructs NULLs.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

from django.db import transaction
from psycopg import sql

from routing.legacy import BILLING_COLUMN_NAMES, has_billing_columns
from tenants.conversion.journal import BACKWARD, FORWARD, checkpoint
from tenants.conversion.operations import with_short_lock

logger = logging.getLogger(__name__)

MARKER_TABLE = "legacy_customer_billing"
PLAN_MARKER_TABLE = "legacy_service_plans"
CHANGES_TABLE = "legacy_customer_billing_changes"
CHANGES_TRIGGER = "customers_legacy_billing_changes"
CHANGES_FUNCTION = "legacy_customer_billing_track_change"

PLAN_FREQUENCIES = ("weekly", "monthly", "per-visit")
AGREEMENT_COLUMNS = ("service_rate", "billing_frequency", "rate_notes")
PAYMENT_COLUMNS = (
    "payment_method_type",
    "stripe_customer_id",
    "stripe_payment_method_id",
    "payment_last_four",
    "payment_brand",
)
# The legacy column definitions, for the reverse (nullable, no default: catalog-only).
BILLING_COLUMN_DDL = {
    "service_rate": "numeric(10,2)",
    "billing_frequency": "varchar(20)",
    "rate_notes": "varchar(500)",
    "payment_method_type": "varchar(20)",
    "stripe_customer_id": "varchar(100)",
    "stripe_payment_method_id": "varchar(100)",
    "payment_last_four": "varchar(4)",
    "payment_brand": "varchar(50)",
}
assert tuple(BILLING_COLUMN_DDL) == BILLING_COLUMN_NAMES


# The journal checkpoint (tenants.conversion.journal) saying the reverse added the columns back
# and writes the values: a re-run after a crash goes on writing them.
RESTORE_CHECKPOINT = "restore-values"


# --- foreign keys to customers ------------------------------------------------------------------


def add_customer_foreign_key(connection, *, table: str, name: str) -> None:
    """customer_id -> customers ON DELETE CASCADE; SHARE ROW EXCLUSIVE on customers, briefly."""
    statement = sql.SQL(
        "ALTER TABLE {} ADD CONSTRAINT {} FOREIGN KEY (customer_id) REFERENCES customers (id) "
        "ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED"
    ).format(sql.Identifier(table), sql.Identifier(name))
    with_short_lock(connection, lambda cursor: cursor.execute(statement), f"add {name}")


def drop_customer_foreign_key(connection, *, table: str, name: str) -> None:
    statement = sql.SQL("ALTER TABLE {} DROP CONSTRAINT IF EXISTS {}").format(
        sql.Identifier(table), sql.Identifier(name)
    )
    with_short_lock(connection, lambda cursor: cursor.execute(statement), f"drop {name}")


# --- M001: the billing columns leave customers ------------------------------------------------

# The marker tables and the change log used while the columns are moved (see the module doc).
MARKER_DDL = f"""
CREATE TABLE IF NOT EXISTS {MARKER_TABLE} (
    customer_id uuid PRIMARY KEY,
    agreement_id uuid,
    payment_method_id uuid,
    billing_frequency varchar(20)
);
CREATE TABLE IF NOT EXISTS {PLAN_MARKER_TABLE} (service_plan_id uuid PRIMARY KEY);
COMMENT ON TABLE {MARKER_TABLE} IS
    'Rows created from the customers billing columns by routing.0006 (plan M001); its reverse '
    'reads them to put the values back. billing_frequency: only a legacy value no plan can hold.';
COMMENT ON TABLE {PLAN_MARKER_TABLE} IS
    'Service plans created from the customers billing columns by routing.0006 (plan M001).';
"""

CHANGES_DDL = f"""
CREATE TABLE IF NOT EXISTS {CHANGES_TABLE} (customer_id uuid PRIMARY KEY);
CREATE OR REPLACE FUNCTION {CHANGES_FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO {CHANGES_TABLE} (customer_id)
    VALUES (CASE WHEN TG_OP = 'DELETE' THEN OLD.id ELSE NEW.id END)
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END
$$;
DROP TRIGGER IF EXISTS {CHANGES_TRIGGER} ON customers;
CREATE TRIGGER {CHANGES_TRIGGER}
    AFTER INSERT OR DELETE OR UPDATE OF organization_id, {", ".join(BILLING_COLUMN_NAMES)}
    ON customers FOR EACH ROW EXECUTE FUNCTION {CHANGES_FUNCTION}();
"""

DROP_CHANGES_DDL = f"""
DROP TRIGGER IF EXISTS {CHANGES_TRIGGER} ON customers;
DROP FUNCTION IF EXISTS {CHANGES_FUNCTION}();
DROP TABLE IF EXISTS {CHANGES_TABLE};
"""

_FREQUENCIES = ", ".join(f"'{frequency}'" for frequency in PLAN_FREQUENCIES)


def _any_value(alias: str, columns: tuple[str, ...]) -> str:
    return f"num_nonnulls({', '.join(f'{alias}.{column}' for column in columns)}) > 0"


# A customer gets an agreement when it has one of these values, a payment method likewise.
_ANY_AGREEMENT_VALUE = _any_value("c", AGREEMENT_COLUMNS)
_ANY_PAYMENT_VALUE = _any_value("c", PAYMENT_COLUMNS)


def any_billing_value(alias: str) -> str:
    """SQL: the legacy customer `alias` has a billing value (one of the eight), so M001 moves it."""
    return _any_value(alias, AGREEMENT_COLUMNS + PAYMENT_COLUMNS)


def move_preview_sql(customers: str) -> str:
    """SQL counting what the move would create from the legacy customers of the relation
    `customers` (carrying the eight billing columns) into an organization that has none yet:
    one row, (customers with billing values, service plans, agreements, payment methods)."""
    return f"""
        SELECT count(*) FILTER (WHERE {any_billing_value("c")}),
               count(DISTINCT (c.billing_frequency, c.service_rate))
                   FILTER (WHERE c.billing_frequency IN ({_FREQUENCIES})),
               count(*) FILTER (WHERE {_ANY_AGREEMENT_VALUE}),
               count(*) FILTER (WHERE {_ANY_PAYMENT_VALUE})
        FROM {customers} c
    """


# The legacy plan a customer's (organization, frequency, rate) maps to.
_LEGACY_PLAN_MATCH = f"""
    SELECT p.id FROM service_plans p JOIN {PLAN_MARKER_TABLE} lp ON lp.service_plan_id = p.id
    WHERE p.organization_id = c.organization_id AND p.billing_frequency = c.billing_frequency
      AND p.base_rate IS NOT DISTINCT FROM c.service_rate
"""

# Each statement moves the customers in {scope} that no marker covers yet; run in this order.
# {customers} is where their billing values are read (customers itself, or staged rows).
_MOVE_TEMPLATES = (
    (
        "markers",
        f"""
        INSERT INTO {MARKER_TABLE} (customer_id, billing_frequency)
        SELECT c.id,
               CASE WHEN c.billing_frequency NOT IN ({_FREQUENCIES}) THEN c.billing_frequency END
        FROM {{customers}} c
        WHERE {{scope}} AND ({_ANY_AGREEMENT_VALUE} OR {_ANY_PAYMENT_VALUE})
          AND NOT EXISTS (SELECT 1 FROM {MARKER_TABLE} m WHERE m.customer_id = c.id)
        """,
    ),
    (
        "service plans",
        f"""
        WITH wanted AS (
            SELECT DISTINCT c.organization_id, c.billing_frequency, c.service_rate
            FROM {MARKER_TABLE} m JOIN {{customers}} c ON c.id = m.customer_id
            WHERE {{scope}} AND m.agreement_id IS NULL AND c.billing_frequency IN ({_FREQUENCIES})
        ), created AS (
            INSERT INTO service_plans
                (organization_id, name, description, base_rate, billing_frequency, is_active)
            SELECT w.organization_id,
                   'Legacy ' || w.billing_frequency || ' '
                       || coalesce(w.service_rate::text, '(no rate)'),
                   'Created from the billing columns of customers (plan step M001).',
                   w.service_rate, w.billing_frequency, true
            FROM wanted w
            WHERE NOT EXISTS (
                SELECT 1 FROM service_plans p
                JOIN {PLAN_MARKER_TABLE} lp ON lp.service_plan_id = p.id
                WHERE p.organization_id = w.organization_id
                  AND p.billing_frequency = w.billing_frequency
                  AND p.base_rate IS NOT DISTINCT FROM w.service_rate
            )
            RETURNING id
        )
        INSERT INTO {PLAN_MARKER_TABLE} (service_plan_id) SELECT id FROM created
        """,
    ),
    (
        "service agreements",
        f"""
        WITH created AS (
            INSERT INTO customer_service_agreements (organization_id, customer_id,
                service_plan_id, custom_rate, effective_date, end_date, rate_notes)
            SELECT c.organization_id, c.id,
                   (SELECT plan.id FROM ({_LEGACY_PLAN_MATCH}) plan LIMIT 1),
                   c.service_rate, c.created_at::date, NULL, c.rate_notes
            FROM {MARKER_TABLE} m JOIN {{customers}} c ON c.id = m.customer_id
            WHERE {{scope}} AND m.agreement_id IS NULL AND {_ANY_AGREEMENT_VALUE}
            RETURNING id, customer_id
        )
        UPDATE {MARKER_TABLE} m SET agreement_id = created.id
        FROM created WHERE m.customer_id = created.customer_id
        """,
    ),
    (
        "payment methods",
        f"""
        WITH created AS (
            INSERT INTO payment_methods (organization_id, customer_id, payment_type, is_primary,
                is_active, stripe_customer_id, stripe_payment_method_id, last_four, brand)
            SELECT c.organization_id, c.id, c.payment_method_type, true, true,
                   c.stripe_customer_id, c.stripe_payment_method_id, c.payment_last_four,
                   c.payment_brand
            FROM {MARKER_TABLE} m JOIN {{customers}} c ON c.id = m.customer_id
            WHERE {{scope}} AND m.payment_method_id IS NULL AND {_ANY_PAYMENT_VALUE}
            RETURNING id, customer_id
        )
        UPDATE {MARKER_TABLE} m SET payment_method_id = created.id
        FROM created WHERE m.customer_id = created.customer_id
        """,
    ),
)

# The statements on customers itself, as routing.0006 runs them (formatted with {scope} only).
_MOVE_STATEMENTS = tuple(
    (what, template.replace("{customers}", "customers")) for what, template in _MOVE_TEMPLATES
)

_EVERY_CUSTOMER = "true"
_CHANGED_CUSTOMERS = f"c.id IN (SELECT customer_id FROM {CHANGES_TABLE})"


def reconstruct_sql() -> str:
    """SQL giving, for every customer, the eight legacy billing values rebuilt from the billing
    tables: columns customer_id, service_rate, billing_frequency, rate_notes,
    payment_method_type, stripe_customer_id, stripe_payment_method_id, payment_last_four,
    payment_brand (all NULL for a customer that had none). Valid once routing.0006 has run.
    """
    return f"""
        SELECT c.id AS customer_id,
               a.custom_rate AS service_rate,
               coalesce(m.billing_frequency, p.billing_frequency)::varchar(20)
                   AS billing_frequency,
               a.rate_notes AS rate_notes,
               pm.payment_type AS payment_method_type,
               pm.stripe_customer_id AS stripe_customer_id,
               pm.stripe_payment_method_id AS stripe_payment_method_id,
               pm.last_four AS payment_last_four,
               pm.brand AS payment_brand
        FROM customers c
        LEFT JOIN {MARKER_TABLE} m ON m.customer_id = c.id
        LEFT JOIN customer_service_agreements a ON a.id = m.agreement_id
        LEFT JOIN service_plans p ON p.id = a.service_plan_id
        LEFT JOIN payment_methods pm ON pm.id = m.payment_method_id
    """


def legacy_customers_sql() -> str:
    """SQL for `customers` as it was before M001: every current column plus the eight billing
    values rebuilt by reconstruct_sql(). For the validator's row digests after M001, e.g.
    `SELECT ... FROM (<this>) AS t` with
    tenants.conversion.snapshot.digest_expression(columns, "t")."""
    billing = ", ".join(f"b.{name}" for name in BILLING_COLUMN_NAMES)
    return (
        f"SELECT customers.*, {billing} FROM customers "
        f"JOIN ({reconstruct_sql()}) b ON b.customer_id = customers.id"
    )


def snapshot_had_billing_columns(cursor) -> bool:
    """Whether customers had the billing columns when the pre-migration snapshot was taken.

    No snapshot row (it is taken by tenants.0001 on every database) falls back to the migration
    state, which has them.
    """
    cursor.execute("SELECT columns FROM tenancy_legacy_snapshot WHERE table_name = 'customers'")
    row = cursor.fetchone()
    if row is None:
        return True
    columns = row[0] if isinstance(row[0], list) else json.loads(row[0])
    return set(BILLING_COLUMN_NAMES) <= set(columns)


def _move(cursor, scope: str, customers: str = "customers") -> dict[str, int]:
    """Run the move for the customers in `scope`, reading their billing values from the relation
    `customers` (the table itself; import_organization passes its staged source rows, which
    carry the eight columns, organization_id and created_at under the ids they are given)."""
    counts = {}
    for what, template in _MOVE_TEMPLATES:
        cursor.execute(template.format(scope=scope, customers=customers))
        counts[what] = cursor.rowcount
    return counts


def _forget_changed(cursor) -> None:
    """Delete what was moved for the customers changed since, so _move moves them afresh."""
    cursor.execute(
        f"DELETE FROM customer_service_agreements a USING {MARKER_TABLE} m, {CHANGES_TABLE} ch "
        f"WHERE a.id = m.agreement_id AND m.customer_id = ch.customer_id"
    )
    cursor.execute(
        f"DELETE FROM payment_methods pm USING {MARKER_TABLE} m, {CHANGES_TABLE} ch "
        f"WHERE pm.id = m.payment_method_id AND m.customer_id = ch.customer_id"
    )
    cursor.execute(
        f"DELETE FROM {MARKER_TABLE} m USING {CHANGES_TABLE} ch "
        f"WHERE m.customer_id = ch.customer_id"
    )


def _forget_stale_markers(cursor) -> int:
    """Markers whose agreement or payment method is gone (an interrupted run whose billing
    tables were rolled back and recreated): forget what is left of them so the move redoes
    those customers instead of skipping them."""
    stale = (
        f"SELECT customer_id FROM {MARKER_TABLE} m WHERE "
        f"(m.agreement_id IS NOT NULL AND NOT EXISTS "
        f"(SELECT 1 FROM customer_service_agreements a WHERE a.id = m.agreement_id)) OR "
        f"(m.payment_method_id IS NOT NULL AND NOT EXISTS "
        f"(SELECT 1 FROM payment_methods pm WHERE pm.id = m.payment_method_id))"
    )
    cursor.execute(
        f"DELETE FROM customer_service_agreements a USING {MARKER_TABLE} m "
        f"WHERE a.id = m.agreement_id AND m.customer_id IN ({stale})"
    )
    cursor.execute(
        f"DELETE FROM payment_methods pm USING {MARKER_TABLE} m "
        f"WHERE pm.id = m.payment_method_id AND m.customer_id IN ({stale})"
    )
    cursor.execute(f"DELETE FROM {MARKER_TABLE} WHERE customer_id IN ({stale})")
    return cursor.rowcount


def _customers_not_reconstructible(cursor, scope: str, limit: int = 5) -> list[str]:
    """Customers in `scope` whose billing columns differ from what the billing tables rebuild."""
    live = ", ".join(f"c.{name}" for name in BILLING_COLUMN_NAMES)
    rebuilt = ", ".join(f"r.{name}" for name in BILLING_COLUMN_NAMES)
    cursor.execute(
        f"SELECT c.id FROM customers c JOIN ({reconstruct_sql()}) r ON r.customer_id = c.id "
        f"WHERE ({scope}) AND ({live}) IS DISTINCT FROM ({rebuilt}) LIMIT {int(limit)}"
    )
    return [str(row[0]) for row in cursor.fetchall()]


def _refuse_to_drop_unless_reconstructible(cursor, scope: str) -> None:
    lost = _customers_not_reconstructible(cursor, scope)
    if lost:
        raise BillingMoveIncomplete(
            f"M001 stopped before dropping the billing columns of customers: the billing "
            f"tables do not rebuild the values of customer(s) {', '.join(lost)}; nothing was "
            f"dropped. Run migrate again (the move resumes); if this persists, keep the columns "
            f"and report it"
        )


class BillingMoveIncomplete(Exception):
    """The billing tables would not give back every customer's billing values: no drop."""


def _delete_unused_legacy_plans(cursor) -> int:
    cursor.execute(
        f"""
        WITH unused AS (
            DELETE FROM {PLAN_MARKER_TABLE} lp
            WHERE NOT EXISTS (SELECT 1 FROM customer_service_agreements a
                              WHERE a.service_plan_id = lp.service_plan_id)
            RETURNING service_plan_id
        )
        DELETE FROM service_plans p USING unused WHERE p.id = unused.service_plan_id
        """
    )
    return cursor.rowcount


MOVE_BATCH_SIZE = 5000
MOVE_ATTEMPTS = 5
M001 = ("routing", "0006_move_billing_columns")


def _batches(connection, batch_size: int) -> list[str]:
    """Scopes (SQL on customers c) covering every customer in keyset ranges of `batch_size`."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id FROM (SELECT id, row_number() OVER (ORDER BY id) AS n FROM customers) s "
            "WHERE n %% %s = 0 ORDER BY id",
            [batch_size],
        )
        bounds = [str(row[0]) for row in cursor.fetchall()]
    scopes, low = [], None
    for high in [*bounds, None]:
        conditions = [f"c.id > '{low}'::uuid"] if low else []
        if high:
            conditions.append(f"c.id <= '{high}'::uuid")
        scopes.append(" AND ".join(conditions) or _EVERY_CUSTOMER)
        low = high
    return scopes


def _move_batch(connection, scope: str, progress) -> dict[str, int]:
    """One batch in its own short transaction. The old application may delete one of its
    customers meanwhile: the agreement's deferred foreign key then fails at COMMIT, and the
    batch is moved again from what is left (the deleted customer is no longer selected)."""
    from django.db import IntegrityError

    for attempt in range(1, MOVE_ATTEMPTS + 1):
        try:
            with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
                moved = _move(cursor, scope)
                checkpoint(connection, *M001, FORWARD, "batch-before-commit", crash=False)
                return moved
        except IntegrityError as error:
            if getattr(error.__cause__, "sqlstate", None) != "23503" or attempt == MOVE_ATTEMPTS:
                raise
            progress("  a customer was deleted while its billing values moved: batch moved again")
    raise AssertionError("unreachable")


def move_billing_columns(
    connection, *, progress: Callable[[str], None] = print, batch_size: int = MOVE_BATCH_SIZE
) -> None:
    """Forward M001: move the billing values into the billing tables, then drop the columns.

    1. Marker tables (new tables), and a trigger recording every customer inserted, deleted or
       whose billing columns change from now on (SHARE ROW EXCLUSIVE on customers, briefly).
    2. The move, set-wise, in keyset batches of `batch_size` customers, each its own short
       transaction: reads customers under ACCESS SHARE, so the old application keeps reading
       and writing; a batch whose customer the old application deleted meanwhile (the deferred
       foreign key fails at COMMIT) is moved again without it.
    3. Under ACCESS EXCLUSIVE, held for milliseconds: the customers the trigger recorded during
       step 2 (updated, deleted or inserted) are moved again from their current values, then
       the trigger and the eight columns are dropped (catalog-only). Nothing written meanwhile
       is lost.
    Before each drop the billing tables must rebuild every customer's values (reconstruct_sql);
    otherwise BillingMoveIncomplete stops it with nothing dropped. Markers left by an earlier
    run whose billing rows are gone are forgotten first, so those customers are moved again.
    Every step is idempotent: a crashed run is resumed by running migrate again.
    """
    with connection.cursor() as cursor:
        cursor.execute(MARKER_DDL)
        if not has_billing_columns(cursor):
            progress("  customers has no billing columns: nothing to move, nothing to drop")
            return

    with_short_lock(connection, lambda cursor: cursor.execute(CHANGES_DDL), "track changes")
    checkpoint(connection, M001[0], M001[1], FORWARD, "tracking")

    with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
        if forgotten := _forget_stale_markers(cursor):
            progress(f"  {forgotten} customers of an interrupted earlier run are moved again")
    counts = dict.fromkeys((name for name, _statement in _MOVE_STATEMENTS), 0)
    for number, scope in enumerate(_batches(connection, batch_size), start=1):
        for key, value in _move_batch(connection, scope, progress).items():
            counts[key] += value
        checkpoint(connection, M001[0], M001[1], FORWARD, f"moved-batch-{number}")
    with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
        # Nothing is dropped unless the billing tables give every value back (customers the
        # old application changed since their batch moved are moved again, and checked, under
        # the lock).
        _refuse_to_drop_unless_reconstructible(cursor, f"NOT ({_CHANGED_CUSTOMERS})")
    checkpoint(connection, M001[0], M001[1], FORWARD, "moved")
    progress(
        f"  moved the billing values of {counts['markers']} customers: "
        f"{counts['service plans']} service plans, {counts['service agreements']} agreements, "
        f"{counts['payment methods']} payment methods"
    )

    def finish(cursor):
        cursor.execute("LOCK TABLE customers IN ACCESS EXCLUSIVE MODE")
        cursor.execute(f"SELECT count(*) FROM {CHANGES_TABLE}")
        changed = cursor.fetchone()[0]
        if changed:
            _forget_changed(cursor)
            _move(cursor, _CHANGED_CUSTOMERS)
            _delete_unused_legacy_plans(cursor)
            progress(f"  moved again {changed} customers written while the move ran")
            _refuse_to_drop_unless_reconstructible(cursor, _CHANGED_CUSTOMERS)
        cursor.execute(DROP_CHANGES_DDL)
        drops = ", ".join(f"DROP COLUMN IF EXISTS {name}" for name in BILLING_COLUMN_NAMES)
        cursor.execute(f"ALTER TABLE customers {drops}")

    with_short_lock(connection, finish, "drop the billing columns of customers")
    progress("  dropped the eight billing columns of customers")


def restore_billing_columns(
    connection, *, progress: Callable[[str], None] = print, batch_size: int = 5000
) -> None:
    """Reverse M001: the eight columns back on customers, each value exactly as it was.

    Only when the pre-migration snapshot says customers had them (a database adopted without
    them gets none). ADD COLUMN (nullable, no default) is catalog-only; the values are written
    back for the billing customers only, in keyset batches by id, each its own transaction; the
    billing rows M001 created are deleted last, so a crash anywhere is resumed by re-running.
    """
    from tenants.conversion.journal import checkpoint_since_start

    with connection.cursor() as cursor:
        had_columns = snapshot_had_billing_columns(cursor)
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [MARKER_TABLE])
        markers = cursor.fetchone()[0]
        present = has_billing_columns(cursor)
    # The values are written back when this reverse added the columns, or an earlier run of it
    # did and was interrupted (the journal says so). Columns still present otherwise mean the
    # forward never dropped them (a crash before its last step): they hold the current values,
    # which nothing overwrites.
    restoring = not present or checkpoint_since_start(
        connection, *M001, BACKWARD, RESTORE_CHECKPOINT
    )

    if had_columns:
        adds = ", ".join(
            f"ADD COLUMN IF NOT EXISTS {name} {ddl}" for name, ddl in BILLING_COLUMN_DDL.items()
        )

        def add_columns(cursor):
            cursor.execute(f"ALTER TABLE customers {adds}")
            if not present:  # in the same transaction: the journal never lies about it
                checkpoint(connection, *M001, BACKWARD, RESTORE_CHECKPOINT, crash=False)

        with_short_lock(connection, add_columns, "add the billing columns back to customers")
        checkpoint(connection, *M001, BACKWARD, "columns-added")
        if markers and restoring:
            restored = _restore_values(connection, progress=progress, batch_size=batch_size)
            progress(f"  restored the billing values of {restored} customers")
        elif markers:
            progress("  the billing columns were never dropped: their values are kept as they are")

    with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
        cursor.execute(DROP_CHANGES_DDL)
        if markers:
            cursor.execute(
                f"DELETE FROM customer_service_agreements a USING {MARKER_TABLE} m "
                f"WHERE a.id = m.agreement_id"
            )
            cursor.execute(
                f"DELETE FROM payment_methods pm USING {MARKER_TABLE} m "
                f"WHERE pm.id = m.payment_method_id"
            )
            _delete_unused_legacy_plans(cursor)
        cursor.execute(f"DROP TABLE IF EXISTS {MARKER_TABLE}, {PLAN_MARKER_TABLE}")


def _restore_values(connection, *, progress, batch_size: int) -> int:
    assignments = ", ".join(f"{name} = v.{name}" for name in BILLING_COLUMN_NAMES)
    update = (
        f"UPDATE customers c SET {assignments} "
        f"FROM ({reconstruct_sql()}) v "
        f"WHERE v.customer_id = c.id AND c.id = ANY(%s::uuid[])"
    )
    restored, last_id = 0, None
    while True:
        with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
            cursor.execute(
                f"SELECT customer_id FROM {MARKER_TABLE} "
                f"WHERE %s::uuid IS NULL OR customer_id > %s::uuid ORDER BY customer_id LIMIT %s",
                [last_id, last_id, batch_size],
            )
            ids = [row[0] for row in cursor.fetchall()]
            if not ids:
                return restored
            cursor.execute(update, [ids])
            restored += cursor.rowcount
        last_id = ids[-1]
        progress(f"  customers: billing values restored for {restored} rows")
        checkpoint(connection, *M001, BACKWARD, "restored-batch")
