"""validate_tenancy: read-only, set-wise proof that the migration lost and changed nothing.

Every check compares the live database with the pre-migration snapshot
(tenants.conversion.snapshot) or with the tenancy schema's invariants, and yields PASS or FAIL
with its figures. Everything runs in one REPEATABLE READ, READ ONLY transaction: the checks see
one consistent state, and PostgreSQL itself refuses any write, so validating can never change
what it validates.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field

from django.db import DatabaseError, OperationalError, connections, transaction
from psycopg import errors, sql

from routing.legacy import BILLING_COLUMN_NAMES, LEGACY_TABLES
from tenants.conversion.dbinfo import host_and_port, tables_hidden_by_row_level_security
from tenants.conversion.snapshot import (
    checksum_expression,
    digest_expression,
    pin_digest_settings,
    rows_table,
)
from tenants.models import DEFAULT_ORGANIZATION_SLUG

PASS, FAIL = "PASS", "FAIL"
MAX_NAMED_IDS = 20

# Tenant tables beyond the legacy four: the billing app's, when they exist in this database.
BILLING_TENANT_TABLES = (
    "service_plans",
    "customer_service_agreements",
    "payment_methods",
    "organization_subscriptions",
    "usage_tracking",
    "billing_webhook_events",
)
TENANT_TABLES = (*LEGACY_TABLES, *BILLING_TENANT_TABLES)
# service_plans.organization_id NULL is a global template, not a row without a tenant.
ORGANIZATION_MAY_BE_NULL = frozenset({"service_plans"})


@dataclass(frozen=True)
class Relation:
    """child.column references parent.id; both rows must be in the same organization."""

    child: str
    column: str
    parent: str
    # True when a parent without organization (a template) may be shared by every organization.
    parent_may_be_shared: bool = False
    # The trigger that keeps the relation inside one organization where no composite foreign
    # key can (a template belongs to no organization: billing.0007).
    guard_trigger: str | None = None

    @property
    def name(self) -> str:
        return f"{self.child}.{self.column} -> {self.parent}"


RELATIONS = (
    Relation("routes", "driver_id", "drivers"),
    Relation("route_stops", "route_id", "routes"),
    Relation("route_stops", "customer_id", "customers"),
    Relation("customers", "assigned_driver_id", "drivers"),
    Relation("customer_service_agreements", "customer_id", "customers"),
    Relation(
        "customer_service_agreements",
        "service_plan_id",
        "service_plans",
        parent_may_be_shared=True,
        guard_trigger="agreements_service_plan_in_organization",
    ),
    Relation("payment_methods", "customer_id", "customers"),
)


class CannotValidate(Exception):
    """validate_tenancy cannot run at all; the message is one line naming the problem and fix."""


@dataclass
class Check:
    name: str
    status: str
    figures: dict
    detail: str
    duration_seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return self.status == PASS

    def line(self) -> str:
        return f"{self.status}  {self.name:<36} {self.detail}"

    def as_dict(self) -> dict:
        return {
            "name": self.name,
            "status": self.status,
            "figures": self.figures,
            "detail": self.detail,
            "duration_seconds": round(self.duration_seconds, 3),
        }


@dataclass
class ValidationReport:
    database: dict
    checks: list[Check] = field(default_factory=list)
    duration_seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return all(check.passed for check in self.checks)

    @property
    def failed(self) -> list[Check]:
        return [check for check in self.checks if not check.passed]

    def summary(self) -> str:
        if self.passed:
            return f"all {len(self.checks)} checks passed in {self.duration_seconds:.1f}s"
        names = ", ".join(check.name for check in self.failed)
        return f"{len(self.failed)} of {len(self.checks)} checks failed: {names}"

    def as_dict(self) -> dict:
        return {
            "status": "pass" if self.passed else "fail",
            "checks": [check.as_dict() for check in self.checks],
            "database": self.database,
            "duration_seconds": round(self.duration_seconds, 3),
        }


def describe_database(connection) -> dict:
    host, port = host_and_port(connection.settings_dict)
    return {"name": connection.settings_dict.get("NAME"), "host": host, "port": port}


def validate_tenancy(*, using: str = "default") -> ValidationReport:
    """Run every check in one read-only transaction; raise CannotValidate when none can run."""
    # Hash joins over millions of ids stay in memory instead of spilling in batches.
    with validation_transaction(using, work_mem="256MB") as (connection, cursor, report):
        _require_migrated(connection, cursor)
        _require_every_row_visible(cursor)
        validator = _Validator(connection, cursor)
        for check in validator.checks():
            report.checks.append(_timed(check))
    return report


@contextmanager
def validation_transaction(using: str, *, work_mem: str | None = None):
    """One validation run's read-only REPEATABLE READ transaction (validate_tenancy's, and one
    organization's): yields (connection, cursor, report) with the report's database described;
    its duration is set when the block ends. A connection or database error is CannotValidate,
    with one line."""
    connection = connections[using]
    started = time.monotonic()
    report = ValidationReport(database=describe_database(connection))
    try:
        connection.ensure_connection()
    except OperationalError as error:
        from routeoptimizer.cli import connection_failure_message

        raise CannotValidate(connection_failure_message(error)) from error
    try:
        # durable: the READ ONLY must cover the whole transaction, so it cannot be nested.
        with transaction.atomic(using=using, durable=True), connection.cursor() as cursor:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            # A migration holding a table: give up with a clear line rather than queue.
            cursor.execute("SET LOCAL lock_timeout = '10s'")
            if work_mem:
                cursor.execute("SELECT set_config('work_mem', %s, true)", [work_mem])
            pin_digest_settings(cursor)
            report.database["server_version"] = _server_version(cursor)
            yield connection, cursor, report
    except DatabaseError as error:
        raise CannotValidate(_database_error_message(error)) from error
    report.duration_seconds = time.monotonic() - started


def _timed(check: Callable[[], Check]) -> Check:
    begun = time.monotonic()
    result = check()
    result.duration_seconds = time.monotonic() - begun
    return result


def _database_error_message(error: DatabaseError) -> str:
    cause = error.__cause__
    text = " ".join(str(cause or error).split())
    if isinstance(cause, errors.InsufficientPrivilege) and "row-level security" in text:
        return (
            f"{text}: validate_tenancy must see every organization's rows; run it as the "
            f"tables' owner (the migration role) or a role with BYPASSRLS"
        )
    if isinstance(cause, errors.LockNotAvailable):
        return (
            f"a table is locked by another session ({text}): wait for the migration or the "
            f"session holding it (see tenancy_preflight), then run validate_tenancy again"
        )
    return f"validation stopped on a database error ({text}); nothing was changed"


def _server_version(cursor) -> str:
    cursor.execute("SHOW server_version")
    return cursor.fetchone()[0].split()[0]


def _require_migrated(connection, cursor) -> None:
    from django.db.migrations.executor import MigrationExecutor

    migrate_first = "run `python manage.py migrate` first"
    cursor.execute("SELECT to_regclass('django_migrations') IS NOT NULL")
    if not cursor.fetchone()[0]:
        raise CannotValidate(
            f"the database is not migrated (it has no django_migrations table): {migrate_first}"
        )
    executor = MigrationExecutor(connection)
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    if plan:
        first = plan[0][0]
        raise CannotValidate(
            f"the schema is not migrated: {len(plan)} migration{'s' if len(plan) != 1 else ''} "
            f"still to apply (next: {first.app_label}.{first.name}); {migrate_first}"
        )
    from tenants.conversion.journal import interrupted

    # Every migration recorded, and yet one may be half-reversed (an interrupted rollback).
    if found := interrupted(connection, executor.loader):
        raise CannotValidate(
            f"{found[0].describe()}; run migrate (or rollback_tenancy) to finish it, then "
            f"validate_tenancy again"
        )
    no_snapshot = (
        "there is no pre-migration snapshot to compare with ({}); it is recorded by "
        "tenants.0001_legacy_snapshot before any legacy table changes, so it cannot be retaken "
        "now: restore the pre-migration backup and migrate again"
    )
    cursor.execute("SELECT to_regclass('tenancy_legacy_snapshot') IS NOT NULL")
    if not cursor.fetchone()[0]:
        raise CannotValidate(no_snapshot.format("no tenancy_legacy_snapshot table"))
    cursor.execute("SELECT table_name FROM tenancy_legacy_snapshot")
    recorded = {name for (name,) in cursor.fetchall()}
    for table in LEGACY_TABLES:
        if table not in recorded:
            raise CannotValidate(no_snapshot.format(f"tenancy_legacy_snapshot has no {table}"))
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [rows_table(table)])
        if not cursor.fetchone()[0]:
            raise CannotValidate(no_snapshot.format(f"{rows_table(table)} is missing"))


def _require_every_row_visible(cursor) -> None:
    """Refuse to count through row level security: it would report every hidden row missing."""
    hidden = tables_hidden_by_row_level_security(cursor, list(TENANT_TABLES))
    if hidden:
        cursor.execute("SELECT current_user")
        role = cursor.fetchone()[0]
        raise CannotValidate(
            f"row level security hides rows of {', '.join(hidden)} from role {role!r}: run "
            f"validate_tenancy as the tables' owner (MIGRATION_DATABASE_URL) or a role with "
            f"BYPASSRLS"
        )


@dataclass
class TableFigures:
    """One pass over a tenant table: its rows, and those without an existing organization."""

    rows: int
    null_organization: int
    unknown_organization: int


@dataclass
class Fidelity:
    """The snapshot's rows of one legacy table against the live rows with the same ids."""

    snapshot_rows: int
    missing: int
    changed: int
    outside_default: int
    checksum_matches: bool | None = None
    problem: str | None = None  # why the content could not be verified
    named: list[str] = field(default_factory=list)  # "<id> missing|changed", at most 20
    named_outside_default: list[str] = field(default_factory=list)
    seconds: float = 0.0  # the pass over the table, digests included


