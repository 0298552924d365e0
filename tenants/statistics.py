"""The statistics views and functions that would show the application role every organization's
row totals and activity, and revoking them in this database where the server allows it.

PostgreSQL grants SELECT on pg_stat_* / pg_statio_* and EXECUTE on the pg_stat_get_*
functions behind them to PUBLIC. Those objects live in each database's own pg_catalog, so a
REVOKE here changes this database only, never the other databases of the cluster; it does
change every role of this database, so the roles that legitimately read statistics get them
back explicitly: the role running the migration (the tables' owner) and pg_read_all_stats
(monitoring roles are members of it through pg_monitor). Superusers are not affected.

Every change is recorded in STATISTICS_PRIVILEGES_TABLE (owner only), and the reverse undoes
exactly those: whatever the database held before comes back (function ACLs that were the
implicit default come back as its explicit equivalent).
"""

from __future__ import annotations

import logging

from psycopg import sql

logger = logging.getLogger(__name__)

STATISTICS_PRIVILEGES_TABLE = "tenancy_statistics_privileges"
KEEPER_ROLES = ("pg_read_all_stats",)

# Per table, index and sequence: live and dead row totals, inserts, updates, deletes, scans,
# block reads; per database: totals of every organization's writes; per session: the query
# text of every connection of the same role (the application's other requests, values
# included, since Django binds parameters client-side).
STATISTICS_VIEWS = tuple(
    [
        f"pg_stat_{scope}_{kind}"
        for kind in ("tables", "indexes")
        for scope in ("all", "user", "sys")
    ]
    + [f"pg_stat_xact_{scope}_tables" for scope in ("all", "user", "sys")]
    + [
        f"pg_statio_{scope}_{kind}"
        for kind in ("tables", "indexes", "sequences")
        for scope in ("all", "user", "sys")
    ]
    + ["pg_stat_database", "pg_stat_activity"]
)

STATISTICS_FUNCTIONS = """
SELECT 'pg_catalog.' || p.oid::regprocedure::text
FROM pg_proc p
WHERE p.pronamespace = 'pg_catalog'::regnamespace
  AND (
        (p.proname LIKE 'pg\\_stat\\_get\\_%%' AND p.pronargs = 1
         AND p.proargtypes[0] = 'oid'::regtype
         AND p.proname NOT LIKE '%%function%%' AND p.proname NOT LIKE '%%subscription%%')
     OR p.proname = 'pg_stat_get_activity'
     OR (p.proname LIKE 'pg\\_stat\\_get\\_backend\\_%%'
         AND p.proname <> 'pg_stat_get_backend_idset')
  )
ORDER BY 1
"""


def statistics_objects(cursor) -> list[tuple[str, str, str]]:
    """(kind, object, privilege) of every statistics view and function present on this server."""
    cursor.execute(
        "SELECT name FROM unnest(%s::text[]) AS name "
        "WHERE to_regclass('pg_catalog.' || name) IS NOT NULL ORDER BY name",
        [list(STATISTICS_VIEWS)],
    )
    objects = [("TABLE", f"pg_catalog.{name}", "SELECT") for (name,) in cursor.fetchall()]
    cursor.execute(STATISTICS_FUNCTIONS)
    objects += [("FUNCTION", name, "EXECUTE") for (name,) in cursor.fetchall()]
    return objects


def may_revoke_statistics(cursor) -> bool:
    """Whether the current role may revoke PUBLIC's access to the statistics views: their owner
    (the bootstrap superuser) or a superuser. Managed servers usually give neither."""
    cursor.execute(
        "SELECT r.rolsuper OR pg_has_role(current_user, c.relowner, 'USAGE') "
        "FROM pg_roles r, pg_class c "
        "WHERE r.rolname = current_user AND c.oid = 'pg_catalog.pg_stat_user_tables'::regclass"
    )
    return bool(cursor.fetchone()[0])


def role_reads_statistics(cursor, role: str) -> bool | None:
    """Whether `role` may read pg_stat_user_tables here; None when the role does not exist."""
    cursor.execute(
        "SELECT has_table_privilege(r.oid, 'pg_catalog.pg_stat_user_tables', 'SELECT') "
        "FROM pg_roles r WHERE r.rolname = %s",
        [role],
    )
    row = cursor.fetchone()
    return None if row is None else row[0]


def _grant_statement(kind, name, privilege, grantee, *, grant: bool) -> sql.Composable:
    template = "GRANT {} ON {} {} TO {}" if grant else "REVOKE {} ON {} {} FROM {}"
    return sql.SQL(template).format(
        sql.SQL(privilege),
        sql.SQL(kind),
        sql.SQL(name),  # pg_catalog.<name> or a regprocedure: from the catalog, not input
        sql.SQL("PUBLIC") if grantee == "PUBLIC" else sql.Identifier(grantee),
    )


def _public_has(cursor, kind: str, name: str, privilege: str) -> bool:
    column = "relacl" if kind == "TABLE" else "proacl"
    catalog, owner, regtype = (
        ("pg_class", "relowner", "regclass")
        if kind == "TABLE"
        else ("pg_proc", "proowner", "regprocedure")
    )
    default = "'r'" if kind == "TABLE" else "'f'"
    cursor.execute(
        sql.SQL(
            "SELECT EXISTS (SELECT FROM {catalog}, "
            "aclexplode(coalesce({column}, acldefault({default}, {owner}))) acl "
            "WHERE oid = %s::{regtype} AND acl.grantee = 0 AND acl.privilege_type = %s)"
        ).format(
            catalog=sql.SQL(catalog),
            column=sql.SQL(column),
            default=sql.SQL(default),
            owner=sql.SQL(owner),
            regtype=sql.SQL(regtype),
        ),
        [name, privilege],
    )
    return cursor.fetchone()[0]


