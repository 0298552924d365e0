"""tenancy_preflight: the pre-migration checklist, read-only (tenants.conversion.preflight)."""

from django.core.management.base import BaseCommand, CommandError

from tenants.conversion.preflight import FIX, OK, WARN, CannotPreflight, run_preflight
from tenants.management.base import runs_as_owner

EXIT_MUST_FIX, EXIT_CANNOT_RUN = 1, 2


# The owner role: it sees every session and the server's settings, as migrate will run.
@runs_as_owner
class Command(BaseCommand):
    help = (
        "Check, without changing anything, what `migrate` would meet: connection, database "
        "state, legacy schema, disk, blocking sessions, and the migrations to apply with their "
        "locks. Exit 1 when something must be fixed first, 2 when the database is unreachable."
    )
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument("--database", default="default", help="Database alias.")

    def handle(self, *args, **options):
        try:
            report = run_preflight(using=options["database"])
        except CannotPreflight as error:
            raise CommandError(str(error), returncode=EXIT_CANNOT_RUN) from error
        styles = {OK: self.style.SUCCESS, WARN: self.style.WARNING, FIX: self.style.ERROR}
        for finding in report.findings:
            style = styles.get(finding.status, str)
            self.stdout.write(style(f"{finding.status:<4}  {finding.topic:<15} {finding.summary}"))
            for line in finding.lines:
                self.stdout.write(f"{'':21}- {line}")
        if report.must_fix:
            topics = ", ".join(finding.topic for finding in report.must_fix)
            raise CommandError(
                f"fix {len(report.must_fix)} problem{'s' if len(report.must_fix) != 1 else ''} "
                f"before migrating: {topics}",
                returncode=EXIT_MUST_FIX,
            )
        if report.state == "migrated":
            self.stdout.write(self.style.SUCCESS("Nothing to migrate: run validate_tenancy."))
        else:
            self.stdout.write(
                self.style.SUCCESS(
                    "Ready to migrate. Next: python manage.py backup_database --restore-test, "
                    "then python manage.py migrate."
                )
            )
