"""Plan step M023 (ours): "one current agreement" and "one active primary payment method" are
unique per (organization_id, customer_id), not per customer_id alone.

The rule is the same (a customer belongs to one organization, and billing.0006 keeps its
agreements and payment methods there), but the check no longer spans organizations: with
customer_id alone, pointing an agreement at another organization's customer failed on
uq_agreements_one_current_per_customer before the foreign key was checked, and so told
whether that customer had a current agreement (an oracle across organizations). Now the
composite foreign key answers first, the same way for every id. It is also the shape a table
distributed by organization needs (docs/scale-out.md).

Locks (tenants.conversion.operations.ReplaceUniqueIndexConcurrently), per index: the new index built
CONCURRENTLY under a temporary name (SHARE UPDATE EXCLUSIVE, reads and writes go on), the old
one dropped CONCURRENTLY, the new one renamed (SHARE UPDATE EXCLUSIVE for milliseconds, 50 ms
lock_timeout, retried). Neither table is the old application's.

atomic = False; idempotent. Reverse: the same, back to customer_id alone.
"""

from django.db import migrations, models

from tenants.conversion.operations import ReplaceUniqueIndexConcurrently

AGREEMENT_CONDITION = models.Q(end_date__isnull=True)
PAYMENT_CONDITION = models.Q(is_primary=True, is_active=True)


def unique(fields, condition, name):
    return models.UniqueConstraint(fields=fields, condition=condition, name=name)


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("billing", "0007_agreement_service_plan_organization"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                ReplaceUniqueIndexConcurrently(
                    "customer_service_agreements",
                    "uq_agreements_one_current_per_customer",
                    ("organization_id", "customer_id"),
                    ("customer_id",),
                    "end_date IS NULL",
                ),
                ReplaceUniqueIndexConcurrently(
                    "payment_methods",
                    "uq_payment_methods_one_active_primary",
                    ("organization_id", "customer_id"),
                    ("customer_id",),
                    "is_primary AND is_active",
                ),
            ],
            state_operations=[
                migrations.RemoveConstraint(
                    model_name="customerserviceagreement",
                    name="uq_agreements_one_current_per_customer",
                ),
                migrations.AddConstraint(
                    model_name="customerserviceagreement",
                    constraint=unique(
                        ["organization", "customer"],
                        AGREEMENT_CONDITION,
                        "uq_agreements_one_current_per_customer",
                    ),
                ),
                migrations.RemoveConstraint(
                    model_name="paymentmethod", name="uq_payment_methods_one_active_primary"
                ),
                migrations.AddConstraint(
                    model_name="paymentmethod",
                    constraint=unique(
                        ["organization", "customer"],
                        PAYMENT_CONDITION,
                        "uq_payment_methods_one_active_primary",
                    ),
                ),
            ],
        )
    ]
