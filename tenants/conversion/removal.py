"""remove_organization: an organization and everything it owns, deleted online and verified.

Order (children before parents, so no foreign key check ever scans another organization's rows):
the organization is first deactivated (nobody is served it any more), then every tenant table's
rows of it are deleted in batches of BATCH_SIZE rows, each batch its own short transaction
(row locks on the organization's own rows only, ROW EXCLUSIVE on the table: other organizations
never wait), the billing move's markers with the customers and plans they mark. Then, in one
transaction: its memberships and the accounts that belonged to it alone (not superusers or
staff, not an account another organization shares), and last the organization row with the
verification that no row of it is left in any table with an organization_id. An interrupted run
is resumed by running the command again: the organization row goes last, so it is still there.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from django.db import connections, transaction
from psycopg import sql

from billing.legacy import MARKER_TABLE, PLAN_MARKER_TABLE

BATCH_SIZE = 5000
BATCH_LOCK_TIMEOUT = "5s"
# Tenant tables in deletion order; any other table with an organization_id column (a future
# app's) is emptied after them, before the memberships.
DELETION_ORDER = (
    "route_stops",
    "routes",
    "payment_methods",
    "customer_service_agreements",
    MARKER_TABLE,
    "customers",
    "drivers",
    PLAN_MARKER_TABLE,
    "service_plans",
    "usage_tracking",
    "organization_subscriptions",
    "api_tokens",
    "django_admin_log",
    "tenancy_import_id_map",
    "tenancy_imports",
)
MEMBERSHIPS = "organization_users"
# Rows of the markers belong to the organization through the rows they mark.
_MARKED = {
    MARKER_TABLE: ("customer_id", "customers"),
    PLAN_MARKER_TABLE: ("service_plan_id", "service_plans"),
}


class RemovalRefused(Exception):
    """One line naming the problem and the fix; nothing was deleted."""


@dataclass
class RemovalPlan:
    organization_id: str
    slug: str
    name: str
    counts: dict[str, int]  # table -> rows of the organization
    accounts: list[str]  # emails of the accounts deleted with it

    def lines(self) -> list[str]:
        lines = [f"{count:>10}  {table}" for table, count in self.counts.items() if count]
        lines.append(
            f"{len(self.accounts):>10}  accounts that belong to it alone"
            + (
                f" ({', '.join(self.accounts[:5])}{', ...' if len(self.accounts) > 5 else ''})"
                if self.accounts
                else ""
            )
        )
        return lines


def _tables_with_organization(cursor) -> list[str]:
    cursor.execute(
        "SELECT c.relname FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid "
        "WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p') "
        "AND a.attname = 'organization_id' AND NOT a.attisdropped ORDER BY c.relname"
    )
    return [name for (name,) in cursor.fetchall()]


def _order(cursor) -> list[str]:
    present = set(_tables_with_organization(cursor)) - {MEMBERSHIPS}
    cursor.execute(
        "SELECT relname FROM pg_class WHERE relnamespace = current_schema()::regnamespace "
        "AND relname = ANY(%s)",
        [list(_MARKED)],
    )
    present |= {name for (name,) in cursor.fetchall()}
    known = [table for table in DELETION_ORDER if table in present]
    return known + sorted(present - set(known))


def _rows_of(table: str, organization_id: str) -> sql.Composable:
    """WHERE clause selecting `table`'s rows of the organization (alias t)."""
    if table in _MARKED:
        column, marked = _MARKED[table]
        return sql.SQL(
            "EXISTS (SELECT 1 FROM {marked} x WHERE x.id = t.{column} "
            "AND x.organization_id = {organization})"
        ).format(
            marked=sql.Identifier(marked),
            column=sql.Identifier(column),
            organization=sql.Literal(organization_id),
        )
    return sql.SQL("t.organization_id = {}").format(sql.Literal(organization_id))


def _accounts_alone(cursor, organization_id: str) -> list[tuple[str, str]]:
    """(id, email) of the accounts whose every membership is in this organization."""
    cursor.execute(
        "SELECT u.id::text, u.email FROM users u WHERE NOT u.is_superuser AND NOT u.is_staff "
        "AND EXISTS (SELECT 1 FROM organization_users m WHERE m.user_id = u.id "
        "AND m.organization_id = %s) "
        "AND NOT EXISTS (SELECT 1 FROM organization_users m WHERE m.user_id = u.id "
        "AND m.organization_id <> %s) ORDER BY u.email",
        [organization_id, organization_id],
    )
    return cursor.fetchall()


