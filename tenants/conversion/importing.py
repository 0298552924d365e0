"""import_organization: another single-tenant RouteOptimizer database becomes one organization.

1. The source is read in one REPEATABLE READ, READ ONLY transaction (it may stay in use and is
   never written): its schema checked column by column against the legacy contract
   (routing.legacy, with or without the billing columns), per table its row count and checksum
   (tenants.conversion.snapshot's digests) taken, and every row streamed with COPY into temporary
   tables of the import's session in the shared database.
2. In the shared database, one transaction (the whole import is atomic: a crash, kill -9 or a
   lost connection leaves nothing but what PostgreSQL rolls back, and running the command again
   starts afresh): the staged rows are checked (duplicate ids, references to rows the source
   does not have: the rows the shared database's keys would refuse, named), their ids against
   the shared tables (a clash refuses the import unless --remap-ids gives the clashing rows new
   ids, references following), then the organization, its owner (an invitation, no password)
   and trial subscription are created and the rows inserted set-wise, with the geocoding
   metadata M015/M016 backfill and the billing values moved into service plans, agreements and
   payment methods by M001's own statements (billing.legacy).
3. The proof, in the same transaction: per table the imported rows (ids mapped back,
   tenants.conversion.legacy_rows) give the source's row count and checksum, and the billing tables
   rebuild the source's billing values; otherwise the transaction is rolled back.

Online: the import takes ROW EXCLUSIVE on the shared tables (plain INSERTs) and row locks on its
own new rows only, so other organizations keep reading and writing; a lock it cannot get within
IMPORT_LOCK_TIMEOUT (a migration's DDL) stops it with one line, nothing imported.
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import psycopg
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import DatabaseError, connections, transaction
from django.urls import reverse
from django.utils import timezone
from psycopg import sql

from billing.legacy import _move, any_billing_value, move_preview_sql
from geocoding.metadata import COORDINATES as GEOCODING_COORDINATES
from geocoding.metadata import backfilled_values
from routing.legacy import (
    BILLING_COLUMN_NAMES,
    BILLING_COLUMNS,
    LEGACY_COLUMNS,
    inspect_legacy_schema,
    legacy_column_names,
)
from tenants.conversion.legacy_rows import (
    BILLING_DIGEST_COLUMNS,
    ID_MAP_TABLE,
    ID_REFERENCES,
    IMPORTS_TABLE,
    PARENT_REFERENCES,
    WRITE_ORDER,
    billing_rows_of,
    digest_of,
    organization_legacy_rows,
    table_relation,
)
from tenants.conversion.snapshot import pin_digest_settings

IMPORT_LOCK_TIMEOUT = "10s"
APPLICATION_NAME = "import_organization"
MAX_NAMED = 5
PROGRESS_SECONDS = 5.0
# The staged rows' INSERTs go in slices of about this many rows by default (a TID range of the
# staged table each), for a progress line every PROGRESS_SECONDS; the slices cost nothing
# measurable against one INSERT per table (bench/import_at_scale.py).
BATCH_ROWS = 20_000


class ImportRefused(Exception):
    """The import cannot be done as asked; one line naming the problem and the fix. Nothing was
    changed on either side."""


class _DryRunDone(Exception):
    """Leaves the shared database's transaction after a dry run, rolling it back."""


@dataclass
class SourceState:
    """What the source held, as its one snapshot saw it."""

    description: str
    has_billing_columns: bool
    alembic_revision: str | None
    counts: dict[str, int]
    proof: dict[str, dict] = field(default_factory=dict)  # table (and "billing") -> digest


@dataclass
class ImportResult:
    organization_id: str | None
    slug: str
    dry_run: bool
    source: SourceState
    clashes: dict[str, int]
    remapped: dict[str, int]
    billing: dict[str, int]
    proof: dict[str, dict]
    seconds: float

    @property
    def rows(self) -> int:
        return sum(self.source.counts.values())


def staged(table: str) -> str:
    return f"import_source_{table}"


def id_map(table: str) -> str:
    return f"import_map_{table}"


