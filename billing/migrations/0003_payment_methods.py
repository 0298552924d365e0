"""Plan step M012: payment_methods, Stripe references and last four digits, never card numbers.

A new table. Locks beyond it: SHARE ROW EXCLUSIVE on customers, briefly, while the foreign key
customer_id -> customers is added (the new table is empty: nothing is validated, no scan of
customers), requested with a 50 ms lock_timeout and retried; SHARE ROW EXCLUSIVE on
organizations for milliseconds for its foreign key.

payment_type has no CHECK on purpose: M001 moves the legacy free-text payment_method_type here
verbatim (and its reverse puts it back exactly); it is nullable because legacy rows may carry
only Stripe ids. The customer foreign key is ON DELETE CASCADE in the database, as in 0002.
"""

import django.contrib.postgres.functions
import django.db.models.deletion
import django.db.models.functions.datetime
import uuid
from django.db import migrations, models

from billing.legacy import add_customer_foreign_key, drop_customer_foreign_key

TABLE = "payment_methods"
FOREIGN_KEY = "fk_payment_methods_customer"


def add_foreign_key(apps, schema_editor):
    add_customer_foreign_key(schema_editor.connection, table=TABLE, name=FOREIGN_KEY)


def drop_foreign_key(apps, schema_editor):
    drop_customer_foreign_key(schema_editor.connection, table=TABLE, name=FOREIGN_KEY)


class Migration(migrations.Migration):

    dependencies = [
        ("billing", "0002_customer_service_agreements"),
        ("routing", "0002_customers_organization"),
    ]

    operations = [
        migrations.CreateModel(
            name="PaymentMethod",
            fields=[
                ("id", models.UUIDField(db_default=django.contrib.postgres.functions.RandomUUID(), default=uuid.uuid4, editable=False, primary_key=True, serialize=False)),
                ("organization", models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name="payment_methods", to="tenants.organization")),
                ("customer", models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name="payment_methods", to="routing.customer")),
                ("payment_type", models.CharField(blank=True, choices=[("credit_card", "Credit card"), ("ach", "ACH"), ("check", "Check"), ("cash", "Cash")], max_length=20, null=True)),
                ("is_primary", models.BooleanField(db_default=False, default=False)),
                ("is_active", models.BooleanField(db_default=True, default=True)),
                ("stripe_customer_id", models.CharField(blank=True, max_length=100, null=True)),
                ("stripe_payment_method_id", models.CharField(blank=True, max_length=100, null=True)),
                ("last_four", models.CharField(blank=True, max_length=4, null=True)),
                ("brand", models.CharField(blank=True, max_length=50, null=True)),
                ("created_at", models.DateTimeField(auto_now_add=True, db_default=django.db.models.functions.datetime.Now())),
                ("updated_at", models.DateTimeField(auto_now=True, db_default=django.db.models.functions.datetime.Now())),
            ],
            options={
                "db_table": "payment_methods",
                "ordering": ["customer", "-is_primary", "-created_at"],
                "indexes": [
                    models.Index(fields=["customer"], name="idx_payment_methods_customer"),
                    models.Index(fields=["organization"], name="idx_payment_methods_org"),
                    models.Index(condition=models.Q(("stripe_customer_id__isnull", False)), fields=["stripe_customer_id"], name="idx_payment_methods_stripe_cus"),
                ],
                "constraints": [
                    models.UniqueConstraint(condition=models.Q(("is_active", True), ("is_primary", True)), fields=("customer",), name="uq_payment_methods_one_active_primary"),
                ],
            },
        ),
        migrations.RunPython(add_foreign_key, drop_foreign_key, elidable=False),
    ]
