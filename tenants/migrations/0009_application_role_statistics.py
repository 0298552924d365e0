"""Plan step M022 (ours): the application role no longer reads the statistics views.

pg_stat_* / pg_statio_* (and the pg_stat_get_* functions behind them) show whoever may read
them every table's live and dead row totals, inserts, updates, deletes and scans, whatever row
level security hides: one organization could count another's customers or watch its activity.
Where the migration's role may (a superuser or the views' owner), PUBLIC's SELECT / EXECUTE on
them is revoked in this database and given back to the migration's role and
pg_read_all_stats (tenants.statistics). These objects belong to this database's pg_catalog:
no other database of the cluster changes. Where it may not (managed PostgreSQL), the step is
skipped with one notice, and tenancy_preflight says so; docs/tenant-isolation.md says what
stays visible either way (pg_class.reltuples and relpages, the size functions).

Locks: none on any table (GRANT and REVOKE change catalog ACLs only).
Reverse: exactly the recorded changes undone, the record dropped. Idempotent: an object whose
PUBLIC privilege is already gone is left alone, recorded grants are not repeated.

Runs after tenants.0006 (the application role's privileges) and the verified claim (0007, 0008).
"""

from django.db import migrations

from tenants.statistics import restore_statistics, revoke_statistics_from_public


def revoke(apps, schema_editor):
    revoke_statistics_from_public(schema_editor.connection)


def restore(apps, schema_editor):
    restore_statistics(schema_editor.connection)


class Migration(migrations.Migration):
    dependencies = [
        ("tenants", "0008_organization_slug_case_insensitive"),
    ]

    operations = [
        migrations.RunPython(revoke, restore, elidable=False),
    ]