def describe_source(uri: str) -> str:
    """host:port/dbname as user, without the password (what is recorded and printed)."""
    try:
        info = psycopg.conninfo.conninfo_to_dict(uri)
    except psycopg.ProgrammingError:
        return "(unparsable URI)"
    host = info.get("host") or "localhost"
    return f"{host}:{info.get('port') or 5432}/{info.get('dbname', '?')} as {info.get('user', '?')}"


def connect_source(uri: str, *, option: str = "--from") -> psycopg.Connection:
    try:
        return psycopg.connect(uri, connect_timeout=10, application_name=APPLICATION_NAME)
    except psycopg.Error as error:
        reason = " ".join(str(error).split()) or type(error).__name__
        raise ImportRefused(
            f"cannot connect to the database {option} names ({describe_source(uri)}): {reason}; "
            f"check the libpq URI (postgresql://user:password@host:port/dbname)"
        ) from error


def import_organization(
    *,
    source_uri: str,
    slug: str,
    name: str,
    owner_email: str,
    dry_run: bool = False,
    remap_ids: bool = False,
    batch_rows: int = BATCH_ROWS,
    progress: Callable[[str], None] = print,
    using: str = "default",
) -> ImportResult:
    started = time.monotonic()
    started_at = timezone.now()
    slug = slug.strip().lower()
    owner_email = get_user_model().objects.normalize_email(owner_email.strip())
    _refuse_bad_names(slug=slug, name=name, owner_email=owner_email)

    source = connect_source(source_uri)
    connection = connections[using]
    try:
        source.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        source.read_only = True
        with source.cursor() as source_cursor:
            state = _read_source(source_cursor, describe_source(source_uri), progress)
            try:
                with transaction.atomic(using=using, durable=True), connection.cursor() as cursor:
                    cursor.execute(f"SET LOCAL lock_timeout = '{IMPORT_LOCK_TIMEOUT}'")
                    cursor.execute("SET LOCAL application_name = %s", [APPLICATION_NAME])
                    pin_digest_settings(cursor)
                    _refuse_taken(slug=slug, owner_email=owner_email)
                    _stage(source_cursor, cursor, state, progress)
                    source.rollback()  # the source's snapshot is no longer needed
                    result = _import_staged(
                        cursor,
                        state,
                        slug=slug,
                        name=name,
                        owner_email=owner_email,
                        source_uri=source_uri,
                        dry_run=dry_run,
                        remap_ids=remap_ids,
                        batch_rows=batch_rows,
                        started_at=started_at,
                        progress=progress,
                    )
            except _DryRunDone as done:
                result = done.args[0]
            except ImportRefused:
                raise
            except DatabaseError as error:
                raise ImportRefused(_database_error_message(error)) from error
    finally:
        source.close()
    result.seconds = time.monotonic() - started
    return result


def _refuse_bad_names(*, slug: str, name: str, owner_email: str) -> None:
    from tenants.models import Organization

    try:
        validate_email(owner_email)
    except ValidationError as error:
        raise ImportRefused(
            f"--owner-email {owner_email!r} is not an email address: give the owner's email"
        ) from error
    try:
        Organization(name=name.strip(), slug=slug).full_clean(
            validate_unique=False, validate_constraints=False
        )
    except ValidationError as error:
        problems = "; ".join(
            f"{'--' + field_name}: {' '.join(messages)}"
            for field_name, messages in error.message_dict.items()
        )
        raise ImportRefused(f"invalid organization: {problems}") from error


def _refuse_taken(*, slug: str, owner_email: str) -> None:
    from tenants.models import Organization

    if Organization.objects.filter(slug__iexact=slug).exists():
        raise ImportRefused(
            f"an organization with slug {slug!r} exists already: choose another --slug "
            f"(nothing was imported)"
        )
    if get_user_model().objects.filter(email__iexact=owner_email).exists():
        raise ImportRefused(
            f"an account with email {owner_email!r} exists already in the shared database: the "
            f"imported organization's owner is a new account invited without a password; give "
            f"another --owner-email and invite {owner_email} from the admin afterwards (nothing "
            f"was imported)"
        )


# --- the source --------------------------------------------------------------------------------


