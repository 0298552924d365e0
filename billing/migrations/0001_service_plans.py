"""Plan step M010: service_plans, the price list (organization NULL = a global template).

A new table: the only locks are on service_plans itself, plus SHARE ROW EXCLUSIVE on
organizations for a few milliseconds while the foreign key to it is added (the new table is
empty, so there is nothing to validate).
"""

import django.contrib.postgres.functions
import django.db.models.deletion
import django.db.models.functions.datetime
import uuid
from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ("tenants", "0002_organizations"),
    ]

    operations = [
        migrations.CreateModel(
            name="ServicePlan",
            fields=[
                ("id", models.UUIDField(db_default=django.contrib.postgres.functions.RandomUUID(), default=uuid.uuid4, editable=False, primary_key=True, serialize=False)),
                ("organization", models.ForeignKey(blank=True, db_index=False, help_text="Empty: a global template.", null=True, on_delete=django.db.models.deletion.CASCADE, related_name="service_plans", to="tenants.organization")),
                ("name", models.CharField(max_length=200)),
                ("description", models.TextField(blank=True, db_default="", default="")),
                ("base_rate", models.DecimalField(blank=True, decimal_places=2, max_digits=10, null=True)),
                ("billing_frequency", models.CharField(choices=[("weekly", "Weekly"), ("monthly", "Monthly"), ("per-visit", "Per visit")], max_length=20)),
                ("is_active", models.BooleanField(db_default=True, default=True)),
                ("created_at", models.DateTimeField(auto_now_add=True, db_default=django.db.models.functions.datetime.Now())),
                ("updated_at", models.DateTimeField(auto_now=True, db_default=django.db.models.functions.datetime.Now())),
            ],
            options={
                "db_table": "service_plans",
                "ordering": ["name"],
                "indexes": [models.Index(fields=["organization", "is_active"], name="idx_service_plans_org")],
                "constraints": [
                    models.UniqueConstraint(fields=("organization", "name"), name="uq_service_plans_org_name", nulls_distinct=False),
                    models.CheckConstraint(condition=models.Q(("billing_frequency__in", ["weekly", "monthly", "per-visit"])), name="service_plans_billing_frequency_valid"),
                ],
            },
        ),
    ]
