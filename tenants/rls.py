"""Row level security in PostgreSQL: the policies, the application role's privileges, the state
of every tenant table, and the contract step that FORCEs it.

Policies on each tenant table, for every role that row level security binds (PUBLIC: the
application role always; the owner once FORCEd; superusers and BYPASSRLS roles never):
- `organization_isolation`: the rows of the organizations that `tenancy_organizations()`
  returns, for reading and writing: the organizations of the transaction's verified claim
  (tenants.claims, tenants.verification), every organization for the platform (a verified
  platform claim, or the owner's own maintenance sessions), none without a claim. No plain
  setting widens it.
- on tables with global templates (service_plans): `global_templates_readable` (rows without an
  organization, read by everyone) and `global_templates_platform` (written by the platform).
Naming no role keeps the schema independent of the role names of a deployment.

One policy, not a second permissive one for the platform: PostgreSQL ORs permissive policies,
and `organization_id = X OR <platform>` cannot use the organization_id index, so every query
would scan its table. `organization_id = ANY ((SELECT tenancy_organizations())::uuid[])` is an index
condition; the function runs once per statement, as an InitPlan.

Every DDL statement here is catalog-only and takes ACCESS EXCLUSIVE on its table for
milliseconds: it runs through tenants.conversion.operations.run_ddl_with_short_lock (short
lock_timeout, retried), one table per transaction, so a long-running query delays it instead of
it queueing every writer behind itself.
"""

from __future__ import annotations

from psycopg import sql

from tenants.conversion.operations import (
    column_exists,
    default_organization_id,
    run_ddl_with_short_lock,
)

# The tables the old application writes: their organization_id has a column DEFAULT (the
# default organization) until contract_tenancy drops it.
LEGACY_TENANT_TABLES = ("customers", "drivers", "routes", "route_stops")

ORGANIZATION_POLICY = "organization_isolation"
GLOBAL_TEMPLATES_POLICY = "global_templates_readable"
GLOBAL_TEMPLATES_PLATFORM_POLICY = "global_templates_platform"
_ALL_POLICIES = (
    ORGANIZATION_POLICY,
    GLOBAL_TEMPLATES_POLICY,
    GLOBAL_TEMPLATES_PLATFORM_POLICY,
    "global_templates_unscoped",  # tenants.0005's, replaced by tenants.0007
    "unscoped_access",  # an earlier draft's; dropped wherever it is found
)

# `(SELECT f())`: an InitPlan, run once per statement; `organization_id = ANY ($1)` stays an
# index condition on organization_id.
_VISIBLE = sql.SQL("organization_id = ANY ((SELECT tenancy_organizations())::uuid[])")
_PLATFORM = sql.SQL("(SELECT tenancy_is_platform())")


def tenant_tables() -> list[str]:
    """The tables of the models that are OrganizationOwned, in a stable order."""
    from django.apps import apps

    from tenants.managers import OrganizationOwned

    return sorted(
        model._meta.db_table
        for model in apps.get_models()
        if issubclass(model, OrganizationOwned) and not model._meta.proxy
    )


def _create_policies(table: str, *, global_templates: bool) -> list[sql.Composed]:
    identifier = sql.Identifier(table)
    statements = [
        sql.SQL("CREATE POLICY {} ON {} USING ({}) WITH CHECK ({})").format(
            sql.Identifier(ORGANIZATION_POLICY), identifier, _VISIBLE, _VISIBLE
        )
    ]
    if global_templates:
        statements += [
            sql.SQL("CREATE POLICY {} ON {} FOR SELECT USING (organization_id IS NULL)").format(
                sql.Identifier(GLOBAL_TEMPLATES_POLICY), identifier
            ),
            sql.SQL("CREATE POLICY {} ON {} USING (organization_id IS NULL AND {})").format(
                sql.Identifier(GLOBAL_TEMPLATES_PLATFORM_POLICY), identifier, _PLATFORM
            ),
        ]
    return statements


