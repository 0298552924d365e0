"""Admin for the geocoding cache: browse and search; entries expire on their own after 90 days."""

from django.contrib import admin

from geocoding.models import GeocodingCacheEntry


@admin.register(GeocodingCacheEntry)
class GeocodingCacheEntryAdmin(admin.ModelAdmin):
    # The cache is shared by every organization (an address is not tenant data): no
    # organization filter; the provider is the useful split.
    list_display = [
        "normalized_address",
        "provider",
        "latitude",
        "longitude",
        "hit_count",
        "last_used_at",
    ]
    list_filter = ["provider"]
    search_fields = ["normalized_address", "formatted_address", "=address_hash"]
    readonly_fields = ["address_hash", "hit_count", "created_at", "last_used_at"]
    date_hierarchy = "last_used_at"