def _read_source(cursor, description: str, progress) -> SourceState:
    report = inspect_legacy_schema(cursor, count_rows=True)
    if report.is_empty:
        raise ImportRefused(
            f"the source {description} is not a legacy RouteOptimizer database: it has none of "
            f"the tables drivers, customers, routes, route_stops; check --from (nothing was "
            f"imported)"
        )
    if report.differences:
        lines = [
            f"the source's legacy schema does not match ({len(report.differences)} difference"
            f"{'s' if len(report.differences) != 1 else ''}); nothing was imported. Fix the "
            f"source to match legacy_schema.sql, or check --from:"
        ]
        lines += [f"  - {difference.describe()}" for difference in report.differences]
        raise ImportRefused("\n".join(lines))
    state = SourceState(
        description=description,
        has_billing_columns=report.has_billing_columns,
        alembic_revision=report.alembic_revision,
        counts=dict(report.row_counts),
    )
    progress(f"Source {description}: {report.summary()}")
    begun = time.monotonic()
    pin_digest_settings(cursor)
    for table in WRITE_ORDER:
        columns = legacy_column_names(table, billing=state.has_billing_columns)
        state.proof[table] = digest_of(cursor, table_relation(table, columns), columns)
    if state.has_billing_columns:
        columns = legacy_column_names("customers", billing=True)
        state.proof["billing"] = digest_of(
            cursor,
            billing_rows_of(table_relation("customers", columns)),
            BILLING_DIGEST_COLUMNS,
        )
    else:
        state.proof["billing"] = {"rows": 0, "checksum": "0"}
    progress(f"  source row counts and checksums in {time.monotonic() - begun:.1f}s")
    return state


def _staged_columns(table: str, *, billing: bool) -> list:
    columns = list(LEGACY_COLUMNS[table])
    if table == "customers" and billing:
        columns += BILLING_COLUMNS
    return columns


def _stage(source_cursor, cursor, state: SourceState, progress) -> None:
    """Every source row into a temporary table of this session (dropped at commit or on any
    failure, with the session), streamed with COPY in PostgreSQL's binary format."""
    for table in WRITE_ORDER:
        columns = _staged_columns(table, billing=state.has_billing_columns)
        names = sql.SQL(", ").join(sql.Identifier(column.name) for column in columns)
        cursor.execute(
            sql.SQL("CREATE TEMPORARY TABLE {} ({}) ON COMMIT DROP").format(
                sql.Identifier(staged(table)),
                sql.SQL(", ").join(
                    sql.SQL("{} {}").format(sql.Identifier(column.name), sql.SQL(column.type))
                    for column in columns
                ),
            )
        )
        begun = last = time.monotonic()
        copied = 0
        with (
            source_cursor.copy(
                sql.SQL("COPY (SELECT {} FROM {}) TO STDOUT (FORMAT binary)").format(
                    names, sql.Identifier(table)
                )
            ) as out,
            cursor.copy(
                sql.SQL("COPY {} ({}) FROM STDIN (FORMAT binary)").format(
                    sql.Identifier(staged(table)), names
                )
            ) as into,
        ):
            for chunk in out:
                into.write(chunk)
                copied += len(chunk)
                if time.monotonic() - last > PROGRESS_SECONDS:
                    last = time.monotonic()
                    progress(f"  reading {table}: {copied / 1e6:.0f} MB so far")
        # Temporary tables get no statistics from autovacuum: the checks' joins need them.
        cursor.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(staged(table))))
        progress(
            f"  read {state.counts[table]} {table} in {time.monotonic() - begun:.1f}s "
            f"({copied / 1e6:.1f} MB)"
        )


# --- the shared database -----------------------------------------------------------------------


def _count_and_name(cursor, query: sql.Composable) -> tuple[int, list[str]]:
    cursor.execute(
        sql.SQL("SELECT count(*) OVER (), x FROM ({}) AS q(x) LIMIT {}").format(
            query, sql.Literal(MAX_NAMED)
        )
    )
    rows = cursor.fetchall()
    return (rows[0][0] if rows else 0), [str(row[1]) for row in rows]