def _drop_policies(table: str) -> list[sql.Composed]:
    return [
        sql.SQL("DROP POLICY IF EXISTS {} ON {}").format(
            sql.Identifier(name), sql.Identifier(table)
        )
        for name in _ALL_POLICIES
    ]


def enable_row_level_security(
    connection, table: str, *, global_templates: bool = False, create_policies=None
) -> None:
    """(Re)create the policies of `table` and ENABLE row level security on it (not FORCE).

    One short transaction for the table; running it again replaces the policies with the
    current ones, so an interrupted migrate resumes. `create_policies` (table, global_templates)
    -> statements: a migration's frozen policies instead of the current ones.
    """
    create_policies = create_policies or _create_policies
    statements = [
        *_drop_policies(table),
        *create_policies(table, global_templates=global_templates),
        sql.SQL("ALTER TABLE {} ENABLE ROW LEVEL SECURITY").format(sql.Identifier(table)),
    ]
    run_ddl_with_short_lock(connection, sql.SQL("; ").join(statements))


def disable_row_level_security(connection, table: str) -> None:
    """The reverse: DISABLE (and NO FORCE) row level security and drop the policies."""
    identifier = sql.Identifier(table)
    statements = [
        sql.SQL("ALTER TABLE {} NO FORCE ROW LEVEL SECURITY").format(identifier),
        sql.SQL("ALTER TABLE {} DISABLE ROW LEVEL SECURITY").format(identifier),
        *_drop_policies(table),
    ]
    run_ddl_with_short_lock(connection, sql.SQL("; ").join(statements))


# --- the application role's privileges ---------------------------------------------------------

_TABLE_PRIVILEGES = "SELECT, INSERT, UPDATE, DELETE"
_SEQUENCE_PRIVILEGES = "USAGE, SELECT"


def _privilege_statements(role: str, schema: str, *, grant: bool) -> list[sql.Composed]:
    verb, preposition = ("GRANT", "TO") if grant else ("REVOKE", "FROM")
    templates = [
        ("{verb} USAGE ON SCHEMA {schema} {prep} {role}", ""),
        ("{verb} {privileges} ON ALL TABLES IN SCHEMA {schema} {prep} {role}", _TABLE_PRIVILEGES),
        (
            "{verb} {privileges} ON ALL SEQUENCES IN SCHEMA {schema} {prep} {role}",
            _SEQUENCE_PRIVILEGES,
        ),
        # Tables and sequences the owner creates later (future migrations) are covered too.
        (
            "ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} {verb} {privileges} ON TABLES "
            "{prep} {role}",
            _TABLE_PRIVILEGES,
        ),
        (
            "ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} {verb} {privileges} ON SEQUENCES "
            "{prep} {role}",
            _SEQUENCE_PRIVILEGES,
        ),
    ]
    return [
        sql.SQL(template).format(
            verb=sql.SQL(verb),
            prep=sql.SQL(preposition),
            privileges=sql.SQL(privileges),
            schema=sql.Identifier(schema),
            role=sql.Identifier(role),
        )
        for template, privileges in templates
    ]


def set_application_privileges(connection, role: str, *, grant: bool = True) -> bool:
    """GRANT (or REVOKE) the application role's privileges; False when there is nothing to do.

    Nothing to do when the application connects as the owner itself (MIGRATION_DATABASE_URL
    unset): the owner has every privilege already.
    """
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_user, current_schema()")
        current_user, schema = cursor.fetchone()
        if role == current_user:
            return False
        cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role])
        if cursor.fetchone() is None:
            if not grant:
                return False
            raise RuntimeError(
                f"the application role {role!r} (the user of DATABASE_URL) does not exist: "
                f"create it (CREATE ROLE {role} LOGIN PASSWORD '...' NOSUPERUSER NOBYPASSRLS), "
                f"then run migrate again"
            )
        for statement in _privilege_statements(role, schema, grant=grant):
            cursor.execute(statement)
    return True


