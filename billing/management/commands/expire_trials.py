"""End the trials whose time is up: see billing.services.organizations_expire_trials."""

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError

from billing.services import organizations_expire_trials
from tenants.management.base import runs_as_owner


@runs_as_owner
class Command(BaseCommand):
    help = (
        "Move every organization whose trial has ended (trial_ends_at in the past) from trial "
        "to past_due: read-only until a subscription is active. Idempotent; safe to run from "
        "cron (e.g. every 10 minutes)."
    )

    def handle(self, *args, **options):
        try:
            expired = organizations_expire_trials()
        except DatabaseError as error:
            reason = " ".join(str(error).split())
            raise CommandError(
                f"could not end the trials ({reason}); nothing was changed: check the database "
                f"and run it again"
            ) from error
        if not expired:
            self.stdout.write("No trial has ended since the last run: nothing to do.")
            return
        self.stdout.write(
            self.style.SUCCESS(
                f"{len(expired)} trial(s) ended, now past due (read-only): {', '.join(expired)}"
            )
        )
