"""Ours (issue 12): billing_webhook_events, the Stripe events the billing webhook applied, so
each event id is applied once per organization.

A new tenant table, with the row level security of every tenant table (tenants.rls: the
`organization_isolation` policy of the verified claim, ENABLEd, and FORCEd too when
`contract_tenancy` has already FORCEd the others). It references nothing but its organization, so it needs no composite foreign
key (billing.0006).

Locks: the new table only, plus SHARE ROW EXCLUSIVE on organizations for milliseconds while the
foreign key is added (nothing to validate: the table is empty).

Reverse: row level security disabled and the table dropped.
"""

import django.contrib.postgres.functions
import django.db.models.deletion
import django.db.models.functions.datetime
import uuid
from django.db import migrations, models

from tenants.conversion.operations import run_ddl_with_short_lock
from tenants.rls import disable_row_level_security, enable_row_level_security

TABLE = "billing_webhook_events"


def enable(apps, schema_editor):
    connection = schema_editor.connection
    enable_row_level_security(connection, TABLE)
    # After contract_tenancy (the other tenant tables FORCEd), the new one is FORCEd as well.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relforcerowsecurity FROM pg_class WHERE oid = 'usage_tracking'::regclass"
        )
        (forced,) = cursor.fetchone()
    if forced:
        run_ddl_with_short_lock(connection, f"ALTER TABLE {TABLE} FORCE ROW LEVEL SECURITY")


def disable(apps, schema_editor):
    disable_row_level_security(schema_editor.connection, TABLE)


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("billing", "0009_usage_api_calls_hourly"),
        # The claim's policies (tenancy_organizations()) exist from tenants.0007 on.
        ("tenants", "0007_verified_organization"),
    ]

    operations = [
        migrations.CreateModel(
            name="BillingWebhookEvent",
            fields=[
                ("id", models.UUIDField(db_default=django.contrib.postgres.functions.RandomUUID(), default=uuid.uuid4, editable=False, primary_key=True, serialize=False)),
                ("organization", models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name="billing_webhook_events", to="tenants.organization")),
                ("stripe_event_id", models.CharField(max_length=255)),
                ("event_type", models.CharField(max_length=100)),
                ("event_created_at", models.DateTimeField()),
                ("received_at", models.DateTimeField(auto_now_add=True, db_default=django.db.models.functions.datetime.Now())),
            ],
            options={
                "db_table": "billing_webhook_events",
                "ordering": ["-event_created_at"],
                "indexes": [models.Index(fields=["organization", "event_created_at"], name="idx_billing_webhook_events_org")],
                "constraints": [models.UniqueConstraint(fields=("organization", "stripe_event_id"), name="uq_billing_webhook_events_event")],
            },
        ),
        migrations.RunPython(enable, disable, elidable=False),
    ]
