"""Plan step M008: routes.organization_id, every legacy row in the default organization.

The same five steps as routing.0002 (M006, whose docstring explains them), on routes:
ADD COLUMN with the default organization as a catalog-only default, the keyset backfill of
rows still without one, NOT NULL proven by a CHECK validated under SHARE UPDATE EXCLUSIVE,
fk_routes_organization added NOT VALID then validated, and idx_routes_org built
CONCURRENTLY. ACCESS EXCLUSIVE is only ever held for milliseconds (short lock_timeout,
retried); what grows with the table's size runs under locks that let writers go on.
atomic = False: each statement commits (and releases its lock) on its own; every step is
idempotent, so an interrupted run resumes. Reverse: all catalog-only.
"""

from django.db import migrations

from tenants.conversion.operations import organization_column_operations


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("routing", "0003_drivers_organization"),
    ]

    operations = organization_column_operations(
        model_name="route", table="routes", related_name="routes"
    )
