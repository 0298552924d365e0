"""Migration operations for the legacy tables."""

from django.db import migrations

from routing.legacy import inspect_legacy_schema


class LegacySchemaMismatch(Exception):
    """The database holds legacy tables that do not match the contract; nothing was changed."""


class AdoptOrCreateLegacySchema(migrations.operations.base.Operation):
    """Adopt the legacy tables when they are there and match; create them when there are none.

    Adoption changes nothing in the database: the migration is only recorded as applied. A
    database with some but not all of the legacy tables, or with columns that differ, is
    refused (the `migrate` command checks first and prints every difference).
    Reversing it never drops the legacy tables: Django merely forgets them, the data stays.
    """

    reduces_to_sql = False
    reversible = True

    def state_forwards(self, app_label, state):
        pass  # the CreateModel state operations beside it describe the tables

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        from routing.legacy_ddl import legacy_ddl

        with schema_editor.connection.cursor() as cursor:
            report = inspect_legacy_schema(cursor)
            if report.is_empty:
                cursor.execute(legacy_ddl(billing_columns=True, alembic_version=False))
            elif not report.is_adoptable:
                raise LegacySchemaMismatch(report.error_message())

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        pass  # the legacy tables and their rows outlive the migration history

    def describe(self):
        return "Adopt the legacy tables customers, drivers, routes, route_stops (or create them)"
