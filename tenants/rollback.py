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


class RollbackPlan:
    """What rollback_tenancy will unapply on `connection`, newest first."""

    def __init__(self, connection):
        self.executor = MigrationExecutor(connection)
        self.targets = rollback_targets(self.executor)
        self.steps = self.executor.migration_plan(self.targets)

    @property
    def adopted(self) -> bool:
        return LEGACY_TARGET in self.executor.loader.applied_migrations

    @property
    def migrations(self) -> list[str]:
        return [f"{migration.app_label}.{migration.name}" for migration, _ in self.steps]

    def run(self) -> None:
        self.executor.migrate(self.targets, plan=self.steps)

    def rows_outside_default_organization(self) -> dict[str, int]:
        """Per legacy table, the rows of organizations other than the default one.

        Rolling back drops organization_id, so those rows would silently become the single
        tenant's own: rollback_tenancy refuses while there are any (unless forced).
        """
        from psycopg import sql

        from tenants.models import DEFAULT_ORGANIZATION_SLUG
        from tenants.operations import column_exists

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
