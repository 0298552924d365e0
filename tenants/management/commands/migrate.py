"""`migrate`, made safe for legacy databases and for crashes.

Before anything changes:
- one maintenance command at a time: this database's advisory lock
  (tenants.conversion.advisory), waited for with progress lines naming its holder, for at most
  --lock-wait seconds (--nowait: refuse);
- the session's own statement_timeout (0) and lock_timeout, whatever the role's settings;
- on a database that has not adopted the legacy tables yet, every legacy table is compared with
  the contract column by column, and nothing the chain is about to create may exist already (a
  leftover of the original plan's half-run attempt is named with what to do); either stops the
  command before Django creates even its own bookkeeping table, with every difference listed.

While it runs, every step is journaled (tenants.conversion.journal). A migration a crash left
half-applied is resumed (its steps are idempotent); one an interrupted `rollback_tenancy` left
half-reversed has its reverse finished first, then is applied again. A database error is one
line saying what failed (tenants.conversion.diagnosis), never "cannot connect" on a live
connection.
"""

from django.core.management.base import CommandError
from django.core.management.commands.migrate import Command as DjangoMigrateCommand
from django.db import DatabaseError, connections
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.recorder import MigrationRecorder

from routing.legacy import inspect_legacy_schema
from tenants.conversion import journal as journal_module
from tenants.conversion.advisory import (
    DEFAULT_LOCK_TIMEOUT,
    DEFAULT_LOCK_WAIT,
    MaintenanceLockBusy,
    WaitWatcher,
    maintenance_lock,
    session_settings,
)
from tenants.conversion.diagnosis import describe, is_connection_failure
from tenants.conversion.operations import AddOrganizationColumn, column_exists
from tenants.conversion.preflight import chain_collisions, collision_message
from tenants.management.base import runs_as_owner

LEGACY_MIGRATION = ("routing", "0001_legacy_schema")


@runs_as_owner  # migrations are the owner's: the application role owns no table
class Command(DjangoMigrateCommand):
    help = (
        "Adopt a legacy RouteOptimizer database (or create the schema on an empty one) and "
        "apply the SaaS migrations. " + DjangoMigrateCommand.help
    )

    def add_arguments(self, parser):
        super().add_arguments(parser)
        add_lock_arguments(parser)

    def handle(self, *args, **options):
        connection = connections[options["database"]]
        if options.get("plan"):
            return super().handle(*args, **options)
        self._journal_callback = None
        self.verbosity = options["verbosity"]
        watcher = None
        try:
            session_settings(connection, "migrate", options["lock_timeout"])
            with (
                maintenance_lock(
                    connection,
                    "migrate",
                    nowait=options["nowait"],
                    wait=options["lock_wait"],
                    progress=self.stdout.write,
                ),
                WaitWatcher(connection, self.stdout.write) as watcher,
            ):
                self._migrate(connection, *args, **options)
        except MaintenanceLockBusy as error:
            raise CommandError(str(error)) from error
        except DatabaseError as error:
            if is_connection_failure(error):
                raise
            blockers = watcher.blocker_line() if watcher else ""
            raise CommandError(describe(error, "migrate", blockers)) from error
        finally:
            connection.tenancy_journal = None

    def _migrate(self, connection, *args, **options):
        adopting = None
        if not _legacy_migration_applied(connection):
            with connection.cursor() as cursor:
                report = inspect_legacy_schema(cursor, count_rows=True)
                if report.differences:
                    raise CommandError(report.error_message())
                if found := chain_collisions(cursor):
                    raise CommandError(collision_message(found))
            if report.is_adoptable:
                adopting = report
                self.stdout.write(f"Legacy RouteOptimizer database found: {report.summary()}.")
        journal_module.ensure_table(connection)
        journal = journal_module.Journal(connection, "migrate")
        connection.tenancy_journal = journal
        self._journal_callback = journal_module.progress_callback(
            journal, then=super().migration_progress_callback
        )
        self._finish_interrupted(connection, journal)
        super().handle(*args, **options)
        journal_module.ensure_table(connection)  # no privilege for the application role on it
        if adopting is not None and _legacy_migration_applied(connection):
            self.stdout.write(
                self.style.SUCCESS(f"Adopted the legacy tables: {adopting.summary()}.")
            )

    def _finish_interrupted(self, connection, journal) -> None:
        executor = MigrationExecutor(connection)
        found = journal_module.interrupted(connection, executor.loader)
        for item in found:
            if item.direction == journal_module.FORWARD:
                self.stdout.write(f"Resuming {item.describe()}.")
                continue
            self.stdout.write(
                f"Finishing the reverse first: {item.describe()}. It is then applied again."
            )
            reverse = MigrationExecutor(connection, self._journal_callback)
            reverse.migrate([], plan=[(reverse.loader.graph.nodes[item.key], True)])
        known = {item.label for item in found}
        for name, table in _interrupted_migrations(connection):
            if name not in known:
                self.stdout.write(
                    f"Resuming {name}, interrupted earlier ({table}.organization_id exists but "
                    f"the migration is not recorded); its steps are idempotent and continue from "
                    f"there."
                )

    def migration_progress_callback(self, action, migration=None, fake=False):
        if getattr(self, "_journal_callback", None) is not None:
            self._journal_callback(action, migration, fake)
        else:
            super().migration_progress_callback(action, migration, fake)


def add_lock_arguments(parser) -> None:
    parser.add_argument(
        "--nowait",
        action="store_true",
        help="Refuse at once if another migrate, rollback_tenancy or contract_tenancy runs.",
    )
    parser.add_argument(
        "--lock-wait",
        type=float,
        default=DEFAULT_LOCK_WAIT,
        metavar="SECONDS",
        help=f"How long to wait for another of them to finish (default {DEFAULT_LOCK_WAIT:.0f}).",
    )
    parser.add_argument(
        "--lock-timeout",
        default=DEFAULT_LOCK_TIMEOUT,
        metavar="DURATION",
        help=(
            "The session's lock_timeout: the longest any statement waits for a table lock or "
            "for an old snapshot to end (CREATE INDEX CONCURRENTLY), as PostgreSQL spells "
            f"durations (default {DEFAULT_LOCK_TIMEOUT}); short-lock steps use 50 ms, retried."
        ),
    )


def _legacy_migration_applied(connection) -> bool:
    recorder = MigrationRecorder(connection)
    if not recorder.has_table():
        return False
    return recorder.migration_qs.filter(app=LEGACY_MIGRATION[0], name=LEGACY_MIGRATION[1]).exists()


def _interrupted_migrations(connection) -> list[tuple[str, str]]:
    """Non-atomic organization migrations a crash left half-applied before the journal existed."""
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
