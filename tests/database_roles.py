"""The suite's two roles: the owner creates and migrates the test database, and the tests run
as the application role, so row level security is really exercised.

The application role is DATABASE_URL's, unless that names the owner (MIGRATION_DATABASE_URL
unset) or a superuser or BYPASSRLS role, which row level security does not bind: then the
suite gives itself `routeoptimizer_app` (created if missing, which needs the owner to be a
superuser or to have CREATEROLE; idempotent and safe when several runs race, since roles are
shared by the whole server). It logs in without a password, as the configured user's host
allows (the embedded server and CI trust local connections). On a server that wants
passwords, give the suite its own roles: DATABASE_URL = the application role, and
MIGRATION_DATABASE_URL = the owner.
"""

from __future__ import annotations

import psycopg
from django.conf import settings

from routeoptimizer.database import (
    APPLICATION_ROLE,
    ROLE_KEYS,
    create_login_role,
    role_facts,
    settings_to_uri,
)
from tenants.roles import APPLICATION, OWNER


def owner_server_settings(settings_dict: dict) -> dict:
    """`settings_dict`'s server, logged in as the owner role (without its session options)."""
    owner = settings.DATABASE_ROLES[OWNER]
    return {**settings_dict, **{key: owner[key] for key in ROLE_KEYS if key != "OPTIONS"}}


def prepare_application_role() -> None:
    """Make settings.DATABASE_ROLES["app"] a role that row level security binds."""
    roles = settings.DATABASE_ROLES
    app, owner = roles[APPLICATION], roles[OWNER]
    server = owner_server_settings(settings.DATABASES["default"])
    with psycopg.connect(settings_to_uri(server, name="postgres"), autocommit=True) as connection:
        facts = role_facts(connection, app["USER"])
        if (
            app["USER"] != owner["USER"]
            and facts is not None
            and not facts["superuser"]
            and not facts["bypassrls"]
        ):
            return
        try:
            create_login_role(connection, APPLICATION_ROLE)
        except psycopg.errors.InsufficientPrivilege as error:
            raise RuntimeError(
                f"the suite runs as an application role and DATABASE_URL's role "
                f"{app['USER']!r} cannot serve as one (it is the owner, a superuser or "
                f"BYPASSRLS) nor create {APPLICATION_ROLE!r}: set DATABASE_URL to an "
                f"application role and MIGRATION_DATABASE_URL to the owner"
            ) from error
    roles[APPLICATION] = {**owner, "USER": APPLICATION_ROLE, "PASSWORD": ""}
