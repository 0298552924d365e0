"""The geocoding cache (plan M017): normalization, hashing, hit counting and 90-day expiry."""

import datetime
import hashlib
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import IntegrityError, transaction
from django.utils import timezone

from geocoding.models import GeocodingCacheEntry
from geocoding.services import (
    address_hash,
    cache_lookup,
    cache_store,
    normalize_address,
    purge_expired,
)
from tests.factories import GeocodingCacheEntryFactory


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        ("  12 Main St.,\n  Springfield. ", "12 main st., springfield"),
        ("12 MAIN ST, SPRINGFIELD", "12 main st, springfield"),
        ("12\tMain   St,  Springfield", "12 main st, springfield"),
        ('"12 Main St, Springfield"', "12 main st, springfield"),
        ("Straße 5, Köln", "strasse 5, köln"),  # casefold, not lower
        ("A\u030angström Way", "ångström way"),  # combining ring == precomposed Å
        ("...", ""),
    ],
)
def test_normalize_address(raw, normalized):
    assert normalize_address(raw) == normalized


def test_address_hash_is_the_sha256_hex_of_the_normalized_address():
    expected = hashlib.sha256(b"12 main st, springfield").hexdigest()

    assert address_hash(" 12 MAIN St,   Springfield. ") == expected
    assert address_hash("12 main st, springfield") == expected
    assert address_hash("13 main st, springfield") != expected


@pytest.mark.django_db
def test_store_then_lookup_of_another_spelling_is_a_hit():
    stored = cache_store(
        address="12 Main St, Springfield",
        latitude=39.78,
        longitude=-89.65,
        provider="openstreetmap",
        formatted_address="12 Main Street, Springfield, IL",
        confidence=0.9,
        metadata={"osm_id": 42},
    )

    found = cache_lookup("  12 MAIN ST,  springfield ")

    assert found is not None and found.pk == stored.pk
    assert (found.latitude, found.longitude) == (39.78, -89.65)
    assert found.metadata == {"osm_id": 42}
    assert found.normalized_address == "12 main st, springfield"
    assert found.address_hash == address_hash("12 Main St, Springfield")


@pytest.mark.django_db
def test_lookup_miss_returns_none_and_creates_nothing():
    assert cache_lookup("1 Nowhere Rd") is None
    assert not GeocodingCacheEntry.objects.exists()


@pytest.mark.django_db
def test_every_hit_is_counted_and_refreshes_last_used():
    long_ago = timezone.now() - datetime.timedelta(days=30)
    entry = GeocodingCacheEntryFactory(
        normalized_address="12 main st, springfield",
        address_hash=address_hash("12 main st, springfield"),
        last_used_at=long_ago,
    )
    assert entry.hit_count == 1  # storing is the first use

    for _ in range(3):
        hit = cache_lookup("12 Main St, Springfield")

    entry.refresh_from_db()
    assert entry.hit_count == 4
    assert hit.hit_count == 4  # the returned row is the updated one
    assert entry.last_used_at > long_ago + datetime.timedelta(days=29)


@pytest.mark.django_db
def test_storing_again_refreshes_the_answer_and_keeps_the_count():
    first = cache_store(address="12 Main St", latitude=1.0, longitude=2.0, provider="openstreetmap")
    cache_lookup("12 main st")

    again = cache_store(address="12 MAIN ST.", latitude=1.5, longitude=2.5, provider="google_maps")

    assert again.pk == first.pk
    assert GeocodingCacheEntry.objects.count() == 1
    assert (again.latitude, again.provider, again.hit_count) == (1.5, "google_maps", 2)


@pytest.mark.django_db
def test_entry_unused_for_90_days_is_expired_for_lookups():
    GeocodingCacheEntryFactory(
        normalized_address="12 main st",
        address_hash=address_hash("12 main st"),
        last_used_at=timezone.now() - datetime.timedelta(days=91),
    )

    assert cache_lookup("12 Main St") is None


@pytest.mark.django_db
def test_purge_deletes_only_entries_unused_for_90_days():
    now = timezone.now()
    stale = GeocodingCacheEntryFactory(last_used_at=now - datetime.timedelta(days=90, seconds=1))
    GeocodingCacheEntryFactory(last_used_at=now - datetime.timedelta(days=400))
    kept = GeocodingCacheEntryFactory(last_used_at=now - datetime.timedelta(days=89, hours=23))
    fresh = GeocodingCacheEntryFactory(
        created_at=now - datetime.timedelta(days=400), last_used_at=now
    )

    assert purge_expired(now=now) == 2

    remaining = set(GeocodingCacheEntry.objects.values_list("pk", flat=True))
    assert remaining == {kept.pk, fresh.pk}
    assert stale.pk not in remaining


@pytest.mark.django_db(transaction=True)  # the command connects as the owner: committed rows
def test_purge_command_reports_what_it_deleted():
    GeocodingCacheEntryFactory(last_used_at=timezone.now() - datetime.timedelta(days=120))
    GeocodingCacheEntryFactory()
    out = StringIO()

    call_command("purge_geocoding_cache", stdout=out)

    assert "Deleted 1 geocoding cache entry unused for 90 days." in out.getvalue()
    assert GeocodingCacheEntry.objects.count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("fields", "constraint"),
    [
        ({"provider": "bing"}, "geocoding_cache_provider_valid"),
        ({"address_hash": "not-a-hash"}, "geocoding_cache_hash_is_sha256_hex"),
        ({"latitude": 91.0}, "geocoding_cache_coordinates_valid"),
        ({"confidence": 1.5}, "geocoding_cache_confidence_0_1"),
    ],
)
def test_invalid_entries_are_rejected_by_postgresql(fields, constraint):
    with pytest.raises(IntegrityError, match=constraint), transaction.atomic():
        GeocodingCacheEntryFactory(**fields)


@pytest.mark.django_db
def test_one_entry_per_address_hash():
    entry = GeocodingCacheEntryFactory()

    with pytest.raises(IntegrityError, match="idx_geocoding_cache_hash"), transaction.atomic():
        GeocodingCacheEntryFactory(
            address_hash=entry.address_hash, normalized_address=entry.normalized_address
        )
