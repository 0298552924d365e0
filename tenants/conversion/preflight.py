"""tenancy_preflight: what `migrate` would meet in this database, checked before it runs.

The plan's pre-migration checklist as one read-only pass: the connection and server version,
the state of the database (empty, legacy, adopted, migrated or partly migrated), whether the
legacy tables match the contract, free disk against what the migration adds, sessions whose
open transactions would make the migration's DDL wait (and everyone queue behind it), and the
migrations still to apply with the lock each takes (tenants.conversion.lock_plan).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

from django.db import OperationalError, connections, transaction
from django.db.migrations.exceptions import InconsistentMigrationHistory

from routing.legacy import LEGACY_TABLES, inspect_legacy_schema
from tenants.conversion.dbinfo import host_and_port, libpq_parameters
from tenants.conversion.lock_plan import lock_plan_for

OK, WARN, FIX, INFO = "OK", "WARN", "FIX", "INFO"

EMPTY, LEGACY, ADOPTED, MIGRATED, PARTLY_MIGRATED = (
    "empty",
    "legacy",
    "adopted",
    "migrated",
    "partly migrated",
)
LEGACY_MIGRATION = ("routing", "0001_legacy_schema")
PROJECT_APPS = ("tenants", "accounts", "routing", "billing", "geocoding")

# A transaction older than this is "long-running": CREATE INDEX CONCURRENTLY waits for it to end,
# and a lock it holds makes the short DDL locks time out again and again.
LONG_TRANSACTION_SECONDS = 60
# A session holding a lock on a legacy table this long is not a passing query.
HELD_LOCK_SECONDS = 5
# What the migration adds per legacy row: bench/validate_at_scale.py measured the database
# growing by 120 bytes per legacy row at 1,000,000 customers (the snapshot's (id, digest) rows
# and their primary key, the organization indexes, the moved billing rows); the WAL written
# meanwhile needs about as much again until the next checkpoint recycles it.
BYTES_PER_LEGACY_ROW = 300
LOCAL_HOSTS = {"", "localhost", "127.0.0.1", "::1"}


class CannotPreflight(Exception):
    """The checks cannot run at all (no connection); the message is one line with the fix."""


@dataclass
class Finding:
    topic: str
    status: str
    summary: str
    lines: list[str] = field(default_factory=list)


@dataclass
class PreflightReport:
    findings: list[Finding] = field(default_factory=list)
    state: str | None = None

    def add(self, *args, **kwargs) -> Finding:
        finding = Finding(*args, **kwargs)
        self.findings.append(finding)
        return finding

    @property
    def must_fix(self) -> list[Finding]:
        return [finding for finding in self.findings if finding.status == FIX]


def run_preflight(*, using: str = "default") -> PreflightReport:
    connection = connections[using]
    try:
        connection.ensure_connection()
    except OperationalError as error:
        from routeoptimizer.cli import connection_failure_message

        raise CannotPreflight(connection_failure_message(error)) from error
    report = PreflightReport()
    # Read only, like validate_tenancy: the checklist must not change what it checks.
    with transaction.atomic(using=using, durable=True), connection.cursor() as cursor:
        cursor.execute("SET TRANSACTION READ ONLY")
        _connection(report, connection, cursor)
        executor = _executor(connection)
        legacy = inspect_legacy_schema(cursor, count_rows=True)
        _state(report, connection, cursor, executor, legacy)
        _legacy_schema(report, legacy)
        if LEGACY_MIGRATION not in executor.loader.applied_migrations:
            _collisions(report, cursor)
        _disk(report, connection, cursor)
        _sessions(report, cursor)
        _migrations(report, executor)
        _statistics(report, cursor)
        _distribution(report, cursor)
    return report


def _executor(connection):
    from django.db.migrations.executor import MigrationExecutor

    return MigrationExecutor(connection)


def _connection(report: PreflightReport, connection, cursor) -> None:
    cursor.execute("SELECT current_user, current_setting('server_version')")
    user, version = cursor.fetchone()
    where = ":".join(host_and_port(connection.settings_dict))
    report.add(
        "connection",
        OK,
        f"database {connection.settings_dict['NAME']!r} at {where} as {user}; PostgreSQL {version}",
    )


# --- the state of the database -------------------------------------------------------------


def _state(report: PreflightReport, connection, cursor, executor, legacy) -> None:
    loader = executor.loader
    project = [key for key in loader.graph.nodes if key[0] in PROJECT_APPS]
    applied = [key for key in project if key in loader.applied_migrations]
    pending = executor.migration_plan(loader.graph.leaf_nodes())
    interrupted = _interrupted(connection, loader)
    leftovers = _leftovers(cursor)

    lines = [f"{name} was interrupted: {reason}" for name, reason in interrupted]
    lines += leftovers
    try:
        loader.check_consistent_history(connection)
    except InconsistentMigrationHistory as error:
        report.state = PARTLY_MIGRATED
        report.add(
            "database state",
            FIX,
            f"{PARTLY_MIGRATED}, and the migration history is inconsistent: `migrate` will "
            f"refuse to run",
            [str(error), *lines],
        )
        return

    cursor.execute(
        "SELECT count(*) FROM pg_class WHERE relnamespace = current_schema()::regnamespace "
        "AND relkind IN ('r', 'p')"
    )
    tables = cursor.fetchone()[0]
    counts = legacy.summary() if legacy.row_counts else ", ".join(legacy.present_tables)
    if not applied and not interrupted:
        if legacy.is_empty:
            state = EMPTY
            summary = (
                f"{EMPTY}: no legacy tables; migrate will create the whole schema"
                if not tables
                else f"{EMPTY} of RouteOptimizer tables ({tables} other tables): migrate "
                f"will create the whole schema beside them"
            )
        else:
            state, summary = LEGACY, f"{LEGACY}: the old application's tables ({counts})"
    elif not pending and not interrupted and not leftovers:
        state, summary = MIGRATED, f"{MIGRATED}: every migration is applied; nothing to do"
    elif applied == [LEGACY_MIGRATION] and not interrupted and not leftovers:
        state = ADOPTED
        summary = f"{ADOPTED}: the legacy tables are adopted, no tenancy change made ({counts})"
    else:
        state = PARTLY_MIGRATED
        summary = f"{PARTLY_MIGRATED}: {len(applied)} of {len(project)} migrations applied"
        if interrupted:
            summary += ", interrupted in " + ", ".join(name for name, _reason in interrupted)
        elif pending:
            summary += f", next {_name(pending[0][0])}"
        summary += "; `migrate` resumes from there (every step is idempotent)"
    report.state = state
    status = WARN if state == PARTLY_MIGRATED else OK
    report.add("database state", status, summary, lines)


def _name(migration) -> str:
    return f"{migration.app_label}.{migration.name}"


def _interrupted(connection, loader) -> list[tuple[str, str]]:
    """Migrations a crash interrupted: from the journal (tenants.conversion.journal), and, for a
    database interrupted before the journal existed, unrecorded organization columns that exist."""
    from tenants.conversion import journal
    from tenants.conversion.operations import AddOrganizationColumn, column_exists

    found = [(item.label, item.describe()) for item in journal.interrupted(connection, loader)]
    known = {name for name, _reason in found}
    for key, migration in loader.graph.nodes.items():
        if key in loader.applied_migrations:
            continue
        for operation in migration.operations:
            for step in getattr(operation, "database_operations", []):
                if (
                    isinstance(step, AddOrganizationColumn)
                    and f"{key[0]}.{key[1]}" not in known
                    and column_exists(connection, step.table, "organization_id")
                ):
                    found.append(
                        (
                            f"{key[0]}.{key[1]}",
                            f"{step.table}.organization_id exists but the migration is not "
                            f"recorded",
                        )
                    )
    return found


def _leftovers(cursor) -> list[str]:
    """Invalid indexes and unvalidated constraints: what an interrupted step leaves behind."""
    cursor.execute(
        """
        SELECT format('index %s on %s is invalid (an interrupted CREATE INDEX CONCURRENTLY)',
                      i.indexrelid::regclass, i.indrelid::regclass)
        FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
        WHERE c.relnamespace = current_schema()::regnamespace AND NOT i.indisvalid
        UNION ALL
        SELECT format('constraint %s on %s is NOT VALID (its validation did not finish)',
                      conname, conrelid::regclass)
        FROM pg_constraint
        WHERE connamespace = current_schema()::regnamespace AND NOT convalidated
        ORDER BY 1
        """
    )
    return [line for (line,) in cursor.fetchall()]


# --- what migrate will create ----------------------------------------------------------------

# Tables the chain creates that are no Django model's (the snapshot, M001's bookkeeping, the key,
# import_organization's proofs and remapped ids).
CHAIN_EXTRA_TABLES = (
    "tenancy_legacy_snapshot",
    "tenancy_keys",
    "legacy_customer_billing",
    "legacy_service_plans",
    "legacy_customer_billing_changes",
    "tenancy_imports",
    "tenancy_import_id_map",
)
CHAIN_EXTRA_PREFIXES = ("tenancy_snapshot_rows_",)
# What a half-run attempt of the original plan (Alembic, MIGRATION_PLAN.md) creates first.
ORIGINAL_PLAN_TABLES = ("organizations", "users", "organization_users", "geocoding_cache")


def chain_created_tables() -> set[str]:
    """Every table the chain creates: the models' (Django's own included) and CHAIN_EXTRA_TABLES;
    not the legacy tables (adopted), django_migrations or the journal (the command's own)."""
    from django.apps import apps

    tables = {
        model._meta.db_table
        for model in apps.get_models(include_auto_created=True)
        if model._meta.managed or model._meta.auto_created
    }
    return (tables | set(CHAIN_EXTRA_TABLES)) - set(LEGACY_TABLES) - {"django_migrations"}


def chain_collisions(cursor) -> list[str]:
    """Relations and types already here under a name the chain is about to create, one line each
    (for a database not adopted yet: once adopted, they are the chain's own)."""
    names = sorted(chain_created_tables())
    cursor.execute(
        """
        SELECT CASE c.relkind WHEN 'r' THEN 'table' WHEN 'p' THEN 'table' WHEN 'v' THEN 'view'
                   WHEN 'm' THEN 'materialized view' WHEN 'S' THEN 'sequence'
                   WHEN 'i' THEN 'index' WHEN 'f' THEN 'foreign table' ELSE 'relation' END,
               c.relname
        FROM pg_class c
        WHERE c.relnamespace = current_schema()::regnamespace
          AND (c.relname = ANY(%s) OR c.relname LIKE ANY(%s))
        UNION ALL
        SELECT 'type', t.typname FROM pg_type t
        WHERE t.typnamespace = current_schema()::regnamespace AND t.typrelid = 0
          AND t.typcategory <> 'A' AND t.typname = ANY(%s)
        ORDER BY 2, 1
        """,
        [names, [f"{prefix}%" for prefix in CHAIN_EXTRA_PREFIXES], names],
    )
    return [f"{kind} {name}" for kind, name in cursor.fetchall()]


def collision_message(found: list[str]) -> str:
    """One line: what is in the way, and what to do with it."""
    names = {line.split()[-1] for line in found}
    original = sorted(names & set(ORIGINAL_PLAN_TABLES))
    advice = (
        f"{', '.join(original)} look like leftovers of a half-run attempt of the original "
        f"(Alembic) plan: restore the backup taken before that attempt, or, if they hold nothing "
        f"you need, drop them (DROP TABLE {', '.join(original)} CASCADE) and run migrate again"
        if original
        else "rename or drop them (after checking they hold nothing you need) and run migrate again"
    )
    return (
        f"this database already holds {len(found)} object(s) the migration is about to create "
        f"({', '.join(found)}); {advice}; nothing was changed"
    )


def _collisions(report: PreflightReport, cursor) -> None:
    found = chain_collisions(cursor)
    if found:
        report.add("chain objects", FIX, collision_message(found), found)
    else:
        report.add("chain objects", OK, "none of the tables and types migrate creates exists yet")


# --- legacy schema, disk, sessions, migrations ----------------------------------------------


def _legacy_schema(report: PreflightReport, legacy) -> None:
    if report.state in (MIGRATED, PARTLY_MIGRATED):
        report.add(
            "legacy schema",
            INFO,
            "already adopted (routing.0001_legacy_schema checked it column by column then)",
        )
    elif legacy.is_empty:
        report.add("legacy schema", INFO, "no legacy tables: nothing to adopt")
    elif legacy.differences:
        report.add(
            "legacy schema",
            FIX,
            f"does not match legacy_schema.sql ({len(legacy.differences)} difference"
            f"{'s' if len(legacy.differences) != 1 else ''}); migrate would refuse to adopt it",
            [difference.describe() for difference in legacy.differences],
        )
    else:
        billing = "with" if legacy.has_billing_columns else "without"
        report.add(
            "legacy schema",
            OK,
            f"matches legacy_schema.sql, column by column ({billing} the billing columns)",
        )


def _disk(report: PreflightReport, connection, cursor) -> None:
    cursor.execute(
        "SELECT pg_database_size(current_database()), "
        "pg_has_role(current_user, 'pg_read_all_settings', 'USAGE')"
    )
    database_size, may_read_settings = cursor.fetchone()
    legacy_rows = 0
    for table in LEGACY_TABLES:
        cursor.execute(
            "SELECT coalesce((SELECT greatest(reltuples, 0)::bigint FROM pg_class "
            "WHERE oid = to_regclass(%s)), 0)",
            [table],
        )
        legacy_rows += cursor.fetchone()[0]
    needed = 0 if report.state == MIGRATED else legacy_rows * BYTES_PER_LEGACY_ROW
    figures = f"database {_size(database_size)}" + (
        f"; migrate adds about {_size(needed)}" if needed else ""
    )

    data_directory = None
    if may_read_settings:
        cursor.execute("SELECT current_setting('data_directory')")
        data_directory = cursor.fetchone()[0]
    host = libpq_parameters(connection.settings_dict).get("host", "")
    local = host.startswith("/") or host in LOCAL_HOSTS
    if not (data_directory and local and Path(data_directory).is_dir()):
        why = (
            "the server is not on this machine"
            if not local
            else "its data directory is not readable here"
            if data_directory
            else "reading data_directory needs superuser or pg_read_all_settings"
        )
        report.add(
            "disk",
            WARN,
            f"free disk on the server unknown ({why}); {figures}: check it there (df -h)",
        )
        return
    free = shutil.disk_usage(data_directory).free
    summary = f"{_size(free)} free in {data_directory}; {figures}"
    if free < needed:
        report.add("disk", FIX, f"not enough: {summary}")
    elif free < needed + database_size:
        report.add(
            "disk",
            WARN,
            f"{summary}: enough for migrate, but not for a backup of the same size on this disk",
        )
    else:
        report.add("disk", OK, summary)


def _size(size: int) -> str:
    value = float(size)
    for unit in ("bytes", "kB", "MB", "GB", "TB"):
        if value < 1024 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


SESSIONS = """
SELECT a.pid, coalesce(a.usename::text, '?'), coalesce(nullif(a.application_name, ''), '-'),
       coalesce(host(a.client_addr), 'local'), coalesce(a.state, '?'),
       extract(epoch FROM clock_timestamp() - a.xact_start)::int,
       left(regexp_replace(coalesce(a.query, ''), '\\s+', ' ', 'g'), 80),
       (SELECT string_agg(DISTINCT l.mode || ' on ' || c.relname, ', ')
        FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
        WHERE l.pid = a.pid AND l.granted AND c.relname = ANY(%(tables)s))
FROM pg_stat_activity a
WHERE a.datname = current_database() AND a.pid <> pg_backend_pid()
  AND a.backend_type = 'client backend' AND a.xact_start IS NOT NULL
ORDER BY a.xact_start
"""

PREPARED = """
SELECT p.gid, p.owner::text, extract(epoch FROM clock_timestamp() - p.prepared)::int,
       (SELECT string_agg(DISTINCT l.mode || ' on ' || c.relname, ', ')
        FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
        WHERE l.virtualtransaction = '-1/' || p.transaction AND c.relname = ANY(%(tables)s))
FROM pg_prepared_xacts p WHERE p.database = current_database()
"""


def _sessions(report: PreflightReport, cursor) -> None:
    """Open transactions that would make the migration's DDL wait, and the fix for each."""
    tables = list(LEGACY_TABLES)
    cursor.execute(SESSIONS, {"tables": tables})
    blocking = []
    for pid, user, application, client, state, age, query, locks in cursor.fetchall():
        idle = state.startswith("idle in transaction")
        if not (idle or age >= LONG_TRANSACTION_SECONDS or (locks and age >= HELD_LOCK_SECONDS)):
            continue
        held = f", holds {locks}" if locks else ""
        last = f" (last query: {query})" if query else ""
        blocking.append(
            f"pid {pid} ({application}, {user}@{client}) {state} for {age} s{held}{last}: end "
            f"it (COMMIT or ROLLBACK in that session, or SELECT pg_terminate_backend({pid}))"
        )
    cursor.execute(PREPARED, {"tables": tables})
    for gid, owner, age, locks in cursor.fetchall():
        held = f", holds {locks}" if locks else ""
        blocking.append(
            f"prepared transaction {gid!r} (owner {owner}) for {age} s{held}: finish it "
            f"(COMMIT PREPARED or ROLLBACK PREPARED {gid!r})"
        )
    if blocking:
        report.add(
            "sessions",
            FIX,
            f"{len(blocking)} open transaction{'s' if len(blocking) != 1 else ''} would block "
            f"the migration's DDL (and everything queued behind it)",
            blocking,
        )
    else:
        report.add("sessions", OK, "no open transaction would block the migration's DDL")


def _migrations(report: PreflightReport, executor) -> None:
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    if not plan:
        report.add("migrations", OK, "none to apply")
        return
    lines, undescribed = [], []
    for migration, _backwards in plan:
        lock_plan = lock_plan_for(migration.app_label, migration.name)
        if lock_plan is None:
            undescribed.append(_name(migration))
            lines.append(
                f"{_name(migration)}: no lock plan recorded (tenants/conversion/lock_plan.py)"
            )
        else:
            lines.append(f"{_name(migration)}: {lock_plan.describe()}")
    growing = [
        _name(migration)
        for migration, _backwards in plan
        if (entry := lock_plan_for(migration.app_label, migration.name)) and entry.grows_with_size
    ]
    summary = f"{len(plan)} to apply, in this order, with the strongest lock each takes"
    if growing:
        summary += f"; held for a time that grows with the table's size: {', '.join(growing)}"
    report.add("migrations", WARN if undescribed else INFO, summary, lines)


# --- statistics and distribution ----------------------------------------------------------


def _statistics(report: PreflightReport, cursor) -> None:
    """Whether the application role can read every organization's row totals and activity."""
    from tenants.roles import application_role_name
    from tenants.statistics import may_revoke_statistics, role_reads_statistics

    role = application_role_name()
    reads = role_reads_statistics(cursor, role)
    if reads is False:
        report.add(
            "statistics",
            OK,
            f"{role} cannot read pg_stat_* / pg_statio_* here (tenants.0008 revoked them)",
        )
    elif may_revoke_statistics(cursor):
        report.add(
            "statistics",
            OK,
            "tenants.0008 will revoke the application role's view of pg_stat_* / pg_statio_* "
            "(this database only)",
        )
    else:
        cursor.execute("SELECT current_user")
        report.add(
            "statistics",
            WARN,
            f"this server does not let {cursor.fetchone()[0]} revoke PUBLIC's access to "
            f"pg_stat_* / pg_statio_* (managed PostgreSQL): the application role sees every "
            f"organization's row totals and activity there (docs/tenant-isolation.md)",
        )


def _distribution(report: PreflightReport, cursor) -> None:
    """The keys among tenant tables that a Citus cluster could not enforce (docs/scale-out.md)."""
    from tenants.conversion.distribution import keys_without_organization

    keys = keys_without_organization(cursor)
    if not keys:
        report.add("distribution", OK, "every key among tenant tables includes organization_id")
        return
    to_change = [key for key in keys if key.accepted is None]
    kinds = sorted({key.kind for key in to_change})
    summary = (
        f"{len(keys)} keys among tenant tables lack organization_id: {len(to_change)} to change "
        f"before distributing with Citus ({', '.join(kinds) or 'none'}), "
        f"{len(keys) - len(to_change)} accepted on reference tables (docs/scale-out.md)"
    )
    report.add("distribution", INFO, summary, [key.describe() for key in keys])
