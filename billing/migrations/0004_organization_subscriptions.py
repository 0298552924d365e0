"""Plan step M013: organization_subscriptions, each organization's subscription mirrored from Stripe.

A new table: the only locks are on it, plus SHARE ROW EXCLUSIVE on organizations for a few
milliseconds while the foreign key is added (nothing to validate: the table is empty).
"""

import django.contrib.postgres.functions
import django.db.models.deletion
import django.db.models.functions.datetime
import uuid
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("tenants", "0002_organizations"),
        ("billing", "0003_payment_methods"),
    ]

    operations = [
        migrations.CreateModel(
            name="OrganizationSubscription",
            fields=[
                ("id", models.UUIDField(db_default=django.contrib.postgres.functions.RandomUUID(), default=uuid.uuid4, editable=False, primary_key=True, serialize=False)),
                ("organization", models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name="subscriptions", to="tenants.organization")),
                ("stripe_subscription_id", models.CharField(max_length=100)),
                ("plan_tier", models.CharField(choices=[("starter", "Starter"), ("professional", "Professional"), ("enterprise", "Enterprise")], max_length=50)),
                ("status", models.CharField(choices=[("trialing", "Trialing"), ("active", "Active"), ("past_due", "Past Due"), ("canceled", "Canceled")], max_length=50)),
                ("monthly_price", models.DecimalField(decimal_places=2, max_digits=10)),
                ("current_period_start", models.DateTimeField()),
                ("current_period_end", models.DateTimeField()),
                ("trial_start", models.DateTimeField(blank=True, null=True)),
                ("trial_end", models.DateTimeField(blank=True, null=True)),
                ("cancel_at_period_end", models.BooleanField(db_default=False, default=False)),
                ("canceled_at", models.DateTimeField(blank=True, null=True)),
                ("cancellation_reason", models.TextField(blank=True, db_default="", default="")),
                ("created_at", models.DateTimeField(auto_now_add=True, db_default=django.db.models.functions.datetime.Now())),
                ("updated_at", models.DateTimeField(auto_now=True, db_default=django.db.models.functions.datetime.Now())),
            ],
            options={
                "db_table": "organization_subscriptions",
                "ordering": ["organization", "-current_period_start"],
                "indexes": [models.Index(fields=["organization", "status"], name="idx_org_subscriptions_org")],
                "constraints": [
                    models.UniqueConstraint(fields=("stripe_subscription_id",), name="uq_org_subscriptions_stripe_id"),
                    models.UniqueConstraint(condition=models.Q(("status", "canceled"), _negated=True), fields=("organization",), name="uq_org_subscriptions_one_live"),
                    models.CheckConstraint(condition=models.Q(("plan_tier__in", ["starter", "professional", "enterprise"])), name="org_subscriptions_plan_tier_valid"),
                    models.CheckConstraint(condition=models.Q(("status__in", ["trialing", "active", "past_due", "canceled"])), name="org_subscriptions_status_valid"),
                    models.CheckConstraint(condition=models.Q(("monthly_price__gte", 0)), name="org_subscriptions_price_not_negative"),
                    models.CheckConstraint(condition=models.Q(("current_period_end__gte", models.F("current_period_start"))), name="org_subscriptions_period_ordered"),
                    models.CheckConstraint(condition=models.Q(("trial_start__isnull", True), ("trial_end__isnull", True), ("trial_end__gte", models.F("trial_start")), _connector="OR"), name="org_subscriptions_trial_ordered"),
                    models.CheckConstraint(condition=models.Q(models.Q(("status", "canceled"), _negated=True), ("canceled_at__isnull", False), _connector="OR"), name="org_subscriptions_canceled_has_date"),
                ],
            },
        ),
    ]
