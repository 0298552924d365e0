"""Plan step M015: geocoding metadata on customers (geocoding_provider, geocoded_by, geocoded_at).

The plan's version adds the columns, UPDATEs every geocoded customer and builds the index in
one transaction, holding ACCESS EXCLUSIVE on customers while the table is rewritten. Ours
(geocoding.metadata):

1. ADD COLUMN geocoding_provider varchar(50), geocoded_by uuid, geocoded_at timestamp: nullable
   without a default, catalog-only: ACCESS EXCLUSIVE for milliseconds (50 ms lock_timeout,
   retried, so writers never queue behind it for longer).
2. fk_customers_geocoded_by -> users ON DELETE SET NULL, added NOT VALID (SHARE ROW EXCLUSIVE
   on customers and users, milliseconds), validated under SHARE UPDATE EXCLUSIVE (a scan while
   reads and writes go on).
3. Backfill as the plan says: customers with latitude and longitude get provider
   'openstreetmap' and geocoded_at = created_at. Batches of 1,000 physical pages (TID range
   scans), each its own transaction (ROW EXCLUSIVE, FOR NO KEY UPDATE row locks on the batch
   only, which do not block the old application's foreign-key checks), progress printed; only
   rows whose metadata is still NULL, so a re-run is harmless. Time grows with the table, but
   nothing waits on it for longer than one batch.
4. idx_customers_geocoding_provider, and a partial idx_customers_geocoded_by (for ON DELETE SET
   NULL), built CONCURRENTLY: SHARE UPDATE EXCLUSIVE, reads and writes go on.

atomic = False: every step commits on its own and is idempotent; an interrupted run resumes
when migrate runs again. Reverse: drop the indexes concurrently, then the three columns
(catalog-only; the foreign key goes with its column); the legacy columns are untouched.
"""

from django.conf import settings
from django.db import migrations

from geocoding.metadata import geocoding_metadata_operations


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("routing", "0006_move_billing_columns"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = geocoding_metadata_operations(
        model_name="customer",
        table="customers",
        related_name="geocoded_customers",
    )