class _Validator:
    """The checks, over one cursor in the read-only transaction.

    The expensive pass (one per legacy table: every live row's digest against the snapshot's)
    is shared by row_counts, legacy_rows_in_default_organization and content_fidelity, and
    paid by the first of them: its time is in content_fidelity's figures, per table.
    """

    def __init__(self, connection, cursor):
        self.connection = connection
        self.cursor = cursor
        self.columns = self._table_columns()
        self.tenant_tables = [
            table for table in TENANT_TABLES if "organization_id" in self.columns.get(table, ())
        ]
        self.default_organization_id = self._value(
            "SELECT id::text FROM organizations WHERE slug = %s", [DEFAULT_ORGANIZATION_SLUG]
        )
        self._figures: dict[str, TableFigures] = {}
        self._fidelity: dict[str, Fidelity] = {}
        self._spans: dict[str, tuple[str | None, str | None] | None] = {}
        self._guards: dict[str, tuple[str, str]] | None = None

    def checks(self) -> list[Callable[[], Check]]:
        return [
            self.check_row_counts,
            self.check_organization_not_null,
            self.check_organization_exists,
            self.check_legacy_rows_in_default_organization,
            self.check_content_fidelity,
            self.check_tenant_consistency,
            self.check_schema,
            self.check_default_organization,
            self.check_enforcement,
        ]

    # --- helpers -------------------------------------------------------------------------------

    def _value(self, query, params=None):
        self.cursor.execute(query, params)
        row = self.cursor.fetchone()
        return row[0] if row else None

    def _table_columns(self) -> dict[str, list[str]]:
        self.cursor.execute(
            """
            SELECT c.relname, array_agg(a.attname::text ORDER BY a.attnum)
            FROM pg_class c
            JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
            WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p')
            GROUP BY c.relname
            """
        )
        return dict(self.cursor.fetchall())

    def figures(self, table: str) -> TableFigures:
        if table not in self._figures:
            self.cursor.execute(
                sql.SQL(
                    "SELECT count(*), count(*) FILTER (WHERE t.organization_id IS NULL), "
                    "count(*) FILTER (WHERE t.organization_id IS NOT NULL AND o.id IS NULL) "
                    "FROM {} t LEFT JOIN organizations o ON o.id = t.organization_id"
                ).format(sql.Identifier(table))
            )
            self._figures[table] = TableFigures(*self.cursor.fetchone())
        return self._figures[table]

    def fidelity(self, table: str) -> Fidelity:
        if table not in self._fidelity:
            begun = time.monotonic()
            self._fidelity[table] = self._compute_fidelity(table)
            self._fidelity[table].seconds = time.monotonic() - begun
        return self._fidelity[table]

    def _live_relation(self, table: str, columns: list[str]) -> tuple[sql.Composable, str | None]:
        """The live rows of `table` exposing the snapshot's `columns`, organization_id and id.

        Columns still on the table come from it; the billing columns that M001 moved off
        customers come from billing.legacy's reconstruction of them. Returns (relation, None),
        or (None, why) when a column can be found nowhere.
        """
        present = set(self.columns.get(table, ()))
        moved = [column for column in columns if column not in present]
        selected = [sql.Identifier("live", "id"), sql.Identifier("live", "organization_id")]
        joins = sql.SQL("")
        if moved:
            if table != "customers" or not set(moved) <= set(BILLING_COLUMN_NAMES):
                return None, f"{', '.join(moved)} no longer on {table}"
            reconstruction, why = billing_reconstruction()
            if reconstruction is None:
                return None, why
            joins = sql.SQL(" LEFT JOIN ({}) AS billing ON billing.customer_id = live.id").format(
                reconstruction
            )
        for column in columns:
            if column in ("id", "organization_id"):
                continue
            source = "billing" if column in moved else "live"
            selected.append(
                sql.SQL("{} AS {}").format(sql.Identifier(source, column), sql.Identifier(column))
            )
        relation = sql.SQL("(SELECT {} FROM {} AS live{}) AS t").format(
            sql.SQL(", ").join(selected), sql.Identifier(table), joins
        )
        return relation, None

    def _compute_fidelity(self, table: str) -> Fidelity:
        columns = self._value(
            "SELECT columns FROM tenancy_legacy_snapshot WHERE table_name = %s", [table]
        )
        if isinstance(columns, str):  # Django's psycopg backend hands jsonb over as text
            columns = json.loads(columns)
        snapshot = sql.Identifier(rows_table(table))
        live, problem = self._live_relation(table, columns)
        if live is None:
            # Still count what can be counted: which snapshot ids are gone.
            self.cursor.execute(
                sql.SQL(
                    "SELECT count(*), count(*) FILTER (WHERE l.id IS NULL), "
                    "count(*) FILTER (WHERE l.id IS NOT NULL AND l.organization_id "
                    "IS DISTINCT FROM %s::uuid) "
                    "FROM {} s LEFT JOIN {} l ON l.id = s.id"
                ).format(snapshot, sql.Identifier(table)),
                [self.default_organization_id],
            )
            total, missing, outside = self.cursor.fetchone()
            fidelity = Fidelity(total, missing, 0, outside, problem=problem)
        else:
            digest = digest_expression(columns, "t")
            # In the same pass, the order-independent checksum recomputed from the stored
            # digests: proves the per-row table is the one the snapshot summed.
            self.cursor.execute(
                sql.SQL(
                    "SELECT count(*), count(*) FILTER (WHERE l.id IS NULL), "
                    "count(*) FILTER (WHERE l.digest <> s.digest), "
                    "count(*) FILTER (WHERE l.id IS NOT NULL AND l.organization_id "
                    "IS DISTINCT FROM %s::uuid), "
                    "{checksum} = (SELECT checksum FROM tenancy_legacy_snapshot "
                    "WHERE table_name = %s) "
                    "FROM {snapshot} s LEFT JOIN "
                    "(SELECT t.id, t.organization_id, {digest} AS digest FROM {live}) l "
                    "ON l.id = s.id"
                ).format(
                    checksum=checksum_expression(sql.Identifier("s", "digest")),
                    snapshot=snapshot,
                    digest=digest,
                    live=live,
                ),
                [self.default_organization_id, table],
            )
            fidelity = Fidelity(*self.cursor.fetchone())
            if fidelity.missing or fidelity.changed:
                self.cursor.execute(
                    sql.SQL(
                        "SELECT s.id::text, CASE WHEN l.id IS NULL THEN 'missing' "
                        "ELSE 'changed' END "
                        "FROM {snapshot} s LEFT JOIN "
                        "(SELECT t.id, {digest} AS digest FROM {live}) l ON l.id = s.id "
                        "WHERE l.id IS NULL OR l.digest <> s.digest ORDER BY s.id LIMIT {limit}"
                    ).format(
                        snapshot=snapshot,
                        digest=digest,
                        live=live,
                        limit=sql.Literal(MAX_NAMED_IDS),
                    )
                )
                fidelity.named = [f"{id_} {kind}" for id_, kind in self.cursor.fetchall()]
        if fidelity.outside_default:
            self.cursor.execute(
                sql.SQL(
                    "SELECT t.id::text FROM {} s JOIN {} t ON t.id = s.id "
                    "WHERE t.organization_id IS DISTINCT FROM %s::uuid ORDER BY t.id LIMIT {}"
                ).format(snapshot, sql.Identifier(table), sql.Literal(MAX_NAMED_IDS)),
                [self.default_organization_id],
            )
            fidelity.named_outside_default = [id_ for (id_,) in self.cursor.fetchall()]
        return fidelity

    # --- the checks ----------------------------------------------------------------------------

    def check_row_counts(self) -> Check:
        figures, parts, problems = {}, [], []
        for table in LEGACY_TABLES:
            fidelity, live = self.fidelity(table), self.figures(table).rows
            added = live - (fidelity.snapshot_rows - fidelity.missing)
            figures[table] = {
                "snapshot": fidelity.snapshot_rows,
                "live": live,
                "missing": fidelity.missing,
                "added": added,
            }
            part = f"{table} {live}"
            if added:
                part += f" (+{added} added since the snapshot)"
            parts.append(part)
            if fidelity.missing:
                problems.append(
                    f"{table}: {fidelity.missing} of {fidelity.snapshot_rows} snapshot rows missing"
                )
        if problems:
            return Check("row_counts", FAIL, figures, "; ".join(problems))
        return Check("row_counts", PASS, figures, "every snapshot row present: " + ", ".join(parts))

    def check_organization_not_null(self) -> Check:
        checked = [t for t in self.tenant_tables if t not in ORGANIZATION_MAY_BE_NULL]
        figures = {table: self.figures(table).null_organization for table in checked}
        bad = {table: count for table, count in figures.items() if count}
        if bad:
            detail = ", ".join(f"{table}: {_rows(count)}" for table, count in bad.items())
            return Check(
                "organization_not_null", FAIL, figures, f"rows without an organization_id: {detail}"
            )
        return Check(
            "organization_not_null",
            PASS,
            figures,
            f"no NULL organization_id in {', '.join(checked)}",
        )

    def check_organization_exists(self) -> Check:
        figures = {table: self.figures(table).unknown_organization for table in self.tenant_tables}
        bad = {table: count for table, count in figures.items() if count}
        if bad:
            detail = ", ".join(f"{table}: {_rows(count)}" for table, count in bad.items())
            return Check(
                "organization_exists",
                FAIL,
                figures,
                f"rows whose organization does not exist: {detail}",
            )
        rows = sum(self.figures(table).rows for table in self.tenant_tables)
        return Check(
            "organization_exists",
            PASS,
            figures,
            f"all {rows} rows of {len(self.tenant_tables)} tenant tables belong to an "
            f"existing organization",
        )

    def check_legacy_rows_in_default_organization(self) -> Check:
        name = "legacy_rows_in_default_organization"
        figures = {table: self.fidelity(table).outside_default for table in LEGACY_TABLES}
        if self.default_organization_id is None:
            return Check(
                name, FAIL, figures, f"no default organization (slug {DEFAULT_ORGANIZATION_SLUG!r})"
            )
        bad = [table for table in LEGACY_TABLES if figures[table]]
        if bad:
            detail = "; ".join(
                f"{table}: {_rows(figures[table])}"
                + _ids(self.fidelity(table).named_outside_default, figures[table])
                for table in bad
            )
            return Check(
                name, FAIL, figures, f"legacy rows outside the default organization: {detail}"
            )
        total = sum(
            self.fidelity(table).snapshot_rows - self.fidelity(table).missing
            for table in LEGACY_TABLES
        )
        return Check(
            name, PASS, figures, f"all {total} legacy rows are in {DEFAULT_ORGANIZATION_SLUG!r}"
        )

    def check_content_fidelity(self) -> Check:
        figures, problems, verified = {}, [], 0
        for table in LEGACY_TABLES:
            fidelity = self.fidelity(table)
            figures[table] = {
                "verified": fidelity.snapshot_rows - fidelity.missing - fidelity.changed
                if fidelity.problem is None
                else 0,
                "changed": fidelity.changed,
                "missing": fidelity.missing,
                "snapshot_checksum_matches": fidelity.checksum_matches,
                "seconds": round(fidelity.seconds, 2),
            }
            if fidelity.problem is not None:
                problems.append(f"{table}: cannot verify ({fidelity.problem})")
                continue
            verified += figures[table]["verified"]
            if fidelity.checksum_matches is False:
                problems.append(
                    f"{table}: the stored row digests do not add up to the snapshot's checksum"
                )
            bad = fidelity.changed + fidelity.missing
            if bad:
                counts = " and ".join(
                    f"{count} {what}"
                    for count, what in (
                        (fidelity.changed, "changed"),
                        (fidelity.missing, "missing"),
                    )
                    if count
                )
                problems.append(f"{table}: {counts}" + _ids(fidelity.named, bad))
        if problems:
            return Check("content_fidelity", FAIL, figures, "; ".join(problems))
        return Check(
            "content_fidelity",
            PASS,
            figures,
            f"all {verified} legacy rows match their snapshot digests",
        )

    def check_tenant_consistency(self) -> Check:
        mismatches: dict[str, int] = {}
        single: list[str] = []
        problems = []
        by_child: dict[str, list[Relation]] = {}
        for relation in RELATIONS:
            table_columns = self.columns.get(relation.child, ())
            if not (
                relation.column in table_columns
                and "organization_id" in table_columns
                and "organization_id" in self.columns.get(relation.parent, ())
            ):
                continue
            if self._one_organization_for_both(relation):
                mismatches[relation.name] = 0
                single.append(relation.name)
            else:
                by_child.setdefault(relation.child, []).append(relation)
        for child, relations in by_child.items():
            joins, counts = [], []
            for number, relation in enumerate(relations):
                alias = sql.Identifier(f"p{number}")
                joins.append(
                    sql.SQL("LEFT JOIN {} {} ON {}.id = c.{}").format(
                        sql.Identifier(relation.parent),
                        alias,
                        alias,
                        sql.Identifier(relation.column),
                    )
                )
                counts.append(
                    sql.SQL("count(*) FILTER (WHERE {})").format(_mismatch(alias, relation))
                )
            self.cursor.execute(
                sql.SQL("SELECT {} FROM {} c {}").format(
                    sql.SQL(", ").join(counts), sql.Identifier(child), sql.SQL(" ").join(joins)
                )
            )
            for relation, count in zip(relations, self.cursor.fetchone(), strict=True):
                mismatches[relation.name] = count
                if count:
                    problems.append(
                        f"{relation.name}: {_rows(count)} in another organization "
                        f"than their {relation.parent[:-1]}"
                        + _ids(self._mismatched_ids(relation), count)
                    )
        guards = self.guards()
        checked = list(mismatches)
        by_constraint = {
            name: guards[name][1]
            for name in checked
            if name in guards and guards[name][0] == "constraint"
        }
        by_trigger = {
            name: guards[name][1]
            for name in checked
            if name in guards and guards[name][0] == "trigger"
        }
        figures = {
            "mismatches": mismatches,
            "proven_by_one_organization": single,
            # The second layer: what PostgreSQL itself refuses, whatever the data says now.
            "proven_by_constraint": by_constraint,
            "guarded_by_trigger": by_trigger,
            "sql_check_only": [name for name in checked if name not in guards],
        }
        if problems:
            return Check("tenant_consistency", FAIL, figures, "; ".join(problems))
        how = f"; {len(single)} proven without a join (one organization)" if single else ""
        enforced = (
            f"; {len(by_constraint)} proven by a composite foreign key" if by_constraint else ""
        )
        if by_trigger:
            enforced += f", {len(by_trigger)} guarded by a trigger"
        unguarded = len(checked) - len(by_constraint) - len(by_trigger)
        if unguarded:
            enforced += f"; {unguarded} checked by this query only"
        return Check(
            "tenant_consistency",
            PASS,
            figures,
            f"every row is in its parent's organization ({len(mismatches)} relations{how}"
            f"{enforced})",
        )

    def guards(self) -> dict[str, tuple[str, str]]:
        """Per relation name, what makes PostgreSQL refuse a cross-organization reference:
        ("constraint", name) for a validated (organization_id, <column>) -> (organization_id,
        id) foreign key, ("trigger", name) for an enabled guard trigger. Relations with neither
        are absent."""
        if self._guards is None:
            self.cursor.execute(
                """
                SELECT child.relname, col.attname, parent.relname, con.conname
                FROM pg_constraint con
                JOIN pg_class child ON child.oid = con.conrelid
                JOIN pg_class parent ON parent.oid = con.confrelid
                JOIN pg_attribute org ON org.attrelid = con.conrelid AND org.attnum = con.conkey[1]
                JOIN pg_attribute col ON col.attrelid = con.conrelid AND col.attnum = con.conkey[2]
                JOIN pg_attribute porg
                  ON porg.attrelid = con.confrelid AND porg.attnum = con.confkey[1]
                JOIN pg_attribute pid
                  ON pid.attrelid = con.confrelid AND pid.attnum = con.confkey[2]
                WHERE con.contype = 'f' AND con.convalidated
                  AND con.connamespace = current_schema()::regnamespace
                  AND cardinality(con.conkey) = 2
                  AND org.attname = 'organization_id' AND porg.attname = 'organization_id'
                  AND pid.attname = 'id'
                ORDER BY con.conname
                """
            )
            constraints = {
                (child, column, parent): name
                for child, column, parent, name in self.cursor.fetchall()
            }
            self.cursor.execute(
                "SELECT c.relname, t.tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
                "WHERE c.relnamespace = current_schema()::regnamespace AND t.tgenabled <> 'D' "
                "AND NOT t.tgisinternal"
            )
            triggers = set(self.cursor.fetchall())
            self._guards = {}
            for relation in RELATIONS:
                key = (relation.child, relation.column, relation.parent)
                if key in constraints:
                    self._guards[relation.name] = ("constraint", constraints[key])
                elif (
                    relation.guard_trigger and (relation.child, relation.guard_trigger) in triggers
                ):
                    self._guards[relation.name] = ("trigger", relation.guard_trigger)
        return self._guards

    def _one_organization_for_both(self, relation: Relation) -> bool:
        """True when every row of child and parent is in one and the same organization (or the
        child is empty): then no pair can differ, and the join over millions of rows is not
        needed. Two index-only probes per table on idx_<table>_org."""
        child = self._organization_span(relation.child)
        if child is None:
            return True
        parent = self._organization_span(relation.parent)
        return child[0] == child[1] and (parent is None or parent == child)

    def _organization_span(self, table: str) -> tuple[str | None, str | None] | None:
        """(lowest, highest) organization_id of `table`, highest NULL when some row has none;
        None for an empty table."""
        if table not in self._spans:
            self.cursor.execute(
                sql.SQL(
                    # ::text outside the subqueries: inside, the planner prefers a full sort.
                    "SELECT (SELECT organization_id FROM {table} "
                    "ORDER BY organization_id ASC NULLS LAST LIMIT 1)::text, "
                    "(SELECT organization_id FROM {table} "
                    "ORDER BY organization_id DESC NULLS FIRST LIMIT 1)::text, "
                    "EXISTS (SELECT FROM {table})"
                ).format(table=sql.Identifier(table))
            )
            lowest, highest, any_row = self.cursor.fetchone()
            self._spans[table] = (lowest, highest) if any_row else None
        return self._spans[table]

    def _mismatched_ids(self, relation: Relation) -> list[str]:
        alias = sql.Identifier("p")
        self.cursor.execute(
            sql.SQL(
                "SELECT c.id::text FROM {} c JOIN {} p ON p.id = c.{} WHERE {} "
                "ORDER BY c.id LIMIT {}"
            ).format(
                sql.Identifier(relation.child),
                sql.Identifier(relation.parent),
                sql.Identifier(relation.column),
                _mismatch(alias, relation),
                sql.Literal(MAX_NAMED_IDS),
            )
        )
        return [id_ for (id_,) in self.cursor.fetchall()]

    def check_schema(self) -> Check:
        self.cursor.execute(
            """
            SELECT t.name,
                   a.attnotnull,
                   fk.convalidated,
                   fk.confrelid = 'organizations'::regclass,
                   ix.indisvalid,
                   ix.indrelid = c.oid
            FROM unnest(%s::text[]) AS t(name)
            LEFT JOIN pg_class c
                   ON c.relname = t.name AND c.relnamespace = current_schema()::regnamespace
            LEFT JOIN pg_attribute a
                   ON a.attrelid = c.oid AND a.attname = 'organization_id' AND NOT a.attisdropped
            LEFT JOIN pg_constraint fk
                   ON fk.conrelid = c.oid AND fk.conname = 'fk_' || t.name || '_organization'
                  AND fk.contype = 'f'
            LEFT JOIN pg_class ic
                   ON ic.relname = 'idx_' || t.name || '_org'
                  AND ic.relnamespace = current_schema()::regnamespace
            LEFT JOIN pg_index ix ON ix.indexrelid = ic.oid
            """,
            [list(LEGACY_TABLES)],
        )
        figures, problems = {}, []
        for (
            table,
            not_null,
            fk_valid,
            fk_target_ok,
            index_valid,
            index_on_table,
        ) in self.cursor.fetchall():
            foreign_key = (
                "missing"
                if fk_valid is None
                else "NOT VALID"
                if not fk_valid
                else "wrong target"
                if not fk_target_ok
                else "validated"
            )
            index = (
                "missing"
                if index_valid is None
                else "on another table"
                if not index_on_table
                else "INVALID"
                if not index_valid
                else "valid"
            )
            figures[table] = {
                "organization_id_not_null": bool(not_null),
                "foreign_key": foreign_key,
                "index": index,
            }
            if not not_null:
                problems.append(f"{table}.organization_id is nullable")
            if foreign_key != "validated":
                problems.append(f"fk_{table}_organization {foreign_key}")
            if index != "valid":
                problems.append(f"idx_{table}_org {index}")
        guards = self.guards()
        relations = [
            relation
            for relation in RELATIONS
            if relation.column in self.columns.get(relation.child, ())
            and "organization_id" in self.columns.get(relation.child, ())
            and "organization_id" in self.columns.get(relation.parent, ())
        ]
        figures["organization_keys"] = {
            relation.name: guards.get(relation.name, ("missing", None))[1] or "missing"
            for relation in relations
        }
        for relation in relations:
            if relation.name not in guards:
                what = (
                    f"trigger {relation.guard_trigger}"
                    if relation.guard_trigger
                    else f"validated foreign key (organization_id, {relation.column}) -> "
                    f"{relation.parent} (organization_id, id)"
                )
                problems.append(f"{relation.name}: no {what}")
        if problems:
            return Check("schema", FAIL, figures, "; ".join(problems))
        return Check(
            "schema",
            PASS,
            figures,
            f"organization_id NOT NULL, foreign key validated and index valid on "
            f"{', '.join(LEGACY_TABLES)}; {len(relations)} relations kept inside one "
            f"organization by PostgreSQL",
        )

    def check_default_organization(self) -> Check:
        figures = {"organization_id": self.default_organization_id, "owners": 0}
        if self.default_organization_id is None:
            return Check(
                "default_organization",
                FAIL,
                figures,
                f"no organization with slug {DEFAULT_ORGANIZATION_SLUG!r}: "
                f"the legacy rows have no tenant",
            )
        self.cursor.execute(
            "SELECT u.email FROM organization_users m JOIN users u ON u.id = m.user_id "
            "WHERE m.organization_id = %s::uuid AND m.role = 'owner' ORDER BY u.email",
            [self.default_organization_id],
        )
        owners = [email for (email,) in self.cursor.fetchall()]
        figures["owners"] = len(owners)
        if not owners:
            return Check(
                "default_organization",
                FAIL,
                figures,
                f"organization {DEFAULT_ORGANIZATION_SLUG!r} has no owner: nobody can "
                f"administer it (create one: python manage.py createsuperuser, then add "
                f"them as owner in the admin)",
            )
        return Check(
            "default_organization",
            PASS,
            figures,
            f"{DEFAULT_ORGANIZATION_SLUG!r} present, owned by {', '.join(owners)}",
        )

    def check_enforcement(self) -> Check:
        from tenants.rls import row_level_security_status

        figures, problems = {}, []
        for status in row_level_security_status(self.connection, self.tenant_tables):
            table = status["table"]
            figures[table] = {
                "enabled": status["enabled"],
                "forced": status["forced"],
                "policies": status["policies"],
            }
            if table in LEGACY_TABLES:
                # Expanded (the old application's inserts get the default organization) until
                # contract_tenancy drops it.
                figures[table]["organization_default"] = status["organization_default"]
            if not status["enabled"]:
                problems.append(f"{table}: row level security not enabled")
            elif not status["policies"]:
                problems.append(f"{table}: no policy")
        from tenants.checks import TENANCY_KEY_HINT
        from tenants.verification import claim_verifies

        verifies = claim_verifies(self.connection)
        if verifies is False:
            problems.append(
                "the database does not know the tenancy key this application signs claims "
                f"with, so every tenant query of the application sees nothing: {TENANCY_KEY_HINT}"
            )
        if problems:
            return Check("enforcement", FAIL, figures, "; ".join(problems))
        forced = sum(1 for value in figures.values() if value["forced"])
        force = (
            "forced on all, owner included"
            if forced == len(figures)
            else f"forced on {forced}; contract_tenancy forces it once the old application is gone"
        )
        return Check(
            "enforcement",
            PASS,
            figures,
            f"row level security enabled with policies on {len(figures)} tenant tables ({force})"
            + ("; the application's organization claims verify" if verifies else ""),
        )