def _refuse_broken_rows(cursor) -> None:
    """Rows the shared database's keys would refuse: named, with the reason."""
    problems = []
    for table in WRITE_ORDER:
        count, named = _count_and_name(
            cursor,
            sql.SQL("SELECT id FROM {} GROUP BY id HAVING count(*) > 1").format(
                sql.Identifier(staged(table))
            ),
        )
        if count:
            problems.append(
                f"{count} id(s) of {table} appear more than once ({', '.join(named)}): the "
                f"shared database's primary key refuses them"
            )
    for table, column, parent, _nullable in PARENT_REFERENCES:
        count, named = _count_and_name(
            cursor,
            sql.SQL(
                "SELECT s.id::text || ' (' || {column} || ' ' || s.{column_id} || ')' "
                "FROM {child} s WHERE s.{column_id} IS NOT NULL AND NOT EXISTS "
                "(SELECT 1 FROM {parent} p WHERE p.id = s.{column_id})"
            ).format(
                column=sql.Literal(column),
                column_id=sql.Identifier(column),
                child=sql.Identifier(staged(table)),
                parent=sql.Identifier(staged(parent)),
            ),
        )
        if count:
            problems.append(
                f"{count} {table} reference(s) through {column} a {parent[:-1]} the source does "
                f"not have, e.g. {', '.join(named)}: the shared database's foreign key "
                f"({table}.organization_id, {column}) -> {parent} refuses them"
            )
    if problems:
        raise ImportRefused(
            "rows of the source break the shared database's constraints; fix them in the source "
            "and import again (nothing was imported): " + "; ".join(problems)
        )


def _clashes(cursor) -> dict[str, int]:
    clashes = {}
    for table in WRITE_ORDER:
        cursor.execute(
            sql.SQL(
                "SELECT count(*) FROM {} s WHERE EXISTS (SELECT 1 FROM {} t WHERE t.id = s.id)"
            ).format(sql.Identifier(staged(table)), sql.Identifier(table))
        )
        clashes[table] = cursor.fetchone()[0]
    return clashes


def _billing_preview(cursor, state: SourceState) -> dict[str, int]:
    if not state.has_billing_columns:
        return {
            "customers with billing values": 0,
            "service plans": 0,
            "agreements": 0,
            "payment methods": 0,
        }
    # M001's own conditions, over the staged source customers.
    cursor.execute(move_preview_sql(staged("customers")))
    billed, plans, agreements, payments = cursor.fetchone()
    return {
        "customers with billing values": billed,
        "service plans": plans,
        "agreements": agreements,
        "payment methods": payments,
    }


def _make_id_maps(cursor, clashes: dict[str, int], *, remap: bool) -> dict[str, int]:
    remapped = {}
    for table in WRITE_ORDER:
        condition = (
            sql.SQL("EXISTS (SELECT 1 FROM {} t WHERE t.id = s.id)").format(sql.Identifier(table))
            if remap and clashes[table]
            else sql.SQL("false")
        )
        cursor.execute(
            sql.SQL(
                "CREATE TEMPORARY TABLE {map} ON COMMIT DROP AS "
                "SELECT s.id AS source_id, gen_random_uuid() AS imported_id FROM {staged} s "
                "WHERE {condition}"
            ).format(
                map=sql.Identifier(id_map(table)),
                staged=sql.Identifier(staged(table)),
                condition=condition,
            )
        )
        remapped[table] = cursor.rowcount
        cursor.execute(
            sql.SQL("ALTER TABLE {} ADD PRIMARY KEY (source_id)").format(
                sql.Identifier(id_map(table))
            )
        )
        cursor.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(id_map(table))))
    return remapped


