"""The organization the database verifies (issue 8): a signed claim instead of plain settings,
and the account tables behind the same boundary.

- Creates `tenancy_keys` (owner only) and the SECURITY DEFINER functions that verify the
  per-transaction claim (tenants.verification), and installs the claim key Django signs with.
- Replaces tenants.0005's policies on every tenant table: `organization_isolation` now compares
  organization_id with `tenancy_organizations()`, which honours nothing but a verified claim
  (or the owner's own sessions). `app.current_organization_id` and `app.unscoped` no longer
  mean anything on the application connection.
- Row level security, guard triggers and narrowed privileges on the account tables: users,
  organization_users, api_tokens, organizations, django_admin_log (which gets an
  organization_id column), sessions (reached through functions only), the snapshot tables
  (owner only) and Django's permission tables (platform-written).

Locks: CREATE POLICY on the nine tenant tables takes ACCESS EXCLUSIVE for milliseconds, one
table per short transaction through tenants.conversion.operations.run_ddl_with_short_lock (50 ms
lock_timeout, retried), exactly as tenants.0005 did: the old application's statements wait at
most that long. The account tables are the new application's own (the old application never
reads them); their DDL is catalog-only too. ADD COLUMN organization_id on django_admin_log
has a STABLE default, evaluated once for the existing rows (NULL: no claim during migrate), so
it does not rewrite the table either.

Re-running after an interruption: every statement replaces or re-creates what it defines.
Reverse: tenants.0005's policies back, the account tables' policies, triggers and column
privileges removed, the functions and the key table dropped, and tenants.0006's grants applied
again.
"""

from importlib import import_module

from django.db import migrations

from tenants.migrations._setting_policies import create_setting_policies
from tenants.rls import enable_row_level_security, set_application_privileges
from tenants.roles import application_role_name
from tenants.verification import (
    install_account_boundary,
    install_claim_functions,
    install_key,
    remove_account_boundary,
)

# tenants.0005's tables, frozen there. True: the table holds global templates (organization NULL).
TENANT_TABLES = import_module("tenants.migrations.0005_row_level_security").TENANT_TABLES


def _application_role(connection):
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_user")
        (current,) = cursor.fetchone()
    role = application_role_name()
    return None if role == current else role


def forwards(apps, schema_editor):
    connection = schema_editor.connection
    install_claim_functions(connection)
    install_key(connection)
    for table, global_templates in TENANT_TABLES.items():
        enable_row_level_security(connection, table, global_templates=global_templates)
    install_account_boundary(connection, _application_role(connection))


def backwards(apps, schema_editor):
    connection = schema_editor.connection
    for table, global_templates in TENANT_TABLES.items():
        enable_row_level_security(
            connection,
            table,
            global_templates=global_templates,
            create_policies=create_setting_policies,
        )
    role = _application_role(connection)
    remove_account_boundary(connection, role)
    if role:
        set_application_privileges(connection, role, grant=True)


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("tenants", "0006_application_role_privileges"),
        ("accounts", "0003_password_hash_outside_the_orm"),
        ("admin", "0003_logentry_add_action_flag_choices"),
        ("sessions", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.RunPython(forwards, backwards, elidable=False),
    ]
