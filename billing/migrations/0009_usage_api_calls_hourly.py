"""Ours (issue 12, with plan step M014): `api_calls` usage is aggregated, one row per
organization and hour, which billing.meter adds to.

- A partial unique index `uq_usage_api_calls_hourly` on (organization_id, metric, recorded_at)
  WHERE metric = 'api_calls', built CONCURRENTLY: the key of the meter's
  `INSERT ... ON CONFLICT ... DO UPDATE SET quantity = quantity + EXCLUDED.quantity`.
- The append-only trigger (billing.0005) lets exactly that through: an UPDATE of an
  `api_calls` row that only raises its quantity. Every other UPDATE, and every DELETE outside
  dangerously_purge_organization_usage, is still refused. The other metrics stay one row per
  event.

Locks: SHARE UPDATE EXCLUSIVE on usage_tracking while the index is built (reads and writes go
on; the time grows with the table), then CREATE OR REPLACE FUNCTION (no table lock). Neither
usage_tracking nor the function is the old application's.

atomic = False (CONCURRENTLY); idempotent (an invalid index left by a crash is rebuilt).
Reverse: the index dropped CONCURRENTLY and billing.0005's trigger function back (any
aggregated rows stay, as ordinary rows).
"""

from django.db import migrations, models

from tenants.conversion.operations import CreateIndexConcurrently

AGGREGATED_UPDATES = """
CREATE OR REPLACE FUNCTION usage_tracking_reject_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND current_setting('billing.allow_usage_purge', true) = 'on' THEN
        RETURN OLD;
    END IF;
    -- api_calls are counters (billing.meter): their quantity may grow, nothing else changes.
    IF TG_OP = 'UPDATE' AND OLD.metric = 'api_calls' AND NEW.quantity > OLD.quantity
       AND NEW.id = OLD.id AND NEW.organization_id = OLD.organization_id
       AND NEW.metric = OLD.metric AND NEW.recorded_at = OLD.recorded_at
       AND NEW.metadata = OLD.metadata THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'usage_tracking is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'restrict_violation',
              HINT = 'Record a correction as a new row with a negative quantity.';
END
$$;
"""

APPEND_ONLY = """
CREATE OR REPLACE FUNCTION usage_tracking_reject_change() RETURNS trigger
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
"""


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("billing", "0008_organization_scoped_unique_indexes"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                CreateIndexConcurrently(
                    "usage_tracking",
                    "uq_usage_api_calls_hourly",
                    "(organization_id, metric, recorded_at) WHERE metric = 'api_calls'",
                    unique=True,
                ),
            ],
            state_operations=[
                migrations.AddConstraint(
                    model_name="usagerecord",
                    constraint=models.UniqueConstraint(
                        condition=models.Q(("metric", "api_calls")),
                        fields=("organization", "metric", "recorded_at"),
                        name="uq_usage_api_calls_hourly",
                    ),
                ),
            ],
        ),
        migrations.RunSQL(AGGREGATED_UPDATES, APPEND_ONLY),
    ]