def revoke_statistics_from_public(connection, *, report=print) -> bool:
    """Revoke PUBLIC's access to the statistics objects of this database, keep it for the
    current role and KEEPER_ROLES, record every change. False (and one notice) when the server
    does not allow it."""
    with connection.cursor() as cursor:
        if not may_revoke_statistics(cursor):
            cursor.execute("SELECT current_user")
            user = cursor.fetchone()[0]
            report(
                f"  NOTICE: {user} may not revoke PUBLIC's access to pg_stat_* / pg_statio_* "
                f"on this server (managed PostgreSQL?); skipped: the application role can still "
                f"read every organization's row totals and activity there "
                f"(docs/tenant-isolation.md)"
            )
            return False
        cursor.execute(
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {} (kind text NOT NULL, object text NOT NULL, "
                "privilege text NOT NULL, grantee text NOT NULL, "
                "PRIMARY KEY (kind, object, grantee))"
            ).format(sql.Identifier(STATISTICS_PRIVILEGES_TABLE))
        )
        # Owner only: ALTER DEFAULT PRIVILEGES (tenants.0006) gave it to the application role.
        cursor.execute(
            "SELECT DISTINCT r.rolname FROM pg_class c, aclexplode(c.relacl) acl "
            "JOIN pg_roles r ON r.oid = acl.grantee "
            "WHERE c.oid = %s::regclass AND acl.grantee <> c.relowner",
            [STATISTICS_PRIVILEGES_TABLE],
        )
        for (grantee,) in cursor.fetchall():
            cursor.execute(
                sql.SQL("REVOKE ALL ON {} FROM {}").format(
                    sql.Identifier(STATISTICS_PRIVILEGES_TABLE), sql.Identifier(grantee)
                )
            )
        cursor.execute(
            "SELECT r.rolname FROM pg_roles r WHERE r.rolname = current_user AND NOT r.rolsuper "
            "UNION ALL SELECT rolname FROM pg_roles WHERE rolname = ANY(%s)",
            [list(KEEPER_ROLES)],
        )
        keepers = [name for (name,) in cursor.fetchall()]
        for kind, name, privilege in statistics_objects(cursor):
            if not _public_has(cursor, kind, name, privilege):
                continue  # already revoked, by us on an interrupted run or by the DBA
            for keeper in keepers:
                # Held through PUBLIC only, until the revoke: granted explicitly first.
                _change(cursor, kind, name, privilege, keeper, grant=True)
            _change(cursor, kind, name, privilege, "PUBLIC", grant=False)
    return True


def _change(cursor, kind, name, privilege, grantee, *, grant: bool) -> None:
    if grant:
        cursor.execute(
            sql.SQL(
                "SELECT EXISTS (SELECT FROM {} WHERE kind = %s AND object = %s AND grantee = %s)"
            ).format(sql.Identifier(STATISTICS_PRIVILEGES_TABLE)),
            [kind, name, grantee],
        )
        if cursor.fetchone()[0] or _explicitly_granted(cursor, kind, name, privilege, grantee):
            return
    cursor.execute(_grant_statement(kind, name, privilege, grantee, grant=grant))
    cursor.execute(
        sql.SQL(
            "INSERT INTO {} (kind, object, privilege, grantee) VALUES (%s, %s, %s, %s) "
            "ON CONFLICT DO NOTHING"
        ).format(sql.Identifier(STATISTICS_PRIVILEGES_TABLE)),
        [kind, name, privilege, grantee],
    )


def _explicitly_granted(cursor, kind, name, privilege, grantee) -> bool:
    column, catalog, regtype = (
        ("relacl", "pg_class", "regclass")
        if kind == "TABLE"
        else ("proacl", "pg_proc", "regprocedure")
    )
    cursor.execute(
        sql.SQL(
            "SELECT EXISTS (SELECT FROM {catalog}, aclexplode({column}) acl "
            "JOIN pg_roles r ON r.oid = acl.grantee "
            "WHERE {catalog}.oid = %s::{regtype} AND r.rolname = %s AND acl.privilege_type = %s)"
        ).format(catalog=sql.SQL(catalog), column=sql.SQL(column), regtype=sql.SQL(regtype)),
        [name, grantee, privilege],
    )
    return cursor.fetchone()[0]


def restore_statistics(connection) -> None:
    """Undo exactly what revoke_statistics_from_public recorded, then forget the record."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [STATISTICS_PRIVILEGES_TABLE])
        if not cursor.fetchone()[0]:
            return
        cursor.execute(
            sql.SQL(
                "SELECT kind, object, privilege, grantee FROM {} "
                "ORDER BY object, grantee = 'PUBLIC'"
            ).format(sql.Identifier(STATISTICS_PRIVILEGES_TABLE))
        )
        for kind, name, privilege, grantee in cursor.fetchall():
            # The keepers' grants go first, PUBLIC's comes back last: the ACL reads as before.
            cursor.execute(
                _grant_statement(kind, name, privilege, grantee, grant=grantee == "PUBLIC")
            )
        cursor.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(STATISTICS_PRIVILEGES_TABLE)))
