"""Plan step M014: usage_tracking, the append-only ledger of metered usage.

A new table: the only locks are on it, plus SHARE ROW EXCLUSIVE on organizations for a few
milliseconds while the foreign key is added (nothing to validate: the table is empty).

Append-only, enforced by PostgreSQL: a BEFORE UPDATE OR DELETE row trigger raises
restrict_violation (Django: IntegrityError), so neither the ORM, the admin nor a hand-written
statement can change or remove billing evidence; a correction is a new row with a negative
quantity. The trigger does not tell cascades apart from direct deletes (`pg_trigger_depth()`
would let any statement through that happens to run inside another trigger), so deleting an
organization does not silently erase its usage either: the foreign key is PROTECT / NO ACTION
and such a deletion fails while usage exists. The one way to remove usage is explicit and
named for its risk, billing.services.dangerously_purge_organization_usage: it sets the
transaction-local setting billing.allow_usage_purge = 'on', which the trigger honours for
DELETE only (never for UPDATE). This guards against application mistakes, not against the
table's owner, who can drop the trigger; TRUNCATE is not covered (it needs table ownership,
and the test suite's flush uses it).
"""

import django.contrib.postgres.functions
import django.db.models.deletion
import django.db.models.functions.datetime
import django.utils.timezone
import uuid
from django.db import migrations, models

APPEND_ONLY = """
CREATE FUNCTION usage_tracking_reject_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND current_setting('billing.allow_usage_purge', true) = 'on' THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'usage_tracking is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'restrict_violation',
              HINT = 'Record a correction as a new row with a negative quantity.';
END
$$;
CREATE TRIGGER usage_tracking_append_only
    BEFORE UPDATE OR DELETE ON usage_tracking
    FOR EACH ROW EXECUTE FUNCTION usage_tracking_reject_change();
"""

DROP_APPEND_ONLY = """
DROP TRIGGER IF EXISTS usage_tracking_append_only ON usage_tracking;
DROP FUNCTION IF EXISTS usage_tracking_reject_change();
"""


class Migration(migrations.Migration):

    dependencies = [
        ("billing", "0004_organization_subscriptions"),
    ]

    operations = [
        migrations.CreateModel(
            name="UsageRecord",
            fields=[
                ("id", models.UUIDField(db_default=django.contrib.postgres.functions.RandomUUID(), default=uuid.uuid4, editable=False, primary_key=True, serialize=False)),
                ("organization", models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name="usage_records", to="tenants.organization")),
                ("metric", models.CharField(choices=[("customers_created", "Customers Created"), ("routes_optimized", "Routes Optimized"), ("api_calls", "API calls"), ("geocoding_requests", "Geocoding Requests")], max_length=50)),
                ("quantity", models.BigIntegerField(db_default=1, default=1)),
                ("metadata", models.JSONField(blank=True, db_default={}, default=dict)),
                ("recorded_at", models.DateTimeField(db_default=django.db.models.functions.datetime.Now(), default=django.utils.timezone.now)),
            ],
            options={
                "db_table": "usage_tracking",
                "ordering": ["-recorded_at"],
                "indexes": [models.Index(fields=["organization", "metric", "recorded_at"], name="idx_usage_org_metric_recorded")],
                "constraints": [
                    models.CheckConstraint(condition=models.Q(("metric__in", ["customers_created", "routes_optimized", "api_calls", "geocoding_requests"])), name="usage_tracking_metric_valid"),
                    models.CheckConstraint(condition=models.Q(("quantity", 0), _negated=True), name="usage_tracking_quantity_not_zero"),
                ],
            },
        ),
        migrations.RunSQL(APPEND_ONLY, DROP_APPEND_ONLY),
    ]
