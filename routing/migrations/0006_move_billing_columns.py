"""Plan step M001: the eight billing columns leave customers, their values kept in billing.

The plan drops service_rate, billing_frequency, rate_notes, payment_method_type,
stripe_customer_id, stripe_payment_method_id, payment_last_four and payment_brand. Where they
hold values, those are moved first (billing.legacy owns the mapping, both ways): per customer
with any of the first three, one current customer_service_agreements row (custom_rate,
rate_notes, effective from the customer's creation date) on a "Legacy <frequency> <rate>"
service plan of its organization (no plan when the frequency is NULL); per customer with any of
the last five, one active primary payment_methods row. The rows created are recorded in the
marker tables legacy_customer_billing and legacy_service_plans, which the reverse reads.

A database adopted without the billing columns (checked in the catalog) has nothing to move and
nothing to drop, and its reverse adds nothing: the pre-migration snapshot
(tenancy_legacy_snapshot, row 'customers', its `columns`) says whether they existed.

Locks on customers, forward:
- a trigger recording the customers written while the move runs: SHARE ROW EXCLUSIVE for
  milliseconds (CREATE TRIGGER), requested with a 50 ms lock_timeout and retried;
- the move, set-wise in one transaction: ACCESS SHARE only (a read); the old application keeps
  reading and writing; row locks are taken on the new billing rows only;
- ACCESS EXCLUSIVE for milliseconds (short lock_timeout, retried): the customers the trigger
  recorded are moved again from their current values, the trigger goes, and the eight columns
  are dropped. DROP COLUMN is catalog-only: no rewrite, the space is reused by later updates.
Reverse: ADD COLUMN (nullable, no default) x8 is catalog-only, ACCESS EXCLUSIVE for
milliseconds; the UPDATE that puts the values back rewrites the rows of the billing customers
only (those with a marker), in keyset batches of 5,000 by id, each its own transaction (ROW
EXCLUSIVE plus those rows' locks); then the billing rows M001 created are deleted (a legacy
plan the new application has since used for its own agreements is kept).

atomic = False: each step commits on its own and releases its lock at once; every step is
idempotent, so an interrupted run (either way) is resumed by running the migration again.
"""

from django.db import migrations

from routing.legacy import BILLING_COLUMN_NAMES


def move_billing_columns(apps, schema_editor):
    from billing.legacy import move_billing_columns

    move_billing_columns(schema_editor.connection, progress=print)


def restore_billing_columns(apps, schema_editor):
    from billing.legacy import restore_billing_columns

    restore_billing_columns(schema_editor.connection, progress=print)




class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("routing", "0005_route_stops_organization"),
        ("billing", "0003_payment_methods"),
        ("tenants", "0004_seed_default_organization"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.RunPython(
                    move_billing_columns, restore_billing_columns, elidable=False
                ),
            ],
            state_operations=[
                migrations.RemoveField(model_name="customer", name=name) for name in BILLING_COLUMN_NAMES
            ],
        ),
    ]
