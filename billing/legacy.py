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

import logging
import time
from collections.abc import Callable

from django.db import OperationalError, transaction
from psycopg import errors, sql

from routing.legacy import BILLING_COLUMN_NAMES
from tenants.operations import LOCK_ATTEMPTS, LOCK_TIMEOUT, LockNotAcquired

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


# --- foreign keys to customers ------------------------------------------------------------------


def _with_short_lock(connection, work: Callable[[object], None], what: str) -> None:
    """Run `work(cursor)` in a transaction (a savepoint inside a migration's transaction) whose
    lock requests give up after LOCK_TIMEOUT, retried: writers never queue behind us for long."""
    delay = 0.05
    for attempt in range(1, LOCK_ATTEMPTS + 1):
        try:
            with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
                cursor.execute("SELECT current_setting('lock_timeout')")
                previous = cursor.fetchone()[0]
                cursor.execute("SELECT set_config('lock_timeout', %s, true)", [LOCK_TIMEOUT])
                work(cursor)
                cursor.execute("SELECT set_config('lock_timeout', %s, true)", [previous])
            return
        except OperationalError as error:
            if not isinstance(error.__cause__, errors.LockNotAvailable):
                raise
            logger.info("%s: lock not available (attempt %s)", what, attempt)
            time.sleep(delay)
            delay = min(delay * 1.5, 1.0)
    raise LockNotAcquired(
        f"could not take a short lock to {what} after {LOCK_ATTEMPTS} attempts: a long-running "
        f"transaction holds the table; end it and re-run migrate"
    )


def add_customer_foreign_key(connection, *, table: str, name: str) -> None:
    """customer_id -> customers ON DELETE CASCADE; SHARE ROW EXCLUSIVE on customers, briefly."""
    statement = sql.SQL(
        "ALTER TABLE {} ADD CONSTRAINT {} FOREIGN KEY (customer_id) REFERENCES customers (id) "
        "ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED"
    ).format(sql.Identifier(table), sql.Identifier(name))
    _with_short_lock(connection, lambda cursor: cursor.execute(statement), f"add {name}")


def drop_customer_foreign_key(connection, *, table: str, name: str) -> None:
    statement = sql.SQL("ALTER TABLE {} DROP CONSTRAINT IF EXISTS {}").format(
        sql.Identifier(table), sql.Identifier(name)
    )
    _with_short_lock(connection, lambda cursor: cursor.execute(statement), f"drop {name}")
