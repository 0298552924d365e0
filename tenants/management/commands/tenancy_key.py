"""tenancy_key: the key PostgreSQL verifies organization claims with (tenants.claims).

    python manage.py tenancy_key status     # installed key ids; whether this application's verifies
    python manage.py tenancy_key install    # store the key this application signs with
    python manage.py tenancy_key prune      # remove every other key (after a rotation)

Rotation: set the new ROUTEOPTIMIZER_TENANCY_KEY (or SECRET_KEY) where this command runs and
`install` it; deploy the application with it (claims signed with either key verify meanwhile);
then `prune`. Runs as the owner: the application role cannot read the keys.
"""

from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from tenants.claims import key_id, tenancy_key
from tenants.management.base import runs_as_owner
from tenants.verification import (
    claim_functions_installed,
    install_key,
    installed_key_ids,
    prune_keys,
)


@runs_as_owner
class Command(BaseCommand):
    help = "Install, list or prune the key PostgreSQL verifies organization claims with."

    def add_arguments(self, parser):
        parser.add_argument("action", choices=["status", "install", "prune"])

    def handle(self, *args, action, **options):
        if not claim_functions_installed(connection):
            raise CommandError(
                "this database has no verified organization claims yet: run "
                "`python manage.py migrate` (tenants.0007_verified_organization)"
            )
        current = key_id(tenancy_key())
        if action == "install":
            install_key(connection)
            self.stdout.write(f"installed key {current} (the one this application signs with)")
        elif action == "prune":
            if current not in installed_key_ids(connection):
                raise CommandError(
                    f"the key this application signs with ({current}) is not installed: "
                    f"run `tenancy_key install` first, or every claim would stop verifying"
                )
            for removed in prune_keys(connection, keep=[current]):
                self.stdout.write(f"removed key {removed}")
        keys = installed_key_ids(connection)
        for identifier in keys:
            marker = "  (this application's)" if identifier == current else ""
            self.stdout.write(f"key {identifier}{marker}")
        if current not in keys:
            raise CommandError(
                f"this application's key {current} is not installed: its claims verify as no "
                f"claim (every tenant query sees nothing); run `tenancy_key install`"
            )
