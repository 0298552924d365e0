"""Going back to the adopted legacy state: every SaaS migration unapplied, the legacy tables kept.

The target is routing.0001_legacy_schema applied and nothing else: the reverse migrations put
the billing columns and their values back on customers, drop organization_id and the SaaS
tables (Django's own included), and leave customers, drivers, routes and route_stops holding
exactly what they held before `migrate`.
"""

from __future__ import annotations

from django.apps import apps
from django.db.migrations.executor import MigrationExecutor

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


def is_installed(app_label: str) -> bool:
    return any(config.label == app_label for config in apps.get_app_configs())
