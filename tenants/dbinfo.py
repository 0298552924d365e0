"""Where a Django database is, as libpq sees it: settings_dict merged the way Django merges it.

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
