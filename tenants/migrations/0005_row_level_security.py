"""Row level security on every tenant table: ENABLEd now, FORCEd by the contract step.

On each tenant table (the four legacy tables and the billing tables) this creates the policies of
tenants.rls and ENABLEs row level security:
- `organization_isolation`: the application role reads and writes only the organization its
  transaction names in `app.current_organization_id` (tenants.connection sets it per
  transaction), and nothing when none is named; every organization only while the transaction
  says `app.unscoped = on` (the `unscoped` managers, and the owner's maintenance sessions, see
  tenants.roles). For writes that is
  `organization_id = NULLIF(current_setting('app.current_organization_id', true), '')::uuid`;
  for reads the same test is written as `organization_id = ANY (...)` so that it stays an index
  condition on organization_id (see tenants.rls);
- on service_plans, `global_templates_readable` and `global_templates_unscoped`: the global
  templates (no organization) are read by every organization and written through `unscoped`.
The policies name no role (PUBLIC): they bind whoever row level security binds, which is the
application role (it owns no table), and not the owner, which ENABLE leaves out.

Locks: ALTER TABLE ... ENABLE ROW LEVEL SECURITY and CREATE POLICY take ACCESS EXCLUSIVE on the
table, for milliseconds (catalog-only, nothing is scanned or rewritten). Each table gets one
short transaction of its own through tenants.conversion.operations.run_ddl_with_short_lock (lock_timeout
50ms, retried), so the statement never waits long in the lock queue and never queues the old
application's reads and writes behind it; `atomic = False` releases each table's lock at once.

Why not FORCE here: FORCE ROW LEVEL SECURITY binds the table owner too. The old application
connects as the owner and keeps writing, naming no organization, until the new one is deployed;
with FORCE its inserts would fail the WITH CHECK and its reads would see nothing, and an
in-flight legacy write must never fail. So `migrate` only ENABLEs (the owner, i.e. the old
application and the migrations, is not subject), and `python manage.py contract_tenancy`, run
once the old application is gone, FORCEs it and drops the organization_id column defaults in the
same step; `contract_tenancy --undo` reverses both.

Reverse: NO FORCE, DISABLE and drop the policies (same short locks), after putting back the column
defaults the contract step may have dropped, so the old application works again.
"""

from django.db import migrations

from tenants.migrations._setting_policies import create_setting_policies
from tenants.rls import contract_tenancy, disable_row_level_security, enable_row_level_security

# Frozen: this migration's tables, whatever the models say later (a later tenant table gets its
# own migration). True: the table holds global templates (organization NULL).
TENANT_TABLES = {
    "customers": False,
    "drivers": False,
    "routes": False,
    "route_stops": False,
    "service_plans": True,
    "customer_service_agreements": False,
    "payment_methods": False,
    "organization_subscriptions": False,
    "usage_tracking": False,
}


def enable(apps, schema_editor):
    for table, global_templates in TENANT_TABLES.items():
        enable_row_level_security(
            schema_editor.connection,
            table,
            global_templates=global_templates,
            create_policies=create_setting_policies,
        )


def disable(apps, schema_editor):
    connection = schema_editor.connection
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_class WHERE relnamespace = current_schema()::regnamespace "
            "AND relname = ANY(%s) AND relrowsecurity",
            [list(TENANT_TABLES)],
        )
        (enabled,) = cursor.fetchone()
    if enabled == len(TENANT_TABLES):
        contract_tenancy(connection, undo=True, tables=list(TENANT_TABLES))
    for table in TENANT_TABLES:
        disable_row_level_security(connection, table)


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("tenants", "0004_seed_default_organization"),
        ("accounts", "0002_api_tokens"),
        ("routing", "0008_drivers_geocoding"),
        ("billing", "0005_usage_tracking"),
        ("geocoding", "0001_geocoding_cache"),
    ]

    operations = [
        migrations.RunPython(enable, disable, elidable=False),
    ]
