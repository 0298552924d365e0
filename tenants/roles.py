"""Who connects for what: the application role, which row level security binds, and the owner.

- The application (requests, the API, the admin, the test suite) connects with DATABASE_URL as
  a role that owns no table and has neither SUPERUSER nor BYPASSRLS.
- Migrations and maintenance commands (`runs_as_owner` in tenants.management.base) connect with
  MIGRATION_DATABASE_URL as the role that owns the tables. Their sessions carry
  `app.unscoped = on` (a libpq startup option), which the policies honour (tenants.rls), so
  they keep seeing every organization once contract_tenancy has FORCEd row level security on
  the owner as well. The old application, connecting as the owner without it, then sees and
  writes nothing: that is the contract.

Both roles are one database's two logins: switching swaps the credentials of the `default`
connection (closing it first), so everything else (the database name, the test database)
follows the one DATABASES entry.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections

# The owner's sessions say this at start-up; tenancy_is_platform() honours it only for a
# session_user that owns the tables (tenants.verification).
UNSCOPED_SETTING = "app.unscoped"
APPLICATION = "app"
OWNER = "owner"
_OWNER_OPTION = f"-c {UNSCOPED_SETTING}=on"


def role_settings(role: str) -> dict:
    """USER, PASSWORD, HOST, PORT and OPTIONS of `role` (APPLICATION or OWNER)."""
    return dict(settings.DATABASE_ROLES[role])


def application_role_name() -> str:
    return settings.DATABASE_ROLES[APPLICATION]["USER"]


def distinct_application_role(connection) -> str | None:
    """The application role's name when it exists and is not the role `connection` runs as
    (a migration's owner); None otherwise: then the owner serves the application itself, and
    there is nobody to grant to or restrict."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_user")
        (current,) = cursor.fetchone()
        role = application_role_name()
        cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role])
        exists = cursor.fetchone() is not None
    return role if exists and role != current else None


def current_role(alias: str = DEFAULT_DB_ALIAS) -> str:
    return connections[alias].settings_dict.get("ROLE", APPLICATION)


def use_role(role: str, alias: str = DEFAULT_DB_ALIAS) -> None:
    """Connect `alias` as `role` from its next query on (the open connection is closed)."""
    connection = connections[alias]
    if current_role(alias) == role:
        return
    if connection.in_atomic_block:
        raise RuntimeError(
            f"cannot switch the {alias!r} connection to the {role} role inside a transaction: "
            f"switch before the atomic block"
        )
    connection.close()
    connection.settings_dict.update(_connection_settings(role))


def _connection_settings(role: str) -> dict:
    values = role_settings(role)
    options = dict(values.get("OPTIONS") or {})
    if role == OWNER:
        options["options"] = f"{options.get('options', '')} {_OWNER_OPTION}".strip()
    values["OPTIONS"] = options
    values["ROLE"] = role
    return values


@contextmanager
def owner_connection(alias: str = DEFAULT_DB_ALIAS) -> Iterator[None]:
    """Run the block connected as the owner role; back to the previous role afterwards."""
    previous = current_role(alias)
    use_role(OWNER, alias)
    try:
        yield
    finally:
        use_role(previous, alias)
