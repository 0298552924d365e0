"""Plan step M016: geocoding metadata on drivers (geocoding_provider, geocoded_by, geocoded_at).

As M015 (routing.0007) for drivers: catalog-only column adds (ACCESS EXCLUSIVE for
milliseconds, short lock_timeout, retried); fk_drivers_geocoded_by -> users ON DELETE SET NULL
added NOT VALID then validated under SHARE UPDATE EXCLUSIVE; the plan's backfill for drivers
whose start location has coordinates (start_latitude, start_longitude): provider
'openstreetmap', geocoded_at = created_at, in batches of 1,000 physical pages, each its own
transaction, only rows still NULL; idx_drivers_geocoding_provider and a partial
idx_drivers_geocoded_by built CONCURRENTLY.

atomic = False, every step idempotent. Reverse: the indexes dropped concurrently, then the three
columns (catalog-only).
"""

from django.conf import settings
from django.db import migrations

from geocoding.metadata import geocoding_metadata_operations


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("routing", "0007_customers_geocoding"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = geocoding_metadata_operations(
        model_name="driver",
        table="drivers",
        related_name="geocoded_drivers",
    )
