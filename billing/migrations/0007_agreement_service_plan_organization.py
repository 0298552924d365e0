"""Plan step M021 (ours): an agreement's service plan is a global template or its own.

service_plan_id cannot be a composite foreign key like the others: a global template has
organization_id NULL and is referenced by every organization, so no (organization_id, id) row
matches it. The plain foreign key stays (the plan exists; PROTECT on delete), and two triggers
add what it cannot say:

- agreements_service_plan_in_organization, BEFORE INSERT OR UPDATE OF organization_id,
  service_plan_id on customer_service_agreements: the plan must be a template or a plan of the
  agreement's organization, or the write fails with foreign_key_violation (Django:
  IntegrityError). The function is SECURITY INVOKER, so it sees the plans the writer may see:
  another organization's plan and a plan that does not exist give the same refusal (no
  oracle), before the plain key is checked.
- service_plans_keep_agreements_in_organization, BEFORE UPDATE OF organization_id on
  service_plans: a plan that agreements of another organization use cannot move to an
  organization (a template may not become one organization's plan under the others' feet).
  Only the owner and unscoped maintenance can change a plan's organization (the policies keep
  the application role's writes in its own organization), and they see every agreement.

Existing rows are checked first: the migration stops, naming how many, if any agreement
already uses another organization's plan (validate_tenancy's tenant_consistency names them).

Locks: SHARE ROW EXCLUSIVE on customer_service_agreements and on service_plans, milliseconds
each (CREATE TRIGGER; 50 ms lock_timeout, retried), plus one read of the agreements joined to
their plans. Neither table is the old application's. Reverse: both triggers and functions
dropped (catalog-only, short lock). Idempotent: CREATE OR REPLACE, DROP ... IF EXISTS.
"""

from django.db import migrations

from tenants.conversion.operations import run_ddl_with_short_lock

FUNCTIONS = """
CREATE OR REPLACE FUNCTION agreements_service_plan_in_organization() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    IF NEW.service_plan_id IS NOT NULL AND NOT EXISTS (
        SELECT FROM service_plans p
        WHERE p.id = NEW.service_plan_id
          AND (p.organization_id IS NULL OR p.organization_id = NEW.organization_id)
    ) THEN
        RAISE EXCEPTION USING
            ERRCODE = 'foreign_key_violation',
            MESSAGE = 'customer_service_agreements.service_plan_id must be a global template '
                      'or a service plan of the agreement''s organization',
            CONSTRAINT = 'agreements_service_plan_in_organization';
    END IF;
    RETURN NEW;
END
$$;

CREATE OR REPLACE FUNCTION service_plans_keep_agreements_in_organization() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    IF NEW.organization_id IS NOT NULL AND EXISTS (
        SELECT FROM customer_service_agreements a
        WHERE a.service_plan_id = NEW.id AND a.organization_id <> NEW.organization_id
    ) THEN
        RAISE EXCEPTION USING
            ERRCODE = 'foreign_key_violation',
            MESSAGE = 'agreements of another organization use this service plan: it cannot '
                      'move to an organization',
            CONSTRAINT = 'service_plans_keep_agreements_in_organization';
    END IF;
    RETURN NEW;
END
$$;
"""

TRIGGERS = (
    """
    DROP TRIGGER IF EXISTS agreements_service_plan_in_organization
        ON customer_service_agreements;
    CREATE TRIGGER agreements_service_plan_in_organization
        BEFORE INSERT OR UPDATE OF organization_id, service_plan_id
        ON customer_service_agreements
        FOR EACH ROW EXECUTE FUNCTION agreements_service_plan_in_organization()
    """,
    """
    DROP TRIGGER IF EXISTS service_plans_keep_agreements_in_organization ON service_plans;
    CREATE TRIGGER service_plans_keep_agreements_in_organization
        BEFORE UPDATE OF organization_id ON service_plans
        FOR EACH ROW WHEN (OLD.organization_id IS DISTINCT FROM NEW.organization_id)
        EXECUTE FUNCTION service_plans_keep_agreements_in_organization()
    """,
)

MISMATCHED = """
SELECT count(*) FROM customer_service_agreements a
JOIN service_plans p ON p.id = a.service_plan_id
WHERE p.organization_id IS NOT NULL AND p.organization_id <> a.organization_id
"""


def add_triggers(apps, schema_editor):
    connection = schema_editor.connection
    with connection.cursor() as cursor:
        cursor.execute(FUNCTIONS)
    for statement in TRIGGERS:
        run_ddl_with_short_lock(connection, statement)
    with connection.cursor() as cursor:
        cursor.execute(MISMATCHED)
        mismatched = cursor.fetchone()[0]
    if mismatched:
        raise RuntimeError(
            f"{mismatched} customer service agreement(s) use a service plan of another "
            f"organization (validate_tenancy names them in tenant_consistency): point them at "
            f"a plan of their own organization or a template, then run migrate again"
        )


def drop_triggers(apps, schema_editor):
    connection = schema_editor.connection
    run_ddl_with_short_lock(
        connection,
        "DROP TRIGGER IF EXISTS agreements_service_plan_in_organization "
        "ON customer_service_agreements",
    )
    run_ddl_with_short_lock(
        connection,
        "DROP TRIGGER IF EXISTS service_plans_keep_agreements_in_organization ON service_plans",
    )
    with connection.cursor() as cursor:
        cursor.execute(
            "DROP FUNCTION IF EXISTS agreements_service_plan_in_organization();"
            "DROP FUNCTION IF EXISTS service_plans_keep_agreements_in_organization()"
        )


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("billing", "0006_organization_foreign_keys"),
    ]

    operations = [
        migrations.RunPython(add_triggers, drop_triggers, elidable=False),
    ]
