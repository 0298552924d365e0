"""Plan step M011: customer_service_agreements, what each customer pays.

A new table. Locks beyond it: SHARE ROW EXCLUSIVE on customers, briefly, while the foreign key
customer_id -> customers is added (the new table is empty: nothing is validated, no scan of
customers). The lock is requested with a 50 ms lock_timeout and retried, so the old
application's writes never queue behind it for longer than that. SHARE ROW EXCLUSIVE on
organizations and service_plans, for milliseconds, for the other two foreign keys.

The customer foreign key is ON DELETE CASCADE in the database (Django 5.2 cannot declare that,
hence db_constraint=False on the field and the constraint added here): the old application
keeps deleting customers until the new one is deployed, and must not fail on the agreements
that M001 moved its billing values into.
"""

import django.contrib.postgres.functions
import django.db.models.deletion
import django.db.models.functions.datetime
import uuid
from django.db import migrations, models

from billing.legacy import add_customer_foreign_key, drop_customer_foreign_key

TABLE = "customer_service_agreements"
FOREIGN_KEY = "fk_customer_service_agreements_customer"


def add_foreign_key(apps, schema_editor):
    add_customer_foreign_key(schema_editor.connection, table=TABLE, name=FOREIGN_KEY)


def drop_foreign_key(apps, schema_editor):
    drop_customer_foreign_key(schema_editor.connection, table=TABLE, name=FOREIGN_KEY)


class Migration(migrations.Migration):

    dependencies = [
        ("billing", "0001_service_plans"),
        ("routing", "0002_customers_organization"),
    ]

    operations = [
        migrations.CreateModel(
            name="CustomerServiceAgreement",
            fields=[
                ("id", models.UUIDField(db_default=django.contrib.postgres.functions.RandomUUID(), default=uuid.uuid4, editable=False, primary_key=True, serialize=False)),
                ("organization", models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name="service_agreements", to="tenants.organization")),
                ("customer", models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name="service_agreements", to="routing.customer")),
                ("service_plan", models.ForeignKey(blank=True, db_index=False, help_text="Empty: a custom agreement.", null=True, on_delete=django.db.models.deletion.PROTECT, related_name="agreements", to="billing.serviceplan")),
                ("custom_rate", models.DecimalField(blank=True, decimal_places=2, max_digits=10, null=True)),
                ("effective_date", models.DateField()),
                ("end_date", models.DateField(blank=True, help_text="Empty: the current agreement.", null=True)),
                ("rate_notes", models.CharField(blank=True, max_length=500, null=True)),
                ("created_at", models.DateTimeField(auto_now_add=True, db_default=django.db.models.functions.datetime.Now())),
                ("updated_at", models.DateTimeField(auto_now=True, db_default=django.db.models.functions.datetime.Now())),
            ],
            options={
                "db_table": "customer_service_agreements",
                "ordering": ["customer", "-effective_date"],
                "indexes": [
                    models.Index(fields=["customer", "effective_date"], name="idx_agreements_customer"),
                    models.Index(fields=["organization"], name="idx_agreements_org"),
                    models.Index(condition=models.Q(("service_plan__isnull", False)), fields=["service_plan"], name="idx_agreements_service_plan"),
                ],
                "constraints": [
                    models.UniqueConstraint(condition=models.Q(("end_date__isnull", True)), fields=("customer",), name="uq_agreements_one_current_per_customer"),
                    models.CheckConstraint(condition=models.Q(("end_date__isnull", True), ("end_date__gte", models.F("effective_date")), _connector="OR"), name="agreements_end_after_effective"),
                ],
            },
        ),
        migrations.RunPython(add_foreign_key, drop_foreign_key, elidable=False),
    ]