def _mapped_select(table: str, organization_id: str) -> tuple[sql.Composable, sql.Composable]:
    """(target columns, SELECT from the staged rows with ids mapped and the organization set)."""
    names = [column.name for column in LEGACY_COLUMNS[table]]
    references = ID_REFERENCES[table]
    target = [sql.Identifier(name) for name in names] + [sql.Identifier("organization_id")]
    selected = []
    joins = []
    for name in names:
        if name in references:
            alias = sql.Identifier(f"map_{name}")
            joins.append(
                sql.SQL(" LEFT JOIN {map} AS {alias} ON {alias}.source_id = s.{name}").format(
                    map=sql.Identifier(id_map(references[name])),
                    alias=alias,
                    name=sql.Identifier(name),
                )
            )
            selected.append(
                sql.SQL("coalesce({alias}.imported_id, s.{name})").format(
                    alias=alias, name=sql.Identifier(name)
                )
            )
        else:
            selected.append(sql.SQL("s.{}").format(sql.Identifier(name)))
    selected.append(sql.SQL("{}::uuid").format(sql.Literal(organization_id)))
    if table in GEOCODING_COORDINATES:
        # The M015/M016 backfill's values, written with the row instead of backfilled after.
        for column, value in backfilled_values(table, "s"):
            target.append(sql.Identifier(column))
            selected.append(value)
    query = sql.SQL("SELECT {} FROM {} AS s{}").format(
        sql.SQL(", ").join(selected), sql.Identifier(staged(table)), sql.Composed(joins)
    )
    return sql.SQL(", ").join(target), query


def _create_organization(*, slug: str, name: str, owner_email: str):
    """The organization, its trial subscription and its owner's invitation (a new account
    without a password), in the import's transaction; the email goes once it commits."""
    from accounts.tokens import new_token
    from tenants.models import OrganizationUser, Role
    from tenants.services import (
        Invitation,
        OrganizationCreateError,
        _create_trial_subscription,
        _save,
        invitation_send,
        new_trial_organization,
    )

    now = timezone.now()
    try:
        organization = new_trial_organization(name=name, slug=slug, now=now)
        _create_trial_subscription(organization, now=now)
        # As create_organization makes an owner, but invited: no password until the link is
        # used (tenants.services.invitation_accept sets it and makes this their primary one).
        owner = get_user_model()(email=owner_email)
        owner.set_password(None)
        _save(owner)
        token, token_hash = new_token()
        membership = OrganizationUser(
            organization=organization, user=owner, role=Role.OWNER, invitation_token=token_hash
        )
        _save(membership)
    except (OrganizationCreateError, ValidationError) as error:
        raise ImportRefused(f"{error}; nothing was imported") from error
    invitation = Invitation(membership, token, True)

    def send():
        scheme = "https" if getattr(settings, "SECURE_SSL_REDIRECT", False) else "http"
        base = settings.ROUTEOPTIMIZER_BASE_DOMAIN.strip(".")
        path = reverse("invitation-accept", args=[invitation.token])
        try:
            invitation_send(invitation=invitation, accept_url=f"{scheme}://{base}{path}")
        except OSError as error:  # the import is committed; the owner can be invited again
            print(
                f"warning: the owner's invitation email could not be sent ({error}): check "
                f"EMAIL_URL, then invite {owner_email} again from the admin"
            )

    transaction.on_commit(send)
    return organization


