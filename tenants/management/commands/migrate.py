"""`migrate`, made safe for legacy databases: check the legacy schema before anything changes.

On a database that has not adopted the legacy tables yet, every legacy table is compared with
the contract column by column first; a partial or mismatching schema stops the command before
Django creates even its own bookkeeping table, with every difference listed.
"""

from django.core.management.base import CommandError
from django.core.management.commands.migrate import Command as DjangoMigrateCommand
from django.db import connections
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.recorder import MigrationRecorder

from routing.legacy import inspect_legacy_schema
from tenants.management.base import runs_as_owner
from tenants.operations import AddOrganizationColumn, column_exists

LEGACY_MIGRATION = ("routing", "0001_legacy_schema")


@runs_as_owner  # migrations are the owner's: the application role owns no table
class Command(DjangoMigrateCommand):
    help = (
        "Adopt a legacy RouteOptimizer database (or create the schema on an empty one) and "
        "apply the SaaS migrations. " + DjangoMigrateCommand.help
    )

    def handle(self, *args, **options):
        connection = connections[options["database"]]
        adopting = None
        if not options.get("plan") and not _legacy_migration_applied(connection):
            with connection.cursor() as cursor:
                report = inspect_legacy_schema(cursor, count_rows=True)
            if report.differences:
                raise CommandError(report.error_message())
            if report.is_adoptable:
                adopting = report
                self.stdout.write(f"Legacy RouteOptimizer database found: {report.summary()}.")
        for name, table in _interrupted_migrations(connection):
            self.stdout.write(
                f"Resuming {name}, interrupted earlier ({table}.organization_id exists but the "
                f"migration is not recorded); its steps are idempotent and continue from there."
            )
        super().handle(*args, **options)
        if adopting is not None and _legacy_migration_applied(connection):
            self.stdout.write(
                self.style.SUCCESS(f"Adopted the legacy tables: {adopting.summary()}.")
            )


def _legacy_migration_applied(connection) -> bool:
    recorder = MigrationRecorder(connection)
    if not recorder.has_table():
        return False
    return recorder.migration_qs.filter(app=LEGACY_MIGRATION[0], name=LEGACY_MIGRATION[1]).exists()


def _interrupted_migrations(connection) -> list[tuple[str, str]]:
    """Non-atomic organization migrations that a crash left half-applied."""
    executor = MigrationExecutor(connection)
    applied = executor.loader.applied_migrations
    interrupted = []
    for key, migration in executor.loader.graph.nodes.items():
        if key in applied:
            continue
        for operation in migration.operations:
            for step in getattr(operation, "database_operations", []):
                if isinstance(step, AddOrganizationColumn) and column_exists(
                    connection, step.table, "organization_id"
                ):
                    interrupted.append((f"{key[0]}.{key[1]}", step.table))
    return interrupted
