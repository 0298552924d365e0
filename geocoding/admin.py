"""Admin for the geocoding cache: browse and search; entries expire on their own after 90 days.

The cache is shared by every organization, so it is the platform's: superusers only. Staff of
one organization would otherwise read the addresses others look up and move the coordinates
their next lookup returns.
"""

from django.contrib import admin

from geocoding.models import GeocodingCacheEntry
from tenants.admin_site import SAFE_FORMFIELDS, PlatformOnlyAdmin


@admin.register(GeocodingCacheEntry)
class GeocodingCacheEntryAdmin(PlatformOnlyAdmin, admin.ModelAdmin):
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
    formfield_overrides = SAFE_FORMFIELDS
