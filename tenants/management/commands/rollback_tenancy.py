"""Roll the database back to the adopted legacy state (see tenants.conversion.rollback).

Like migrate: one maintenance command at a time (the advisory lock, --nowait, --lock-wait), the
session's own timeouts, every step journaled, a half-applied migration reversed too, and a
database error told as what it is (tenants.conversion.diagnosis).
"""

from django.core.management.base import BaseCommand, CommandError
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections

from routing.legacy import inspect_legacy_schema
from tenants.conversion import journal as journal_module
from tenants.conversion.advisory import (
    MaintenanceLockBusy,
    WaitWatcher,
    maintenance_lock,
    session_settings,
)
from tenants.conversion.diagnosis import describe, is_connection_failure
from tenants.conversion.rollback import RollbackPlan, RollbackRefused
from tenants.management.base import runs_as_owner
from tenants.management.commands.migrate import add_lock_arguments


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
        add_lock_arguments(parser)

    def handle(
        self, *args, interactive, force, database, nowait, lock_wait, lock_timeout, **options
    ):
        connection = connections[database]
        watcher = None
        try:
            session_settings(connection, "rollback_tenancy", lock_timeout)
            with (
                maintenance_lock(
                    connection,
                    "rollback_tenancy",
                    nowait=nowait,
                    wait=lock_wait,
                    progress=self.stdout.write,
                ),
                WaitWatcher(connection, self.stdout.write) as watcher,
            ):
                self._rollback(connection, interactive, force)
        except (MaintenanceLockBusy, RollbackRefused) as error:
            raise CommandError(str(error)) from error
        except DatabaseError as error:
            if is_connection_failure(error):
                raise
            blockers = watcher.blocker_line() if watcher else ""
            raise CommandError(describe(error, "rollback_tenancy", blockers)) from error
        finally:
            connection.tenancy_journal = None

    def _rollback(self, connection, interactive, force):
        journal = None
        if journal_module.table_exists(connection):
            journal = journal_module.Journal(connection, "rollback_tenancy")
        plan = RollbackPlan(connection, self._progress(journal))
        if not plan.adopted and journal is not None and not plan.interrupted:
            # migrate stopped before it adopted anything: only its journal is ours to remove.
            journal_module.drop_table(connection)
            self.stdout.write(
                "Nothing to roll back: migrate stopped before adopting the legacy tables "
                "(routing.0001_legacy_schema is not applied); its journal is removed."
            )
            return
        if not plan.adopted:
            raise CommandError(
                "the legacy tables were never adopted here (routing.0001_legacy_schema is not "
                "applied): there is nothing to roll back"
            )
        if not plan.has_work:
            journal_module.drop_table(connection)
            self.stdout.write("Nothing to roll back: the database is in the adopted legacy state.")
            return
        foreign = plan.rows_outside_default_organization()
        if foreign and not force:
            described = ", ".join(f"{count} {table}" for table, count in foreign.items())
            raise CommandError(
                f"rows of organizations other than the default one ({described}) would become "
                f"the single tenant's own; remove those organizations' rows first, or pass --force"
            )
        migrations = plan.migrations
        self.stdout.write(f"rollback_tenancy will undo {len(migrations)} migrations, newest first:")
        for name in migrations:
            self.stdout.write(f"  - {name}")
        if interactive and _ask("Type 'yes' to roll back: ") != "yes":
            raise CommandError("rollback cancelled; nothing was changed")
        if journal is None:
            journal_module.ensure_table(connection)
            journal = journal_module.Journal(connection, "rollback_tenancy")
            plan.progress_callback = self._progress(journal)
            plan.executor.progress_callback = plan.progress_callback
        connection.tenancy_journal = journal
        plan.run()
        # Back in the adopted legacy state: the journal goes with the other SaaS tables.
        journal_module.drop_table(connection)
        with connection.cursor() as cursor:
            report = inspect_legacy_schema(cursor, count_rows=True)
        self.stdout.write(
            self.style.SUCCESS(f"Rolled back to the adopted legacy state: {report.summary()}.")
        )

    def _progress(self, journal):
        def echo(action, migration=None, fake=False):
            if action == "unapply_start":
                self.stdout.write(f"  Unapplying {migration.app_label}.{migration.name}...")

        if journal is None:
            return echo
        return journal_module.progress_callback(journal, then=echo)


def _ask(prompt: str) -> str:
    try:
        return input(prompt).strip().lower()
    except EOFError:  # no terminal: nobody said yes
        return ""