def _import_staged(
    cursor,
    state: SourceState,
    *,
    slug,
    name,
    owner_email,
    source_uri,
    dry_run,
    remap_ids,
    batch_rows,
    started_at,
    progress,
) -> ImportResult:
    begun = time.monotonic()
    _refuse_broken_rows(cursor)
    clashes = _clashes(cursor)
    billing = _billing_preview(cursor, state)
    progress(f"  checked the staged rows and their ids in {time.monotonic() - begun:.1f}s")
    result = ImportResult(
        organization_id=None,
        slug=slug,
        dry_run=dry_run,
        source=state,
        clashes=clashes,
        remapped={table: 0 for table in WRITE_ORDER},
        billing=billing,
        proof={},
        seconds=0.0,
    )
    clashing = {table: count for table, count in clashes.items() if count}
    if dry_run:
        if clashing and remap_ids:
            result.remapped = dict(clashing)
        raise _DryRunDone(result)
    if clashing and not remap_ids:
        described = ", ".join(
            f"{table}: {count} of {state.counts[table]}" for table, count in clashing.items()
        )
        raise ImportRefused(
            f"ids of the source exist already in the shared database ({described}); nothing "
            f"was imported. Run again with --remap-ids to give those rows new ids (kept in "
            f"{ID_MAP_TABLE})"
        )
    result.remapped = _make_id_maps(cursor, clashes, remap=remap_ids)

    organization = _create_organization(slug=slug, name=name, owner_email=owner_email)
    organization_id = str(organization.pk)
    result.organization_id = organization_id
    progress(f"  created organization {slug!r} ({organization_id}), owner {owner_email} invited")

    unchecked = _skip_row_checks(cursor)
    for table in WRITE_ORDER:
        _insert_staged(cursor, table, organization_id, batch_rows=batch_rows, progress=progress)
    if unchecked:
        begun = time.monotonic()
        cursor.execute("SET LOCAL session_replication_role = origin")
        _verify_foreign_keys(cursor, organization_id)
        progress(
            f"  foreign keys verified set-wise in {time.monotonic() - begun:.1f}s (instead of "
            f"row by row)"
        )
    for table in WRITE_ORDER:
        cursor.execute(
            sql.SQL(
                "INSERT INTO {} (organization_id, table_name, source_id, imported_id) "
                "SELECT {}::uuid, {}, source_id, imported_id FROM {}"
            ).format(
                sql.Identifier(ID_MAP_TABLE),
                sql.Literal(organization_id),
                sql.Literal(table),
                sql.Identifier(id_map(table)),
            )
        )
    if any(result.remapped.values()):
        progress(
            "  new ids for the clashing rows: "
            + ", ".join(f"{count} {table}" for table, count in result.remapped.items() if count)
            + f" (source id -> imported id in {ID_MAP_TABLE})"
        )

    if state.has_billing_columns:
        begun = time.monotonic()
        _move_billing(cursor, organization_id)
        progress(
            f"  moved the billing values of {billing['customers with billing values']} customers "
            f"(M001): {billing['service plans']} service plans, {billing['agreements']} "
            f"agreements, {billing['payment methods']} payment methods in "
            f"{time.monotonic() - begun:.1f}s"
        )

    begun = time.monotonic()
    cursor.execute("SET LOCAL enable_nestloop = off")  # as above: hash joins over new rows
    result.proof = prove(cursor, organization_id, state)
    cursor.execute("SET LOCAL enable_nestloop = on")
    progress(
        "  proof: "
        + ", ".join(f"{table} {digest['rows']} rows" for table, digest in result.proof.items())
        + f": counts and checksums equal to the source's ({time.monotonic() - begun:.1f}s)"
    )
    _record(cursor, organization_id, state, result, source_uri=source_uri, started_at=started_at)
    return result


def _insert_staged(cursor, table: str, organization_id: str, *, batch_rows: int, progress) -> None:
    """The staged rows of `table` into the shared table, in slices of about `batch_rows` rows (one
    TID range of the staged table each, so every slice reads only its own pages), all in the
    import's transaction, with a progress line every PROGRESS_SECONDS."""
    cursor.execute(
        "SELECT pg_relation_size(%s::regclass) / current_setting('block_size')::int, reltuples "
        "FROM pg_class WHERE oid = %s::regclass",
        [staged(table), staged(table)],
    )
    pages, estimated_rows = cursor.fetchone()
    # At most the whole table: a slice's bounds stay block numbers a tid can hold.
    per_slice = min(max(pages, 1), max(1, round(batch_rows * pages / max(estimated_rows, 1))))
    target, query = _mapped_select(table, organization_id)
    statement = (
        sql.SQL("INSERT INTO {} ({}) ").format(sql.Identifier(table), target)
        + query
        + sql.SQL(" WHERE s.ctid >= format('(%%s,0)', %s::bigint)::tid")
        + sql.SQL(" AND s.ctid < format('(%%s,0)', %s::bigint)::tid")
    )
    begun = last = time.monotonic()
    written = 0
    for first in range(0, max(pages, 1), per_slice):
        cursor.execute(statement, [first, first + per_slice])
        written += cursor.rowcount
        now = time.monotonic()
        if now - last > PROGRESS_SECONDS and first + per_slice < pages:
            last = now
            progress(
                f"  importing {table}: {written:,} rows so far, "
                f"{written / (now - begun):,.0f} rows/s"
            )
    seconds = time.monotonic() - begun
    rate = f", {written / seconds:,.0f} rows/s" if seconds > 0 else ""
    progress(f"  imported {written} {table} in {seconds:.1f}s{rate}")


