"""Record the pre-migration snapshot of the legacy tables, before any of them changes.

Per legacy table: row count, an order-independent content checksum of the legacy columns
(billing columns included where they exist) and every row's digest (tenants.conversion.snapshot), so that
validate_tenancy can prove afterwards that no row was lost or changed.

Locks: ACCESS SHARE on each legacy table while it is read (plain SELECTs): the old application
keeps reading and writing. Time grows with the tables' size (one sequential scan each).
"""

from django.db import migrations, models
import django.db.models.functions.datetime


def take_snapshot(apps, schema_editor):
    from tenants.conversion.snapshot import take_snapshot

    with schema_editor.connection.cursor() as cursor:
        take_snapshot(cursor)


def drop_snapshot(apps, schema_editor):
    from tenants.conversion.snapshot import drop_snapshot

    with schema_editor.connection.cursor() as cursor:
        drop_snapshot(cursor)


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ("routing", "0001_legacy_schema"),
    ]

    operations = [
        migrations.CreateModel(
            name='LegacySnapshot',
            fields=[
                ('table_name', models.CharField(max_length=63, primary_key=True, serialize=False)),
                ('row_count', models.BigIntegerField()),
                ('checksum', models.DecimalField(decimal_places=0, max_digits=30)),
                ('columns', models.JSONField(help_text='The legacy columns the digests cover, in order.')),
                ('taken_at', models.DateTimeField(db_default=django.db.models.functions.datetime.Now())),
            ],
            options={
                'db_table': 'tenancy_legacy_snapshot',
                'ordering': ['table_name'],
            },
        ),
        migrations.RunPython(take_snapshot, drop_snapshot),
    ]
