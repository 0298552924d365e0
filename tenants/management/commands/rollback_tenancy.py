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
        parser.add_argument(
            "--force",
            action="store_true",
            help="Roll back even if other organizations' rows would merge into the legacy tables.",
        )
        parser.add_argument("--database", default=DEFAULT_DB_ALIAS)

    def handle(self, *args, interactive, force, database, **options):
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
        foreign = plan.rows_outside_default_organization()
        if foreign and not force:
            described = ", ".join(f"{count} {table}" for table, count in foreign.items())
            raise CommandError(
                f"rows of organizations other than the default one ({described}) would become "
                f"the single tenant's own; remove those organizations' rows first, or pass --force"
            )
        self.stdout.write(f"rollback_tenancy will undo {len(plan.steps)} migrations, newest first:")
        for name in plan.migrations:
            self.stdout.write(f"  - {name}")
        if interactive and _ask("Type 'yes' to roll back: ") != "yes":
            raise CommandError("rollback cancelled; nothing was changed")
        plan.run()
        with connection.cursor() as cursor:
            report = inspect_legacy_schema(cursor, count_rows=True)
        self.stdout.write(
            self.style.SUCCESS(f"Rolled back to the adopted legacy state: {report.summary()}.")
        )


def _ask(prompt: str) -> str:
    try:
        return input(prompt).strip().lower()
    except EOFError:  # no terminal: nobody said yes
        return ""
