"""export_organization: one organization back out as a standalone legacy RouteOptimizer database.

The organization's customers, drivers, routes and stops are read in one REPEATABLE READ, READ
ONLY transaction of the shared database, in the legacy columns, with the ids an import remapped
given back their source's values and the eight billing columns rebuilt from the billing tables
(tenants.conversion.legacy_rows), and written in the legacy schema (routing/legacy_schema.sql):

- `--to URI`: into an empty database, in one transaction (DDL, COPY, proof), so a failure leaves
  it empty; the proof is the digests of the written tables against the shared database's rows.
- `--to-file PATH`: a plain SQL script for `psql -f` (one transaction: the DDL, then COPY ... FROM
  stdin blocks), written to PATH.tmp and renamed when complete.

Which variant of the schema: an imported organization gets its source's (with or without the
billing columns, its Alembic revision); the default organization what the pre-migration snapshot
recorded; any other organization the billing columns and no Alembic revision.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import psycopg
from django.db import DatabaseError, connections, transaction
from psycopg import sql

from routing.legacy import alembic_revision, legacy_column_names
from routing.legacy_ddl import legacy_ddl
from tenants.conversion.importing import connect_source, describe_source
from tenants.conversion.legacy_rows import (
    IMPORTS_TABLE,
    WRITE_ORDER,
    digest_of,
    organization_legacy_rows,
    table_relation,
)
from tenants.conversion.snapshot import pin_digest_settings


class ExportRefused(Exception):
    """One line naming the problem and the fix; nothing was written."""


@dataclass
class ExportResult:
    slug: str
    organization_id: str
    destination: str
    billing_columns: bool
    alembic_revision: str | None
    counts: dict[str, int] = field(default_factory=dict)
    proof: dict[str, dict] = field(default_factory=dict)
    seconds: float = 0.0


def export_organization(
    *,
    slug: str,
    to_uri: str | None = None,
    to_file: str | None = None,
    progress: Callable[[str], None] = print,
    using: str = "default",
) -> ExportResult:
    from tenants.models import Organization

    if (to_uri is None) == (to_file is None):
        raise ExportRefused("give one destination: --to URI or --to-file PATH")
    started = time.monotonic()
    organization = Organization.objects.filter(slug__iexact=slug.strip()).first()
    if organization is None:
        raise ExportRefused(
            f"no organization with slug {slug!r}: list them in the admin "
            f"(/admin/tenants/organization/); nothing was written"
        )
    target = None
    if to_uri is not None:
        target = connect_source(to_uri, option="--to")
        _refuse_not_empty(target, describe_source(to_uri))
    elif os.path.exists(to_file):
        raise ExportRefused(f"{to_file} exists already: give a new --to-file path")

    connection = connections[using]
    try:
        with transaction.atomic(using=using, durable=True), connection.cursor() as cursor:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            pin_digest_settings(cursor)
            billing, revision = _legacy_variant(cursor, organization)
            result = ExportResult(
                slug=organization.slug,
                organization_id=str(organization.pk),
                destination=describe_source(to_uri) if to_uri else to_file,
                billing_columns=billing,
                alembic_revision=revision,
            )
            for table in WRITE_ORDER:
                columns = legacy_column_names(table, billing=billing)
                result.proof[table] = digest_of(
                    cursor,
                    organization_legacy_rows(table, result.organization_id, billing=billing),
                    columns,
                )
                result.counts[table] = result.proof[table]["rows"]
            if target is not None:
                _export_to_database(cursor, target, result, progress)
            else:
                _export_to_file(cursor, to_file, result, progress)
    except DatabaseError as error:
        raise ExportRefused(
            f"the export stopped on a database error ({' '.join(str(error).split())}); "
            f"nothing was written"
        ) from error
    finally:
        if target is not None:
            target.close()
    result.seconds = time.monotonic() - started
    return result


def _refuse_not_empty(target: psycopg.Connection, description: str) -> None:
    rows = target.execute(
        "SELECT relname FROM pg_class WHERE relnamespace = current_schema()::regnamespace "
        "AND relkind IN ('r', 'p', 'v', 'm', 'S', 'f') ORDER BY relname"
    ).fetchall()
    target.rollback()
    if rows:
        names = ", ".join(name for (name,) in rows[:5]) + (", ..." if len(rows) > 5 else "")
        raise ExportRefused(
            f"the database --to names ({description}) is not empty: it has {len(rows)} "
            f"table(s) or other relations ({names}); give an empty database (createdb NAME); "
            f"nothing was written"
        )


def _legacy_variant(cursor, organization) -> tuple[bool, str | None]:
    """(with the billing columns, Alembic revision) of the legacy schema to write."""
    from billing.legacy import snapshot_had_billing_columns
    from tenants.models import DEFAULT_ORGANIZATION_SLUG

    cursor.execute(
        f"SELECT had_billing_columns, alembic_revision FROM {IMPORTS_TABLE} "
        f"WHERE organization_id = %s",
        [str(organization.pk)],
    )
    row = cursor.fetchone()
    if row is not None:
        return bool(row[0]), row[1]
    if organization.slug == DEFAULT_ORGANIZATION_SLUG:
        return snapshot_had_billing_columns(cursor), alembic_revision(cursor)
    return True, None


def _select(table: str, result: ExportResult) -> sql.Composable:
    return organization_legacy_rows(table, result.organization_id, billing=result.billing_columns)


def _names(table: str, result: ExportResult) -> sql.Composable:
    columns = legacy_column_names(table, billing=result.billing_columns)
    return sql.SQL(", ").join(map(sql.Identifier, columns))


def _ddl(result: ExportResult) -> str:
    return legacy_ddl(
        billing_columns=result.billing_columns,
        alembic_version=result.alembic_revision is not None,
    )


def _alembic_rows(result: ExportResult) -> list[str]:
    return result.alembic_revision.split(",") if result.alembic_revision else []


def _export_to_database(cursor, target: psycopg.Connection, result: ExportResult, progress):
    with target.cursor() as into_cursor:
        into_cursor.execute(_ddl(result))
        for revision in _alembic_rows(result):
            into_cursor.execute("INSERT INTO alembic_version (version_num) VALUES (%s)", [revision])
        for table in WRITE_ORDER:
            begun = time.monotonic()
            with (
                cursor.copy(
                    sql.SQL("COPY ({}) TO STDOUT (FORMAT binary)").format(_select(table, result))
                ) as out,
                into_cursor.copy(
                    sql.SQL("COPY {} ({}) FROM STDIN (FORMAT binary)").format(
                        sql.Identifier(table), _names(table, result)
                    )
                ) as into,
            ):
                for chunk in out:
                    into.write(chunk)
            progress(f"  wrote {result.counts[table]} {table} in {time.monotonic() - begun:.1f}s")
        pin_digest_settings(into_cursor)
        differences = []
        for table in WRITE_ORDER:
            columns = legacy_column_names(table, billing=result.billing_columns)
            written = digest_of(into_cursor, table_relation(table, columns), columns)
            if written != result.proof[table]:
                differences.append(f"{table}: {written} against {result.proof[table]}")
        if differences:
            target.rollback()
            raise ExportRefused(
                "the written tables do not match the organization's rows, so nothing was "
                "written (rolled back): " + "; ".join(differences)
            )
    target.commit()
    progress("  proof: counts and checksums of the written tables equal the organization's")


def _export_to_file(cursor, path: str, result: ExportResult, progress) -> None:
    partial = f"{path}.tmp"
    header = (
        f"-- RouteOptimizer legacy database: organization {result.slug} "
        f"({result.organization_id}), written by export_organization.\n"
        f"-- Load it into an empty database: psql -v ON_ERROR_STOP=1 -d NAME -f FILE\n"
        "SET client_encoding = 'UTF8';\nSET standard_conforming_strings = on;\nBEGIN;\n"
    )
    with open(partial, "wb") as handle:
        handle.write(header.encode())
        handle.write(_ddl(result).encode())
        for revision in _alembic_rows(result):
            quoted = revision.replace("'", "''")
            handle.write(
                f"\nINSERT INTO alembic_version (version_num) VALUES ('{quoted}');\n".encode()
            )
        for table in WRITE_ORDER:
            columns = ", ".join(
                f'"{column}"'
                for column in legacy_column_names(table, billing=result.billing_columns)
            )
            handle.write(f"\nCOPY {table} ({columns}) FROM stdin;\n".encode())
            with cursor.copy(sql.SQL("COPY ({}) TO STDOUT").format(_select(table, result))) as out:
                for chunk in out:
                    handle.write(bytes(chunk))
            handle.write(b"\\.\n")
            progress(f"  wrote {result.counts[table]} {table}")
        handle.write(b"COMMIT;\n")
    os.replace(partial, path)
