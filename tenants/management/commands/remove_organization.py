"""remove_organization: an organization and everything it owns, online.

The work is tenants.conversion.removal's."""

import time

from django.core.management.base import BaseCommand, CommandError

from tenants.conversion.removal import RemovalRefused, removal_plan, remove_organization
from tenants.management.base import runs_as_owner


@runs_as_owner
class Command(BaseCommand):
    help = (
        "Delete an organization and everything it owns (its rows in every table, its "
        "memberships, the accounts that belong to it alone), in short batches so other "
        "organizations never wait; verified, and resumed by running it again."
    )

    def add_arguments(self, parser):
        parser.add_argument("slug", help="The organization's slug.")
        parser.add_argument(
            "--noinput", "--no-input", action="store_true", help="Do not ask for confirmation."
        )
        parser.add_argument(
            "--force", action="store_true", help="Allow removing the default organization."
        )

    def handle(self, *args, slug, noinput, force, **options):
        try:
            plan = removal_plan(slug, force=force)
        except RemovalRefused as error:
            raise CommandError(str(error)) from error
        self.stdout.write(
            f"remove_organization will delete {plan.name!r} ({plan.slug}, "
            f"{plan.organization_id}) and:"
        )
        for line in plan.lines():
            self.stdout.write(line)
        if not noinput:
            try:
                answer = input(f"Type the slug ({plan.slug}) to delete all of it: ")
            except EOFError:
                answer = ""
            if answer.strip() != plan.slug:
                raise CommandError(
                    "not confirmed: nothing was deleted (--noinput skips the question)"
                )
        begun = time.monotonic()
        try:
            deleted = remove_organization(plan, progress=self.stdout.write)
        except RuntimeError as error:
            raise CommandError(str(error)) from error
        self.stdout.write(
            self.style.SUCCESS(
                f"Removed {plan.slug!r}: {sum(deleted.values())} rows in "
                f"{time.monotonic() - begun:.1f}s; verified: no row of it is left in any table."
            )
        )