def _skip_row_checks(cursor) -> bool:
    """Whether the bulk INSERTs may skip the per-row foreign key triggers, for this
    transaction only (session_replication_role = replica: a superuser's, or granted with
    GRANT SET ON PARAMETER on PostgreSQL 15+).

    Sound here because every reference was resolved among the staged rows
    (_refuse_broken_rows), their parents are this transaction's own rows (invisible to, and so
    not deletable by, anyone else), and _verify_foreign_keys checks every key set-wise before
    the commit. Only when the four legacy tables have no trigger of their own, which replica
    mode would skip too; otherwise, or without the privilege, the keys are checked row by row.
    """
    cursor.execute(
        "SELECT count(*) FROM pg_trigger WHERE NOT tgisinternal AND tgrelid = ANY "
        "(ARRAY['drivers', 'customers', 'routes', 'route_stops']::regclass[])"
    )
    if cursor.fetchone()[0]:
        return False
    try:
        with transaction.atomic(using=cursor.db.alias):
            cursor.execute("SET LOCAL session_replication_role = replica")
    except DatabaseError:
        return False
    return True


def _verify_foreign_keys(cursor, organization_id: str) -> None:
    """Every foreign key of the organization's new legacy rows, checked set-wise."""
    cursor.execute(
        """
        SELECT c.conrelid::regclass::text, c.conname, pg_get_constraintdef(c.oid),
               array_agg(a.attname ORDER BY k.ordinality),
               c.confrelid::regclass::text,
               array_agg(fa.attname ORDER BY k.ordinality)
        FROM pg_constraint c
        CROSS JOIN LATERAL unnest(c.conkey, c.confkey) WITH ORDINALITY AS k(attnum, fattnum,
                                                                              ordinality)
        JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum
        JOIN pg_attribute fa ON fa.attrelid = c.confrelid AND fa.attnum = k.fattnum
        WHERE c.contype = 'f' AND c.conrelid = ANY
              (ARRAY['drivers', 'customers', 'routes', 'route_stops']::regclass[])
        GROUP BY c.oid, c.conrelid, c.conname, c.confrelid
        """
    )
    keys = cursor.fetchall()
    # The planner's statistics predate these rows (no ANALYZE: its lock is stronger than ROW
    # EXCLUSIVE), so it would guess "few rows" and probe row by row; hash joins it is.
    cursor.execute("SET LOCAL enable_nestloop = off")
    broken = []
    for table, name, _definition, columns, parent, parent_columns in keys:
        matches = sql.SQL(" AND ").join(
            sql.SQL("p.{} = t.{}").format(sql.Identifier(pc), sql.Identifier(cc))
            for cc, pc in zip(columns, parent_columns, strict=True)
        )
        present = sql.SQL(" AND ").join(
            sql.SQL("t.{} IS NOT NULL").format(sql.Identifier(cc)) for cc in columns
        )
        cursor.execute(
            sql.SQL(
                "SELECT count(*) FROM {table} t WHERE t.organization_id = %s AND {present} "
                "AND NOT EXISTS (SELECT 1 FROM {parent} p WHERE {matches})"
            ).format(
                table=sql.Identifier(table),
                present=present,
                parent=sql.Identifier(parent),
                matches=matches,
            ),
            [organization_id],
        )
        if count := cursor.fetchone()[0]:
            broken.append(f"{count} {table} rows break {name}")
    cursor.execute("SET LOCAL enable_nestloop = on")
    if broken:
        raise ImportRefused(
            "imported rows would break the shared database's foreign keys ("
            + "; ".join(broken)
            + "): nothing was imported; report it with the source's schema"
        )


