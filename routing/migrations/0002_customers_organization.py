"""Plan step M006: customers.organization_id, every legacy row in the default organization.

The plan's version (nullable column, UPDATE of every row, SET NOT NULL, foreign key, index, in
one transaction) holds ACCESS EXCLUSIVE on customers for as long as the UPDATE rewrites the
table. Ours never rewrites it and never blocks writers for longer than milliseconds:

1. ADD COLUMN organization_id DEFAULT <default organization>: catalog-only (PostgreSQL 11+),
   ACCESS EXCLUSIVE for milliseconds; existing rows read the default, and rows the old
   application inserts from now on get it too (the "expand" half; see contract_tenancy).
2. Backfill (RunPython): rows still without an organization get the default one in keyset
   batches of 5,000, each its own transaction. Normally one sequential scan finds none.
3. NOT NULL via a CHECK added NOT VALID, validated under SHARE UPDATE EXCLUSIVE (one scan,
   writes go on), then SET NOT NULL without a scan: ACCESS EXCLUSIVE for milliseconds.
4. fk_customers_organization added NOT VALID (SHARE ROW EXCLUSIVE, milliseconds), validated
   under SHARE UPDATE EXCLUSIVE (one scan, writes go on).
5. idx_customers_org built CONCURRENTLY (SHARE UPDATE EXCLUSIVE, one scan and a sort).

What grows with the table's size (the scans, the index build) runs under locks that let the
old application keep reading and writing. Every step is idempotent, so a run interrupted by
a crash resumes when `migrate` runs again; atomic = False lets each statement commit (and
release its lock) on its own. Reverse: drop the index, the key, NOT NULL and the column, all
catalog-only.
"""

from django.db import migrations

from tenants.conversion.operations import organization_column_operations


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("routing", "0001_legacy_schema"),
        ("tenants", "0004_seed_default_organization"),
    ]

    operations = organization_column_operations(
        model_name="customer", table="customers", related_name="customers"
    )
