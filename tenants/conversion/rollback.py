"""Going back to the adopted legacy state: every SaaS migration unapplied, the legacy tables kept.

The target is routing.0001_legacy_schema applied and nothing else: the reverse migrations put
the billing columns and their values back on customers, drop organization_id and the SaaS
tables (Django's own included), and leave customers, drivers, routes and route_stops holding
exactly what they held before `migrate`.
"""

from __future__ import annotations

from django.apps import apps
from django.db.migrations.executor import MigrationExecutor

from routing.legacy import LEGACY_TABLES

LEGACY_TARGET = ("routing", "0001_legacy_schema")


def rollback_targets(executor: MigrationExecutor) -> list[tuple[str, str | None]]:
    """routing back to its adoption migration; every other app with migrations back to zero."""
    labels = {app for app, _ in executor.loader.graph.nodes}
    others = sorted(label for label in labels if label != LEGACY_TARGET[0] and is_installed(label))
    return [LEGACY_TARGET] + [(label, None) for label in others]


class RollbackRefused(Exception):
    """Rolling back now would lose values or strand the database; nothing was changed."""


class RollbackPlan:
    """What rollback_tenancy will unapply on `connection`, newest first.

    Half-applied migrations (tenants.conversion.journal: a crash during `migrate` committed some of
    their steps and Django never recorded them) are part of the plan: they are recorded as applied
    when the plan runs, so Django reverses them in the right order with the others (every
    reverse step is idempotent and tolerates what never happened). A migration an interrupted
    rollback left half-reversed is still recorded and simply reversed again.
    """

    def __init__(self, connection, progress_callback=None):
        from tenants.conversion import journal

        self.connection = connection
        self.progress_callback = progress_callback
        self.executor = MigrationExecutor(connection, progress_callback)
        self.interrupted = journal.interrupted(connection, self.executor.loader)
        self.half_applied = [item for item in self.interrupted if item.direction == journal.FORWARD]
        self.targets = rollback_targets(self.executor)
        self.steps = self.executor.migration_plan(self.targets)

    @property
    def adopted(self) -> bool:
        return LEGACY_TARGET in self.executor.loader.applied_migrations

    @property
    def migrations(self) -> list[str]:
        half = [f"{item.label} (half-applied: {item.describe()})" for item in self.half_applied]
        return half + [f"{migration.app_label}.{migration.name}" for migration, _ in self.steps]

    @property
    def has_work(self) -> bool:
        return bool(self.steps or self.half_applied)

    def run(self) -> None:
        from django.db.migrations.recorder import MigrationRecorder

        if self.half_applied:
            recorder = MigrationRecorder(self.connection)
            for item in self.half_applied:
                recorder.record_applied(item.app, item.name)
            self.executor = MigrationExecutor(self.connection, self.progress_callback)
            self.steps = self.executor.migration_plan(self.targets)
            self.half_applied = []
        self._refuse_to_strand_billing_values()
        self.executor.migrate(self.targets, plan=self.steps)

    def _refuse_to_strand_billing_values(self) -> None:
        """Never drop the billing tables while they hold the only copy of the billing values:
        customers lacking the billing columns it had before `migrate`, and routing.0006 (which
        puts them back) not about to be reversed."""
        from billing.legacy import MARKER_TABLE, snapshot_had_billing_columns
        from routing.legacy import has_billing_columns

        unapplied = {(migration.app_label, migration.name) for migration, _ in self.steps}
        if ("routing", "0006_move_billing_columns") in unapplied:
            return
        with self.connection.cursor() as cursor:
            cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [MARKER_TABLE])
            markers = cursor.fetchone()[0]
            if markers and not has_billing_columns(cursor) and snapshot_had_billing_columns(cursor):
                raise RollbackRefused(
                    "customers lacks its billing columns and the billing tables hold the only "
                    "copy of their values, but routing.0006_move_billing_columns is not recorded "
                    "or journaled as applied: rollback_tenancy would drop them; nothing was "
                    "changed. Run migrate (it finishes the chain), then rollback_tenancy"
                )

    def rows_outside_default_organization(self) -> dict[str, int]:
        """Per legacy table, the rows of organizations other than the default one.

        Rolling back drops organization_id, so those rows would silently become the single
        tenant's own: rollback_tenancy refuses while there are any (unless forced).
        """
        from psycopg import sql

        from tenants.conversion.operations import column_exists
        from tenants.models import DEFAULT_ORGANIZATION_SLUG

        connection = self.executor.connection
        counts = {}
        with connection.cursor() as cursor:
            for table in LEGACY_TABLES:
                if not column_exists(connection, table, "organization_id"):
                    continue
                cursor.execute(
                    sql.SQL(
                        "SELECT count(*) FROM {} WHERE organization_id IS DISTINCT FROM "
                        "(SELECT id FROM organizations WHERE slug = %s)"
                    ).format(sql.Identifier(table)),
                    [DEFAULT_ORGANIZATION_SLUG],
                )
                if count := cursor.fetchone()[0]:
                    counts[table] = count
        return counts


def is_installed(app_label: str) -> bool:
    return any(config.label == app_label for config in apps.get_app_configs())
