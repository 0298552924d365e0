"""Test support: scratch databases on the test server, and manage.py run as an operator runs it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psycopg
from psycopg import sql

from routeoptimizer.database import settings_to_uri
from routing.legacy import LEGACY_TABLES
from routing.legacy_ddl import legacy_ddl

PROJECT_DIR = Path(__file__).resolve().parent.parent
SAMPLE_SQL = PROJECT_DIR / "routing" / "sample" / "legacy_sample.sql"


class ScratchDatabase:
    """A throwaway database on the same server as the test database, dropped afterwards."""

    def __init__(self, server_settings: dict, *, template: str | None = None):
        """`template`: a copy of that database (CREATE DATABASE ... TEMPLATE: a prepared state
        forked in a fraction of a second instead of built again)."""
        # Created, migrated and inspected by the owner, whatever role the suite runs as.
        from tests.database_roles import owner_server_settings

        self.server_settings = owner_server_settings(server_settings)
        self.name = f"ro_scratch_{uuid.uuid4().hex[:12]}"
        self.url = settings_to_uri(self.server_settings, name=self.name)
        create = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.name))
        if template:
            create += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
        with self._maintenance() as connection:
            for attempt in range(100):
                try:
                    connection.execute(create)
                    break
                except psycopg.errors.ObjectInUse:
                    # The template's last session (a process just killed) is still ending.
                    if attempt == 99:
                        raise
                    time.sleep(0.1)

    def fork(self) -> ScratchDatabase:
        """A copy of this database as it is now (nobody may be connected to it)."""
        return ScratchDatabase(self.server_settings, template=self.name)

    @classmethod
    def attach(cls, url: str) -> ScratchDatabase:
        """The same helpers on a database that exists already (never created or dropped here)."""
        database = cls.__new__(cls)
        database.url = url
        return database

    def _maintenance(self):
        return psycopg.connect(
            settings_to_uri(self.server_settings, name="postgres"), autocommit=True
        )

    def drop(self) -> None:
        with self._maintenance() as connection:
            connection.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(self.name))
            )

    def connect(self, **kwargs) -> psycopg.Connection:
        return psycopg.connect(self.url, autocommit=True, **kwargs)

    def sql(self, query, params=None) -> list[tuple]:
        with self.connect() as connection:
            cursor = connection.execute(query, params)
            return cursor.fetchall() if cursor.description else []

    def value(self, query, params=None):
        rows = self.sql(query, params)
        return rows[0][0] if rows else None

    def script(self, text: str) -> None:
        with self.connect() as connection:
            connection.execute(text)

    def load_legacy_schema(self, *, billing_columns: bool = True) -> None:
        self.script(legacy_ddl(billing_columns=billing_columns))
        self.script("INSERT INTO alembic_version VALUES ('a1b2c3d4e5f6')")

    def load_sample(self) -> None:
        self.script(SAMPLE_SQL.read_text(encoding="utf-8"))

    def tables(self) -> set[str]:
        return {
            name
            for (name,) in self.sql(
                "SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace "
                "AND relkind IN ('r', 'p')"
            )
        }

    def schema_fingerprint(self) -> list[tuple]:
        """Every column, type, nullability, default, index and constraint: to prove no change."""
        return self.sql(
            """
            SELECT 'column', c.relname, a.attname, format_type(a.atttypid, a.atttypmod),
                   a.attnotnull::text, coalesce(pg_get_expr(d.adbin, d.adrelid), '')
            FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0
            LEFT JOIN pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum
            WHERE c.relnamespace = 'public'::regnamespace AND NOT a.attisdropped
            UNION ALL
            SELECT 'index', indexrelid::regclass::text, '', pg_get_indexdef(indexrelid), '', ''
            FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
            WHERE c.relnamespace = 'public'::regnamespace
            UNION ALL
            SELECT 'constraint', conrelid::regclass::text, conname, pg_get_constraintdef(oid),
                   '', ''
            FROM pg_constraint WHERE connamespace = 'public'::regnamespace
            ORDER BY 1, 2, 3, 4
            """
        )

    def contents(self, table: str, columns: list[str] | None = None) -> list[tuple]:
        """Every row of `table` (all columns, or `columns`), ordered by id."""
        selected = sql.SQL(", ").join(map(sql.Identifier, columns)) if columns else sql.SQL("*")
        return self.sql(
            sql.SQL("SELECT {} FROM {} ORDER BY id").format(selected, sql.Identifier(table))
        )

    def legacy_contents(self) -> dict[str, list[tuple]]:
        return {table: self.contents(table) for table in LEGACY_TABLES}

    def applied_migrations(self) -> set[tuple[str, str]]:
        if "django_migrations" not in self.tables():
            return set()
        return set(self.sql("SELECT app, name FROM django_migrations"))

    def manage(self, *args: str, check: bool = True, env: dict | None = None, **kwargs):
        return run_manage(*args, database_url=self.url, check=check, env=env, **kwargs)


def run_manage(
    *args: str,
    database_url: str,
    check: bool = True,
    env: dict | None = None,
    timeout: float = 600,
    **kwargs,
) -> subprocess.CompletedProcess:
    """Run `python manage.py ARGS` in a subprocess against `database_url`, capturing its output."""
    environment = {
        **os.environ,
        "DATABASE_URL": database_url,
        "DJANGO_SETTINGS_MODULE": "routeoptimizer.settings",
        "SECRET_KEY": "test-only-secret-key-not-for-production",
        "PYTHONUNBUFFERED": "1",
        **(env or {}),
    }
    if environment["DATABASE_URL"] is None:
        del environment["DATABASE_URL"]
    result = subprocess.run(
        [sys.executable, str(PROJECT_DIR / "manage.py"), *args],
        cwd=PROJECT_DIR,
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
        **kwargs,
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"manage.py {' '.join(args)} exited {result.returncode}\n"
            f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
        )
    return result
