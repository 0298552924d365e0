"""Ours (M028): what Stripe says is the platform's to write, and usage is the platform's to purge.

- `billing_webhook_events` and `organization_subscriptions` get a guard trigger,
  `billing_platform_writes_only()`: INSERT, UPDATE and DELETE need the platform claim (the
  verified webhook, a superuser, onboarding) or a session of the tables' owner (maintenance
  commands). An organization's own claim still reads its rows (row level security) but can no
  longer write them: with one SQL injection it could otherwise record an event dated 2100 and
  make every real Stripe event "outdated" (its status frozen), or rewrite its subscription.
- `usage_tracking`'s append-only trigger honours `billing.allow_usage_purge` only for the
  platform or the owner: a setting the application role can write is no permission. And a
  correction (a row with a negative quantity) is the platform's or the owner's too (the same
  guard, as the trigger `usage_tracking_corrections`): the application only ever meters
  positive amounts, so an injected negative row could only erase billed usage.

Locks: CREATE TRIGGER takes SHARE ROW EXCLUSIVE on the two billing tables and usage_tracking for
milliseconds
(50 ms lock_timeout, retried); neither is the old application's. CREATE OR REPLACE FUNCTION
changes the catalog only. Idempotent (OR REPLACE, DROP TRIGGER IF EXISTS). Reverse: the
triggers and their functions dropped, billing.0009's usage trigger function back.
"""

import importlib

from django.db import migrations

from tenants.conversion.operations import run_ddl_with_short_lock

# billing.0009's usage trigger function: the reverse puts it back.
usage_0009 = importlib.import_module("billing.migrations.0009_usage_api_calls_hourly")

TABLES = ("billing_webhook_events", "organization_subscriptions")
GUARD = "billing_platform_writes_only"

# One guard for every write that is the platform's: what it guards is named by the trigger's
# argument when the table's name alone would not say it (usage_tracking's corrections).
GUARD_FUNCTION = f"""
CREATE OR REPLACE FUNCTION {GUARD}() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    schema text := TG_TABLE_SCHEMA;
    allowed boolean;
BEGIN
    EXECUTE format('SELECT %I.tenancy_is_platform() OR %I.tenancy_session_owns_tables()',
                   schema, schema) INTO allowed;
    IF NOT coalesce(allowed, false) THEN
        RAISE EXCEPTION '% is written by the platform only (the verified billing webhook, a '
                        'superuser, onboarding): % refused',
                        CASE WHEN TG_NARGS > 0 THEN TG_ARGV[0] ELSE TG_TABLE_NAME END, TG_OP
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
END
$fn$;
REVOKE ALL ON FUNCTION {GUARD}() FROM PUBLIC;
"""

PLATFORM_PURGE = """
CREATE OR REPLACE FUNCTION usage_tracking_reject_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    -- The purge's setting counts for the platform or the owner only: the application role can
    -- set any setting, so on its own the setting would be no permission at all.
    IF TG_OP = 'DELETE' AND current_setting('billing.allow_usage_purge', true) = 'on'
       AND (tenancy_is_platform() OR tenancy_session_owns_tables()) THEN
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


CORRECTIONS = "usage_tracking_corrections"


def forwards(apps, schema_editor):
    connection = schema_editor.connection
    with connection.cursor() as cursor:
        cursor.execute(GUARD_FUNCTION)
        cursor.execute(PLATFORM_PURGE)
    run_ddl_with_short_lock(
        connection,
        f"DROP TRIGGER IF EXISTS {CORRECTIONS} ON usage_tracking; "
        f"CREATE TRIGGER {CORRECTIONS} BEFORE INSERT ON usage_tracking "
        f"FOR EACH ROW WHEN (NEW.quantity < 0) "
        f"EXECUTE FUNCTION {GUARD}('a usage correction (a negative quantity)')",
    )
    for table in TABLES:
        run_ddl_with_short_lock(
            connection,
            f"DROP TRIGGER IF EXISTS {GUARD} ON {table}; "
            f"CREATE TRIGGER {GUARD} BEFORE INSERT OR UPDATE OR DELETE ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION {GUARD}()",
        )


def backwards(apps, schema_editor):
    connection = schema_editor.connection
    for table in TABLES:
        run_ddl_with_short_lock(connection, f"DROP TRIGGER IF EXISTS {GUARD} ON {table}")
    run_ddl_with_short_lock(connection, f"DROP TRIGGER IF EXISTS {CORRECTIONS} ON usage_tracking")
    with connection.cursor() as cursor:
        cursor.execute(f"DROP FUNCTION IF EXISTS {GUARD}()")
        cursor.execute(usage_0009.AGGREGATED_UPDATES)


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("billing", "0010_billing_webhook_events"),
        # tenancy_is_platform() and tenancy_session_owns_tables() as PL/pgSQL.
        ("tenants", "0010_claim_functions_plpgsql"),
    ]

    operations = [migrations.RunPython(forwards, backwards, elidable=False)]
