"""Plan step M017: geocoding_cache, provider answers keyed by the SHA-256 of the normalized address.

A new table: the only lock is on the table being created. Indexes as the plan names them: the
unique constraint on address_hash is idx_geocoding_cache_hash (a second, plain index on the
same column would only slow writes), idx_geocoding_cache_provider, and
idx_geocoding_cache_last_used, which serves the 90-day expiry (geocoding.services.purge_expired).
"""

import django.contrib.postgres.functions
import django.db.models.functions.datetime
import django.utils.timezone
import uuid
from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True

    dependencies = []

    operations = [
        migrations.CreateModel(
            name="GeocodingCacheEntry",
            fields=[
                ("id", models.UUIDField(db_default=django.contrib.postgres.functions.RandomUUID(), default=uuid.uuid4, editable=False, primary_key=True, serialize=False)),
                ("address_hash", models.CharField(editable=False, max_length=64)),
                ("normalized_address", models.TextField()),
                ("latitude", models.FloatField()),
                ("longitude", models.FloatField()),
                ("formatted_address", models.TextField(blank=True, db_default="", default="")),
                ("provider", models.CharField(choices=[("openstreetmap", "Openstreetmap"), ("google_maps", "Google Maps")], max_length=50)),
                ("confidence", models.FloatField(blank=True, null=True)),
                ("metadata", models.JSONField(blank=True, db_default={}, default=dict)),
                ("hit_count", models.IntegerField(db_default=1, default=1)),
                ("created_at", models.DateTimeField(db_default=django.db.models.functions.datetime.Now(), default=django.utils.timezone.now)),
                ("last_used_at", models.DateTimeField(db_default=django.db.models.functions.datetime.Now(), default=django.utils.timezone.now)),
            ],
            options={
                "verbose_name": "geocoding cache entry",
                "verbose_name_plural": "geocoding cache entries",
                "db_table": "geocoding_cache",
                "ordering": ["-last_used_at"],
                "indexes": [
                    models.Index(fields=["provider"], name="idx_geocoding_cache_provider"),
                    models.Index(fields=["last_used_at"], name="idx_geocoding_cache_last_used"),
                ],
                "constraints": [
                    models.UniqueConstraint(fields=("address_hash",), name="idx_geocoding_cache_hash"),
                    models.CheckConstraint(condition=models.Q(("address_hash__regex", "^[0-9a-f]{64}$")), name="geocoding_cache_hash_is_sha256_hex"),
                    models.CheckConstraint(condition=models.Q(("provider__in", ["openstreetmap", "google_maps"])), name="geocoding_cache_provider_valid"),
                    models.CheckConstraint(condition=models.Q(("latitude__gte", -90), ("latitude__lte", 90), ("longitude__gte", -180), ("longitude__lte", 180)), name="geocoding_cache_coordinates_valid"),
                    models.CheckConstraint(condition=models.Q(("confidence__isnull", True), models.Q(("confidence__gte", 0), ("confidence__lte", 1)), _connector="OR"), name="geocoding_cache_confidence_0_1"),
                    models.CheckConstraint(condition=models.Q(("hit_count__gte", 1)), name="geocoding_cache_hit_count_positive"),
                ],
            },
        ),
    ]