def _mismatch(alias: sql.Identifier, relation: Relation) -> sql.Composable:
    """The parent row exists and is in another organization than the child row `c`."""
    shared = sql.SQL(" AND {}.organization_id IS NOT NULL").format(alias)
    return sql.SQL(
        "{alias}.id IS NOT NULL{shared} "
        "AND {alias}.organization_id IS DISTINCT FROM c.organization_id"
    ).format(alias=alias, shared=shared if relation.parent_may_be_shared else sql.SQL(""))


def _rows(count: int) -> str:
    return f"{count} row" if count == 1 else f"{count} rows"


def _ids(ids: list[str], total: int) -> str:
    if not ids:
        return ""
    more = f" and {total - len(ids)} more" if total > len(ids) else ""
    return f" (ids: {', '.join(ids)}{more})"


def billing_reconstruction() -> tuple[sql.Composable | None, str | None]:
    """The SQL rebuilding the eight legacy billing values per customer, from billing.legacy.

    Expected shape: billing.legacy.reconstruct_sql() returns a SELECT (str or psycopg
    Composable) with one row per customer that has billing values: customer_id and the eight
    legacy billing columns under their legacy names.
    """
    why = (
        "the billing columns moved off customers, but billing.legacy.reconstruct_sql() "
        "is not available to rebuild them"
    )
    try:
        from billing import legacy
    except ImportError:
        return None, why
    reconstruct = getattr(legacy, "reconstruct_sql", None)
    if reconstruct is None:
        return None, why
    query = reconstruct()
    return (sql.SQL(query) if isinstance(query, str) else query), None
