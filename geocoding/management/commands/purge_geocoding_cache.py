"""`purge_geocoding_cache`: delete geocoding cache entries unused for 90 days (run it daily)."""

from django.core.management.base import BaseCommand

from geocoding.services import CACHE_TTL, purge_expired
from tenants.management.base import runs_as_owner


@runs_as_owner
class Command(BaseCommand):
    help = f"Delete geocoding cache entries not used for {CACHE_TTL.days} days."

    def handle(self, *args, **options):
        deleted = purge_expired()
        self.stdout.write(
            f"Deleted {deleted} geocoding cache entr{'y' if deleted == 1 else 'ies'} "
            f"unused for {CACHE_TTL.days} days."
        )
