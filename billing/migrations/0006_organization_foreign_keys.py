"""Plan step M020 (ours): the billing tables' customer keys include organization_id.

customer_service_agreements.customer_id and payment_methods.customer_id -> customers become
(organization_id, customer_id) -> customers (organization_id, id), ON DELETE CASCADE
DEFERRABLE INITIALLY DEFERRED as the keys of billing.0002 and billing.0003 they replace: an
agreement or a payment method can only belong to a customer of its own organization, and
PostgreSQL refuses the rest whoever writes it. The target is routing.0009's unique key.
(service_plan_id is billing.0007's: global templates belong to no organization.)

Locks, per key (tenants.conversion.operations.AddOrganizationForeignKey): SHARE ROW EXCLUSIVE on the
billing table and on customers for milliseconds (ADD ... NOT VALID, 50 ms lock_timeout,
retried): the old application's writes to customers wait at most that long; then the
validating scan of the billing table under SHARE UPDATE EXCLUSIVE (ROW SHARE on customers:
reads and writes go on); then ACCESS EXCLUSIVE on the billing table and on customers for
milliseconds to drop the plain key (dropping a foreign key removes its triggers on the parent;
50 ms lock_timeout, retried: measured at 0.004 s of the old application's writes waiting).

atomic = False; idempotent. Reverse: the plain key back (NOT VALID, then validated), then the
composite key dropped.
"""

from django.db import migrations

from tenants.conversion.operations import AddOrganizationForeignKey

ACTIONS = "ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED"


def customer_key(table: str) -> AddOrganizationForeignKey:
    return AddOrganizationForeignKey(
        table,
        f"fk_{table}_customer_in_organization",
        "customer_id",
        "customers",
        ACTIONS,
        replaces=(
            f"fk_{table}_customer",
            f"FOREIGN KEY (customer_id) REFERENCES customers(id) {ACTIONS}",
        ),
    )


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("billing", "0005_usage_tracking"),
        ("routing", "0009_organization_composite_keys"),
    ]

    operations = [
        customer_key("customer_service_agreements"),
        customer_key("payment_methods"),
    ]