def _move_billing(cursor, organization_id: str) -> None:
    """M001's statements, reading the staged customers under their imported ids."""
    names = sql.SQL(", ").join(sql.Identifier("s", name) for name in BILLING_COLUMN_NAMES)
    cursor.execute(
        sql.SQL(
            "CREATE TEMPORARY TABLE import_billing_customers ON COMMIT DROP AS "
            "SELECT coalesce(m.imported_id, s.id) AS id, {organization}::uuid AS organization_id,"
            " s.created_at, {names} FROM {staged} s LEFT JOIN {map} m ON m.source_id = s.id "
            "WHERE {moved}"
        ).format(
            organization=sql.Literal(organization_id),
            names=names,
            moved=sql.SQL(any_billing_value("s")),
            staged=sql.Identifier(staged("customers")),
            map=sql.Identifier(id_map("customers")),
        )
    )
    cursor.execute("ANALYZE import_billing_customers")
    _move(cursor, "true", customers="import_billing_customers")


def prove(cursor, organization_id: str, state: SourceState) -> dict[str, dict]:
    """The organization's rows, ids mapped back, against the source's digests; ImportRefused
    (the caller's transaction rolls back) on any difference."""
    proof = {}
    differences = []
    for table in WRITE_ORDER:
        columns = legacy_column_names(table, billing=state.has_billing_columns)
        proof[table] = digest_of(
            cursor,
            organization_legacy_rows(table, organization_id, billing=state.has_billing_columns),
            columns,
        )
    proof["billing"] = digest_of(
        cursor,
        billing_rows_of(organization_legacy_rows("customers", organization_id, billing=True)),
        BILLING_DIGEST_COLUMNS,
    )
    for table, digest in proof.items():
        expected = state.proof[table]
        if digest != expected:
            differences.append(
                f"{table}: {digest['rows']} rows (checksum {digest['checksum']}) against the "
                f"source's {expected['rows']} (checksum {expected['checksum']})"
            )
    if differences:
        raise ImportRefused(
            "the import's proof failed, so nothing was imported (rolled back): "
            + "; ".join(differences)
            + ". Report it with the source's schema"
        )
    return proof


def _record(
    cursor, organization_id, state: SourceState, result: ImportResult, *, source_uri, started_at
) -> None:
    import json

    report = {
        "slug": result.slug,
        "rows": state.counts,
        "clashes": result.clashes,
        "remapped": result.remapped,
        "billing": result.billing,
    }
    cursor.execute(
        f"INSERT INTO {IMPORTS_TABLE} (organization_id, source, had_billing_columns, "
        f"alembic_revision, proof, report, started_at) "
        f"VALUES (%s, %s, %s, %s, %s::jsonb, %s::jsonb, %s)",
        [
            organization_id,
            describe_source(source_uri),
            state.has_billing_columns,
            state.alembic_revision,
            json.dumps(state.proof),
            json.dumps(report),
            started_at,
        ],
    )


def id_mapping(organization_id: str, *, using: str = "default") -> dict[str, dict[str, str]]:
    """{table: {source id: imported id}} of an imported organization's remapped rows."""
    with connections[using].cursor() as cursor:
        cursor.execute(
            f"SELECT table_name, source_id::text, imported_id::text FROM {ID_MAP_TABLE} "
            f"WHERE organization_id = %s ORDER BY table_name, source_id",
            [organization_id],
        )
        mapping: dict[str, dict[str, str]] = {}
        for table, source_id, imported_id in cursor.fetchall():
            mapping.setdefault(table, {})[source_id] = imported_id
    return mapping


def _database_error_message(error: DatabaseError) -> str:
    cause = error.__cause__ or error
    text = " ".join(str(cause).split())
    diag = getattr(cause, "diag", None)
    if isinstance(cause, psycopg.errors.LockNotAvailable):
        return (
            f"a shared table is locked by another session ({text}) for longer than "
            f"{IMPORT_LOCK_TIMEOUT}: wait for the migration or the session holding it (see "
            f"tenancy_preflight), then import again; nothing was imported"
        )
    if isinstance(cause, psycopg.errors.IntegrityError) and diag is not None:
        return (
            f"a row of the source breaks the shared database's constraint "
            f"{diag.constraint_name} on {diag.table_name} ({diag.message_detail or text}): fix "
            f"it in the source and import again; nothing was imported"
        )
    return f"the import stopped on a database error ({text}); nothing was imported"


def elapsed(seconds: float) -> str:
    return str(datetime.timedelta(seconds=round(seconds)))
