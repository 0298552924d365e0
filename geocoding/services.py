"""The geocoding cache in front of the providers: normalize, hash, look up, store, expire.

Provider HTTP clients are out of scope here; they call cache_lookup first and cache_store with
what the provider answered. The cache is shared by every organization, so the application role
reaches it by an address's hash only, through tenancy_geocode_lookup() and
tenancy_geocode_store() (tenants.verification): nobody lists the addresses organizations serve.
"""

from __future__ import annotations

import hashlib
import json
import unicodedata
from datetime import datetime, timedelta

from django.utils import timezone

from billing import usage
from geocoding.models import GeocodingCacheEntry

# Entries not used for this long expire: lookups stop returning them, purge_expired deletes them.
CACHE_TTL = timedelta(days=90)

_ENTRY_COLUMNS = (
    "id, address_hash, normalized_address, latitude, longitude, formatted_address, provider, "
    "confidence, metadata, hit_count, created_at, last_used_at"
)


def normalize_address(text: str) -> str:
    """The form two spellings of one address share: NFKC, casefolded, single spaces, no
    punctuation at either end ("  12 Main St.,\\n Springfield. " -> "12 main st., springfield").

    NFKC first, so that a composed "Å" and "A" + combining ring hash alike.
    """
    folded = unicodedata.normalize("NFKC", text).casefold()
    collapsed = " ".join(folded.split())
    start, end = 0, len(collapsed)
    while start < end and _is_edge_noise(collapsed[start]):
        start += 1
    while end > start and _is_edge_noise(collapsed[end - 1]):
        end -= 1
    return collapsed[start:end]


def _is_edge_noise(character: str) -> bool:
    return character.isspace() or unicodedata.category(character).startswith("P")


def address_hash(text: str) -> str:
    """SHA-256 (hex) of the normalized address: the cache key."""
    return hashlib.sha256(normalize_address(text).encode("utf-8")).hexdigest()


def cache_lookup(address: str) -> GeocodingCacheEntry | None:
    """The cached answer for `address`, counting the hit; None on a miss or an expired entry
    (metered as the current organization's `geocoding_requests`, billing.usage).

    One UPDATE ... RETURNING: the hit is counted and last_used_at refreshed atomically, so
    concurrent lookups never lose a count and never read a half-updated row.
    """
    entries = list(
        GeocodingCacheEntry.objects.raw(
            f"SELECT {_ENTRY_COLUMNS} FROM tenancy_geocode_lookup(%s, %s)",
            [address_hash(address), CACHE_TTL],
        )
    )
    if not entries:
        # A miss is a request to a provider: metered for the current organization.
        usage.geocoding_cache_missed()
    return entries[0] if entries else None


def cache_store(
    *,
    address: str,
    latitude: float,
    longitude: float,
    provider: str,
    formatted_address: str = "",
    confidence: float | None = None,
    metadata: dict | None = None,
) -> GeocodingCacheEntry:
    """Store what a provider answered for `address` (an insert, or a refresh of the entry).

    A refresh replaces the answer and keeps the entry's hit count and creation time.
    """
    normalized = normalize_address(address)
    entries = list(
        GeocodingCacheEntry.objects.raw(
            f"SELECT {_ENTRY_COLUMNS} FROM tenancy_geocode_store("
            f"%s, %s, %s, %s, %s, %s, %s, %s::jsonb)",
            [
                hashlib.sha256(normalized.encode("utf-8")).hexdigest(),
                normalized,
                latitude,
                longitude,
                formatted_address,
                provider,
                confidence,
                json.dumps(metadata or {}),
            ],
        )
    )
    return entries[0]


def purge_expired(now: datetime | None = None) -> int:
    """Delete the entries not used for CACHE_TTL (90 days) before `now`; returns how many.

    The platform's work (purge_geocoding_cache runs as the owner): the application role reads
    and deletes no cache entry directly."""
    cutoff = (now or timezone.now()) - CACHE_TTL
    deleted, _ = GeocodingCacheEntry.objects.filter(last_used_at__lt=cutoff).delete()
    return deleted