# --- state and contract ------------------------------------------------------------------------


def row_level_security_status(connection, tables: list[str] | None = None) -> list[dict]:
    """Per tenant table: exists, enabled, forced, its policies and (legacy tables) whether the
    organization_id column still has its DEFAULT. validate_tenancy and the tests read this."""
    tables = tables if tables is not None else tenant_tables()
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT t.name, c.oid IS NOT NULL, coalesce(c.relrowsecurity, false),
                   coalesce(c.relforcerowsecurity, false),
                   coalesce((SELECT array_agg(p.polname::text ORDER BY p.polname)
                             FROM pg_policy p WHERE p.polrelid = c.oid), '{}'),
                   EXISTS (SELECT 1 FROM pg_attrdef d JOIN pg_attribute a
                           ON a.attrelid = d.adrelid AND a.attnum = d.adnum
                           WHERE d.adrelid = c.oid AND a.attname = 'organization_id')
            FROM unnest(%s::text[]) WITH ORDINALITY AS t(name, position)
            LEFT JOIN pg_class c
              ON c.relname = t.name AND c.relnamespace = current_schema()::regnamespace
            ORDER BY t.position
            """,
            [list(tables)],
        )
        rows = cursor.fetchall()
    keys = ("table", "exists", "enabled", "forced", "policies", "organization_default")
    return [dict(zip(keys, row, strict=True)) for row in rows]


class ContractError(Exception):
    """contract_tenancy cannot run; the message is one line with the fix."""


def contract_tenancy(
    connection, *, undo: bool = False, tables: list[str] | None = None, progress=None
) -> list[str]:
    """The contract step, or its undo. Returns one line per change made.

    Contract: drop the organization_id DEFAULT of the legacy tables (the old application's
    inserts, which name no organization, now fail instead of landing in the default
    organization) and FORCE row level security on every tenant table (the owner is bound by the
    policies too). Undo: put both back. Each statement is catalog-only, ACCESS EXCLUSIVE on
    one table for milliseconds; running it twice changes nothing the second time.
    """
    status = {row["table"]: row for row in row_level_security_status(connection, tables)}
    missing = sorted(table for table, row in status.items() if not row["enabled"])
    if missing:
        raise ContractError(
            f"row level security is not enabled on {', '.join(missing)}: run "
            f"`python manage.py migrate` first (tenants.0005_row_level_security)"
        )
    done = []
    if undo:
        organization_id = default_organization_id(connection)
    for table in LEGACY_TENANT_TABLES:
        if table not in status or not column_exists(connection, table, "organization_id"):
            continue
        has_default = status[table]["organization_default"]
        if undo and not has_default:
            run_ddl_with_short_lock(
                connection,
                sql.SQL("ALTER TABLE {} ALTER COLUMN organization_id SET DEFAULT {}").format(
                    sql.Identifier(table), sql.Literal(organization_id)
                ),
            )
            done.append(f"{table}.organization_id defaults to the default organization again")
        elif not undo and has_default:
            run_ddl_with_short_lock(
                connection,
                sql.SQL("ALTER TABLE {} ALTER COLUMN organization_id DROP DEFAULT").format(
                    sql.Identifier(table)
                ),
            )
            done.append(f"{table}.organization_id has no default any more")
        else:
            continue
        if progress:
            progress(done[-1])
    for table, row in status.items():
        if row["forced"] == (not undo):
            continue
        keyword = sql.SQL("NO FORCE" if undo else "FORCE")
        run_ddl_with_short_lock(
            connection,
            sql.SQL("ALTER TABLE {} {} ROW LEVEL SECURITY").format(sql.Identifier(table), keyword),
        )
        done.append(f"{table}: row level security {'no longer ' if undo else ''}forced")
        if progress:
            progress(done[-1])
    return done
