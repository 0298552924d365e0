"""System checks for tenancy: is row level security really exercised by the application?

Database checks (`manage.py check --database default`, and `migrate`, which runs them): they
look at the server's roles, so they run only when a command asks for database checks.
"""

from django.conf import settings
from django.core import checks
from django.db import DatabaseError, connections

from tenants.roles import APPLICATION, OWNER


@checks.register(checks.Tags.database)
def check_application_role(app_configs=None, databases=None, **kwargs):
    if not databases or "default" not in databases:
        return []
    app, owner = settings.DATABASE_ROLES[APPLICATION], settings.DATABASE_ROLES[OWNER]
    try:
        with connections["default"].cursor() as cursor:
            cursor.execute(
                "SELECT r.rolsuper, r.rolbypassrls, EXISTS (SELECT 1 FROM pg_class c "
                "WHERE c.relowner = r.oid AND c.relnamespace = current_schema()::regnamespace) "
                "FROM pg_roles r WHERE r.rolname = %s",
                [app["USER"]],
            )
            row = cursor.fetchone()
    except DatabaseError:
        return []  # an unreachable database is reported by the command itself, in one line
    reasons = []
    if app["USER"] == owner["USER"]:
        reasons.append("the owner role too (MIGRATION_DATABASE_URL is unset or the same)")
    if row is not None and row[0]:
        reasons.append("a superuser")
    elif row is not None and row[1]:
        reasons.append("a role with BYPASSRLS")
    if row is not None and row[2] and app["USER"] != owner["USER"]:
        reasons.append("the owner of tables")
    if not reasons:
        return []
    return [
        checks.Warning(
            f"the application connects as {app['USER']!r}, {' and '.join(reasons)}: row level "
            f"security does not bind it, so only the ORM's scoping separates organizations.",
            hint="Set DATABASE_URL to a role that owns no table and has neither SUPERUSER nor "
            "BYPASSRLS, and MIGRATION_DATABASE_URL to the owner of the tables.",
            id="tenants.W001",
        )
    ]


TENANCY_KEY_HINT = (
    "Run `python manage.py tenancy_key install` (as the owner, MIGRATION_DATABASE_URL) with the "
    "SECRET_KEY / ROUTEOPTIMIZER_TENANCY_KEY the application runs with, or `migrate`, which "
    "installs it."
)


@checks.register(checks.Tags.database)
def check_tenancy_key(app_configs=None, databases=None, **kwargs):
    """tenants.E002: the claims Django signs do not verify, so every tenant query sees nothing."""
    if not databases or "default" not in databases:
        return []
    from tenants.verification import claim_verifies

    try:
        verifies = claim_verifies(connections["default"])
    except DatabaseError:
        return []  # an unreachable database is reported by the command itself, in one line
    if verifies is not False:
        return []
    return [
        checks.Error(
            "the database does not know the tenancy key this application signs with: every "
            "tenant query will see nothing.",
            hint=TENANCY_KEY_HINT,
            id="tenants.E002",
        )
    ]
