"""Load the bundled sample legacy database (routing/sample/legacy_sample.sql)."""

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from routing.legacy import LEGACY_TABLES, inspect_legacy_schema
from tenants.management.base import runs_as_owner

SAMPLE_PATH = Path(__file__).resolve().parents[2] / "sample" / "legacy_sample.sql"


@runs_as_owner  # drops and creates tables: the application role owns none
class Command(BaseCommand):
    help = "Load the bundled, synthetic legacy RouteOptimizer database into an empty database."

    def add_arguments(self, parser):
        parser.add_argument(
            "--reset",
            action="store_true",
            help="Drop everything in the current schema first "
            "(embedded database only, unless --force).",
        )
        parser.add_argument(
            "--force",
            action="store_true",
            help="Allow --reset on a database named by DATABASE_URL.",
        )

    def handle(self, *args, reset, force, **options):
        if reset and not settings.EMBEDDED_DATABASE and not force:
            raise CommandError(
                "--reset would drop every table of the database named by DATABASE_URL; "
                "unset DATABASE_URL to use the embedded PostgreSQL, or add --force"
            )
        with connection.cursor() as cursor:
            if reset:
                _drop_current_schema(cursor)
            else:
                _ensure_empty(cursor)
            cursor.execute(SAMPLE_PATH.read_text(encoding="utf-8"))
            report = inspect_legacy_schema(cursor, count_rows=True)
        self.stdout.write(f"Loaded the sample legacy database: {report.summary()}.")


def _drop_current_schema(cursor) -> None:
    cursor.execute("SELECT current_schema()")
    (schema,) = cursor.fetchone()
    cursor.execute(f'DROP SCHEMA "{schema}" CASCADE')
    cursor.execute(f'CREATE SCHEMA "{schema}"')


def _ensure_empty(cursor) -> None:
    cursor.execute(
        "SELECT string_agg(relname, ', ' ORDER BY relname) FROM pg_class "
        "WHERE relnamespace = current_schema()::regnamespace AND relkind IN ('r', 'p') "
        "AND (relname = ANY(%s) OR relname = 'django_migrations')",
        [list(LEGACY_TABLES)],
    )
    (tables,) = cursor.fetchone()
    if tables:
        raise CommandError(
            f"the database is not empty (it has {tables}); load the sample into an empty "
            f"database, or pass --reset to drop everything first"
        )
