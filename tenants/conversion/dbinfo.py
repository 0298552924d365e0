"""Facts about a connection: where it goes (for tools that connect on their own) and what row
level security would hide from it.

Where: settings_dict merged the way Django merges it.

DATABASE_URL may name the host in its query string (postgresql://user@/db?host=/run/pg), which
django-environ puts in OPTIONS, not HOST; Django's backend merges OPTIONS into the connection
parameters, HOST and PORT overriding them when set. Tools that connect on their own (pg_dump,
pg_restore, psycopg) need the same parameters, and messages need the same host.
"""

from __future__ import annotations

from psycopg.conninfo import make_conninfo

# OPTIONS that configure Django's backend rather than libpq.
DJANGO_ONLY_OPTIONS = frozenset(
    {"isolation_level", "server_side_binding", "assume_role", "pool", "cursor_factory"}
)


def libpq_parameters(settings_dict: dict, *, name: str | None = None) -> dict:
    """Connection parameters for the database of `settings_dict` (or database `name` on the
    same server), the password left out: pass it in PGPASSWORD, never on a command line."""
    parameters = {
        key: value
        for key, value in (settings_dict.get("OPTIONS") or {}).items()
        if key not in DJANGO_ONLY_OPTIONS
    }
    parameters["dbname"] = name or settings_dict["NAME"]
    for key, setting in (("user", "USER"), ("host", "HOST"), ("port", "PORT")):
        if settings_dict.get(setting):
            parameters[key] = settings_dict[setting]
    return {key: str(value) for key, value in parameters.items() if value not in (None, "")}


def conninfo(settings_dict: dict, *, name: str | None = None) -> str:
    return make_conninfo(**libpq_parameters(settings_dict, name=name))


def host_and_port(settings_dict: dict) -> tuple[str, str]:
    parameters = libpq_parameters(settings_dict)
    return parameters.get("host", "localhost"), parameters.get("port", "5432")


# Tables whose rows row level security could hide from the current session: not a superuser or
# BYPASSRLS role, not the owner of an unforced table, and not a session with `app.unscoped = on`
# (the owner role's maintenance sessions carry it, see tenants.roles) on a table whose policies
# honour it (tenants.0005's directly, tenants.0007's through tenancy_is_platform(), for the
# owner's sessions).
HIDDEN_BY_ROW_LEVEL_SECURITY = """
SELECT format('%%I.%%I', n.nspname, c.relname)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relrowsecurity
  AND n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'
  AND (%(tables)s::text[] IS NULL OR c.relname = ANY(%(tables)s::text[]))
  AND NOT (SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user)
  AND (c.relforcerowsecurity OR NOT pg_has_role(current_user, c.relowner, 'USAGE'))
  AND NOT (coalesce(current_setting('app.unscoped', true), '') = 'on'
           AND EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = c.oid
                       AND (pg_get_expr(p.polqual, p.polrelid) LIKE '%%app.unscoped%%'
                            OR pg_get_expr(p.polqual, p.polrelid) LIKE '%%tenancy_%%')))
ORDER BY 1
"""


def tables_hidden_by_row_level_security(cursor, tables: list[str] | None = None) -> list[str]:
    """Of `tables` (default: every table), those whose rows this session may not all see."""
    cursor.execute(HIDDEN_BY_ROW_LEVEL_SECURITY, {"tables": tables})
    return [name for (name,) in cursor.fetchall()]


def row_level_security_applies(cursor) -> bool:
    """Whether any table's policies bind this session (even if they let it see every row)."""
    cursor.execute(
        "SELECT EXISTS (SELECT FROM pg_class c WHERE c.relrowsecurity "
        "AND NOT (SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user) "
        "AND (c.relforcerowsecurity OR NOT pg_has_role(current_user, c.relowner, 'USAGE')))"
    )
    return cursor.fetchone()[0]