def removal_plan(slug: str, *, force: bool = False, using: str = "default") -> RemovalPlan:
    from tenants.models import DEFAULT_ORGANIZATION_SLUG, Organization

    organization = Organization.objects.filter(slug__iexact=slug.strip()).first()
    if organization is None:
        raise RemovalRefused(
            f"no organization with slug {slug!r} (a finished removal leaves none): list them in "
            f"the admin (/admin/tenants/organization/)"
        )
    if organization.slug == DEFAULT_ORGANIZATION_SLUG and not force:
        raise RemovalRefused(
            f"{organization.slug!r} is the default organization (the legacy rows' and the old "
            f"application's): it is removed only with --force; nothing was deleted"
        )
    organization_id = str(organization.pk)
    with connections[using].cursor() as cursor:
        counts = {}
        for table in [*_order(cursor), MEMBERSHIPS]:
            cursor.execute(
                sql.SQL("SELECT count(*) FROM {} t WHERE {}").format(
                    sql.Identifier(table), _rows_of(table, organization_id)
                )
            )
            counts[table] = cursor.fetchone()[0]
        accounts = [email for _id, email in _accounts_alone(cursor, organization_id)]
    return RemovalPlan(organization_id, organization.slug, organization.name, counts, accounts)


def remove_organization(
    plan: RemovalPlan,
    *,
    batch_size: int = BATCH_SIZE,
    progress: Callable[[str], None] = print,
    using: str = "default",
) -> dict[str, int]:
    """Delete what `plan` lists; returns rows deleted per table. Verified before the last
    commit: RuntimeError (nothing of the last step committed) if a row of it is left."""
    connection = connections[using]
    organization_id = plan.organization_id
    with transaction.atomic(using=using), connection.cursor() as cursor:
        cursor.execute(
            "UPDATE organizations SET is_active = false WHERE id = %s AND is_active",
            [organization_id],
        )
    progress(f"  deactivated {plan.slug!r}: no request is served it any more")
    deleted: dict[str, int] = {}
    with connection.cursor() as cursor:
        order = _order(cursor)
    for table in order:
        deleted[table] = _delete_in_batches(connection, table, organization_id, batch_size)
        if deleted[table]:
            progress(f"  deleted {deleted[table]} {table}")
    with transaction.atomic(using=using), connection.cursor() as cursor:
        accounts = _accounts_alone(cursor, organization_id)
        ids = [account_id for account_id, _email in accounts]
        cursor.execute(
            "DELETE FROM organization_users WHERE organization_id = %s", [organization_id]
        )
        deleted[MEMBERSHIPS] = cursor.rowcount
        if ids:
            # What else points at those accounts: their group and permission rows go with them,
            # invitations they sent elsewhere keep existing without an inviter.
            cursor.execute("DELETE FROM users_groups WHERE user_id = ANY(%s::uuid[])", [ids])
            cursor.execute(
                "DELETE FROM users_user_permissions WHERE user_id = ANY(%s::uuid[])", [ids]
            )
            cursor.execute(
                "UPDATE organization_users SET invited_by = NULL "
                "WHERE invited_by = ANY(%s::uuid[])",
                [ids],
            )
            cursor.execute(
                "DELETE FROM users u WHERE u.id = ANY(%s::uuid[]) AND NOT EXISTS "
                "(SELECT 1 FROM django_admin_log l WHERE l.user_id = u.id) AND NOT EXISTS "
                "(SELECT 1 FROM api_tokens k WHERE k.user_id = u.id)",
                [ids],
            )
        deleted["users"] = cursor.rowcount if ids else 0
        cursor.execute("DELETE FROM organizations WHERE id = %s", [organization_id])
        left = verify_removed(cursor, organization_id)
        if left:
            raise RuntimeError(
                "rows of the organization are still there ("
                + ", ".join(f"{count} {table}" for table, count in left.items())
                + "): nothing of the last step was committed; run remove_organization again"
            )
    progress(
        f"  deleted {deleted[MEMBERSHIPS]} memberships, {deleted['users']} accounts and the "
        f"organization"
    )
    return deleted


def _delete_in_batches(connection, table: str, organization_id: str, batch_size: int) -> int:
    statement = sql.SQL(
        "DELETE FROM {table} WHERE ctid = ANY (ARRAY(SELECT t.ctid FROM {table} t WHERE {rows} "
        "LIMIT {limit}))"
    ).format(
        table=sql.Identifier(table),
        rows=_rows_of(table, organization_id),
        limit=sql.Literal(batch_size),
    )
    total = 0
    while True:
        with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
            cursor.execute(f"SET LOCAL lock_timeout = '{BATCH_LOCK_TIMEOUT}'")
            if table == "usage_tracking":  # append-only, except for this purge
                cursor.execute("SET LOCAL billing.allow_usage_purge = on")
            cursor.execute(statement)
            count = cursor.rowcount
        total += count
        if count < batch_size:
            return total


def verify_removed(cursor, organization_id: str) -> dict[str, int]:
    """Rows still referring to the organization, per table (empty: nothing left)."""
    left = {}
    for table in _tables_with_organization(cursor):
        cursor.execute(
            sql.SQL("SELECT count(*) FROM {} WHERE organization_id = %s").format(
                sql.Identifier(table)
            ),
            [organization_id],
        )
        if count := cursor.fetchone()[0]:
            left[table] = count
    cursor.execute("SELECT count(*) FROM organizations WHERE id = %s", [organization_id])
    if count := cursor.fetchone()[0]:
        left["organizations"] = count
    return left


def elapsed_since(begun: float) -> str:
    return f"{time.monotonic() - begun:.1f}s"
