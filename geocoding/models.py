"""Geocoding cache (plan M017): provider answers keyed by the SHA-256 of the normalized address."""

import uuid

from django.contrib.postgres.functions import RandomUUID
from django.db import models
from django.db.models import Q
from django.db.models.functions import Now
from django.utils import timezone

from tenants.models import MapProvider


class GeocodingCacheEntry(models.Model):
    """One geocoded address. Shared by every organization: an address is not tenant data.

    Written and read through geocoding.services only (the hash must match the normalization).
    """

    id = models.UUIDField(
        primary_key=True, default=uuid.uuid4, db_default=RandomUUID(), editable=False
    )
    address_hash = models.CharField(max_length=64, editable=False)
    normalized_address = models.TextField()
    latitude = models.FloatField()
    longitude = models.FloatField()
    formatted_address = models.TextField(blank=True, default="", db_default="")
    provider = models.CharField(max_length=50, choices=MapProvider.choices)
    # The provider's confidence scaled to 0..1 by the service that stores it.
    confidence = models.FloatField(null=True, blank=True)
    metadata = models.JSONField(default=dict, db_default={}, blank=True)
    # The store counts as the first use; every cache hit adds one.
    hit_count = models.IntegerField(default=1, db_default=1)
    created_at = models.DateTimeField(default=timezone.now, db_default=Now())
    last_used_at = models.DateTimeField(default=timezone.now, db_default=Now())

    class Meta:
        db_table = "geocoding_cache"
        verbose_name = "geocoding cache entry"
        verbose_name_plural = "geocoding cache entries"
        ordering = ["-last_used_at"]
        constraints = [
            # The plan's idx_geocoding_cache_hash is this constraint's unique index.
            models.UniqueConstraint(fields=["address_hash"], name="idx_geocoding_cache_hash"),
            models.CheckConstraint(
                condition=Q(address_hash__regex=r"^[0-9a-f]{64}$"),
                name="geocoding_cache_hash_is_sha256_hex",
            ),
            models.CheckConstraint(
                condition=Q(provider__in=MapProvider.values), name="geocoding_cache_provider_valid"
            ),
            models.CheckConstraint(
                condition=Q(
                    latitude__gte=-90, latitude__lte=90, longitude__gte=-180, longitude__lte=180
                ),
                name="geocoding_cache_coordinates_valid",
            ),
            models.CheckConstraint(
                condition=Q(confidence__isnull=True) | Q(confidence__gte=0, confidence__lte=1),
                name="geocoding_cache_confidence_0_1",
            ),
            models.CheckConstraint(
                condition=Q(hit_count__gte=1), name="geocoding_cache_hit_count_positive"
            ),
        ]
        indexes = [
            models.Index(fields=["provider"], name="idx_geocoding_cache_provider"),
            models.Index(fields=["last_used_at"], name="idx_geocoding_cache_last_used"),
        ]

    def __str__(self):
        return self.normalized_address
