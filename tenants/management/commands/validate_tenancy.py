"""validate_tenancy: prove the migrated database lost and changed nothing.

The work is tenants.conversion.validation's (tenants.conversion.organization_validation for one
organization)."""

import json

from django.core.management.base import BaseCommand, CommandError

from tenants.conversion.validation import CannotValidate, describe_database, validate_tenancy
from tenants.management.base import runs_as_owner

EXIT_FAILED, EXIT_CANNOT_RUN = 1, 2


# The owner role (MIGRATION_DATABASE_URL), with app.unscoped: it must see every organization.
@runs_as_owner
class Command(BaseCommand):
    help = (
        "Check the migrated database against the pre-migration snapshot and the tenancy "
        "invariants, read-only. Exit 0 when every check passes, 1 when one fails, 2 when the "
        "checks cannot run."
    )
    # Validation reads the database only; a system check failing must not look like exit 1.
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="Print one JSON object.")
        parser.add_argument("--database", default="default", help="Database alias.")
        parser.add_argument(
            "--organization",
            metavar="SLUG",
            help="Only the checks that apply to one organization (its rows, their consistency, "
            "its billing values against its import proof).",
        )

    def handle(self, *args, **options):
        try:
            if options.get("organization"):
                from tenants.conversion.organization_validation import validate_organization

                report = validate_organization(options["organization"], using=options["database"])
            else:
                report = validate_tenancy(using=options["database"])
        except CannotValidate as error:
            if options["json"]:
                from django.db import connections

                database = describe_database(connections[options["database"]])
                self.stdout.write(
                    json.dumps(
                        {"status": "error", "error": str(error), "checks": [], "database": database}
                    )
                )
            raise CommandError(str(error), returncode=EXIT_CANNOT_RUN) from error

        if options["json"]:
            self.stdout.write(json.dumps(report.as_dict(), indent=2))
        else:
            database = report.database
            self.stdout.write(
                f"Validating {database['name']} at {database['host']}:{database['port']} "
                f"(PostgreSQL {database.get('server_version', '?')}), read-only:"
            )
            for check in report.checks:
                style = self.style.SUCCESS if check.passed else self.style.ERROR
                self.stdout.write(style(check.line()))
        if not report.passed:
            raise CommandError(report.summary(), returncode=EXIT_FAILED)
        if not options["json"]:
            self.stdout.write(self.style.SUCCESS(report.summary().capitalize() + "."))
