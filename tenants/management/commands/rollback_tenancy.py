"""Roll the database back to the adopted legacy state (see tenants.rollback)."""

from django.core.management.base import BaseCommand, CommandError
from django.db import DEFAULT_DB_ALIAS, connections

from routing.legacy import inspect_legacy_schema
from tenants.management.base import runs_as_owner
from tenants.rollback import RollbackPlan


@runs_as_owner  # drops and creates tables: the application role owns none
class Command(BaseCommand):
    help = (
        "Undo every SaaS migration: the legacy tables get back exactly what they held before "
        "`migrate` (billing columns included) and the SaaS tables are dropped."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--noinput",
            "--no-input",
            action="store_false",
            dest="interactive",
            help="Do not ask for confirmation.",
        )
        parser.add_argument("--database", default=DEFAULT_DB_ALIAS)

    def handle(self, *args, interactive, database, **options):
        connection = connections[database]
        plan = RollbackPlan(connection)
        if not plan.adopted:
            raise CommandError(
                "the legacy tables were never adopted here (routing.0001_legacy_schema is not "
                "applied): there is nothing to roll back"
            )
        if not plan.steps:
            self.stdout.write("Nothing to roll back: the database is in the adopted legacy state.")
            return
        self.stdout.write(f"rollback_tenancy will undo {len(plan.steps)} migrations, newest first:")
        for name in plan.migrations:
            self.stdout.write(f"  - {name}")
        if interactive and input("Type 'yes' to roll back: ").strip().lower() != "yes":
            raise CommandError("rollback cancelled; nothing was changed")
        plan.run()
        with connection.cursor() as cursor:
            report = inspect_legacy_schema(cursor, count_rows=True)
        self.stdout.write(
            self.style.SUCCESS(f"Rolled back to the adopted legacy state: {report.summary()}.")
        )
