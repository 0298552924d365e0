"""The application role's privileges: it uses the tables, it owns none of them.

The application connects with DATABASE_URL as a role that owns no table and has neither
SUPERUSER nor BYPASSRLS, so row level security (tenants.0005) binds every query it makes. This
grants it USAGE on the schema, SELECT, INSERT, UPDATE and DELETE on every table and USAGE,
SELECT on every sequence, and, through ALTER DEFAULT PRIVILEGES, the same on the tables and
sequences the owner creates later. No TRUNCATE, no DDL, no REFERENCES: the owner
(MIGRATION_DATABASE_URL) keeps those for migrations and maintenance commands. It runs after
0005 so the role never holds privileges on a tenant table that row level security does not
cover yet.

The role must exist (CREATE ROLE app LOGIN PASSWORD '...' NOSUPERUSER NOBYPASSRLS); the
embedded PostgreSQL creates `routeoptimizer_app` by itself. When the application connects as
the owner (MIGRATION_DATABASE_URL unset) there is nothing to grant: tenants.W001 warns then.

Locks: none on any table (GRANT changes the catalog's ACLs only).
Reverse: REVOKE the same, so the legacy state holds no trace of the role.
"""

from django.db import migrations

from tenants.rls import set_application_privileges
from tenants.roles import application_role_name


def grant(apps, schema_editor):
    set_application_privileges(schema_editor.connection, application_role_name(), grant=True)


def revoke(apps, schema_editor):
    set_application_privileges(schema_editor.connection, application_role_name(), grant=False)


class Migration(migrations.Migration):
    dependencies = [
        ("tenants", "0005_row_level_security"),
    ]

    operations = [
        migrations.RunPython(grant, revoke, elidable=False),
    ]
