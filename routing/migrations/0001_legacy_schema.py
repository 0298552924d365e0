"""Adopt the legacy tables (customers, drivers, routes, route_stops) or create them.

On a legacy database the tables are checked column by column and, when they match the
contract (routing.legacy), recorded as applied without any change: no lock, no rewrite. On an
empty database they are created exactly as legacy_schema.sql defines them (billing columns
included), so both paths reach the same state. Reversing it never drops the tables.
"""

import django.db.models.deletion
import django.utils.timezone
import routing.fields
import uuid
from django.db import migrations, models

from routing.operations import AdoptOrCreateLegacySchema


class Migration(migrations.Migration):

    initial = True

    dependencies = [
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[AdoptOrCreateLegacySchema()],
            state_operations=[
            migrations.CreateModel(
                name='Driver',
                fields=[
                    ('id', models.UUIDField(default=uuid.uuid4, editable=False, primary_key=True, serialize=False)),
                    ('name', models.CharField(max_length=200)),
                    ('email', models.CharField(blank=True, max_length=255, null=True)),
                    ('phone', models.CharField(blank=True, max_length=20, null=True)),
                    ('start_location_address', models.CharField(max_length=500)),
                    ('start_latitude', models.FloatField(blank=True, null=True)),
                    ('start_longitude', models.FloatField(blank=True, null=True)),
                    ('end_location_address', models.CharField(max_length=500)),
                    ('end_latitude', models.FloatField(blank=True, null=True)),
                    ('end_longitude', models.FloatField(blank=True, null=True)),
                    ('working_hours_start', models.TimeField()),
                    ('working_hours_end', models.TimeField()),
                    ('max_customers_per_day', models.IntegerField()),
                    ('is_active', models.BooleanField(default=True)),
                    ('notes', models.CharField(blank=True, max_length=1000, null=True)),
                    ('created_at', routing.fields.UTCDateTimeField(default=django.utils.timezone.now)),
                    ('updated_at', routing.fields.UTCDateTimeField(auto_now=True)),
                    ('color', models.CharField(db_default='#3498db', default='#3498db', max_length=7)),
                ],
                options={
                    'db_table': 'drivers',
                    'ordering': ['name'],
                    'indexes': [models.Index(fields=['name'], name='ix_drivers_name')],
                },
            ),
            migrations.CreateModel(
                name='Customer',
                fields=[
                    ('id', models.UUIDField(default=uuid.uuid4, editable=False, primary_key=True, serialize=False)),
                    ('name', models.CharField(blank=True, max_length=200, null=True)),
                    ('address', models.CharField(max_length=500)),
                    ('latitude', models.FloatField(blank=True, null=True)),
                    ('longitude', models.FloatField(blank=True, null=True)),
                    ('service_type', models.CharField(choices=[('residential', 'Residential'), ('commercial', 'Commercial')], max_length=20)),
                    ('difficulty', models.IntegerField()),
                    ('service_day', models.CharField(choices=[('monday', 'Monday'), ('tuesday', 'Tuesday'), ('wednesday', 'Wednesday'), ('thursday', 'Thursday'), ('friday', 'Friday'), ('saturday', 'Saturday'), ('sunday', 'Sunday')], max_length=20)),
                    ('locked', models.BooleanField(default=False)),
                    ('time_window_start', models.TimeField(blank=True, null=True)),
                    ('time_window_end', models.TimeField(blank=True, null=True)),
                    ('notes', models.CharField(blank=True, max_length=1000, null=True)),
                    ('is_active', models.BooleanField(default=True)),
                    ('created_at', routing.fields.UTCDateTimeField(default=django.utils.timezone.now)),
                    ('updated_at', routing.fields.UTCDateTimeField(auto_now=True)),
                    ('service_days_per_week', models.IntegerField(default=1)),
                    ('service_schedule', models.CharField(blank=True, max_length=50, null=True)),
                    ('visit_duration', models.IntegerField(db_default=15, default=15)),
                    ('first_name', models.CharField(blank=True, max_length=100, null=True)),
                    ('last_name', models.CharField(blank=True, max_length=100, null=True)),
                    ('display_name', models.CharField(max_length=200)),
                    ('email', models.CharField(blank=True, max_length=255, null=True)),
                    ('phone', models.CharField(blank=True, max_length=20, null=True)),
                    ('alt_email', models.CharField(blank=True, max_length=255, null=True)),
                    ('alt_phone', models.CharField(blank=True, max_length=20, null=True)),
                    ('invoice_email', models.CharField(blank=True, max_length=255, null=True)),
                    ('management_company', models.CharField(blank=True, max_length=200, null=True)),
                    ('status', models.CharField(db_default='active', default='active', max_length=20)),
                    ('service_rate', models.DecimalField(blank=True, decimal_places=2, max_digits=10, null=True)),
                    ('billing_frequency', models.CharField(blank=True, max_length=20, null=True)),
                    ('rate_notes', models.CharField(blank=True, max_length=500, null=True)),
                    ('payment_method_type', models.CharField(blank=True, max_length=20, null=True)),
                    ('stripe_customer_id', models.CharField(blank=True, max_length=100, null=True)),
                    ('stripe_payment_method_id', models.CharField(blank=True, max_length=100, null=True)),
                    ('payment_last_four', models.CharField(blank=True, max_length=4, null=True)),
                    ('payment_brand', models.CharField(blank=True, max_length=50, null=True)),
                    ('assigned_driver', models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='assigned_customers', to='routing.driver')),
                ],
                options={
                    'db_table': 'customers',
                    'ordering': ['display_name'],
                },
            ),
            migrations.CreateModel(
                name='Route',
                fields=[
                    ('id', models.UUIDField(default=uuid.uuid4, editable=False, primary_key=True, serialize=False)),
                    ('service_day', models.CharField(choices=[('monday', 'Monday'), ('tuesday', 'Tuesday'), ('wednesday', 'Wednesday'), ('thursday', 'Thursday'), ('friday', 'Friday'), ('saturday', 'Saturday'), ('sunday', 'Sunday')], max_length=20)),
                    ('total_duration_minutes', models.IntegerField(blank=True, null=True)),
                    ('total_distance_miles', models.FloatField(blank=True, null=True)),
                    ('total_customers', models.IntegerField(blank=True, null=True)),
                    ('optimization_algorithm', models.CharField(blank=True, max_length=100, null=True)),
                    ('optimization_score', models.FloatField(blank=True, null=True)),
                    ('created_at', routing.fields.UTCDateTimeField(default=django.utils.timezone.now)),
                    ('updated_at', routing.fields.UTCDateTimeField(auto_now=True)),
                    ('driver', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='routes', to='routing.driver')),
                ],
                options={
                    'db_table': 'routes',
                    'ordering': ['service_day', 'driver__name'],
                },
            ),
            migrations.CreateModel(
                name='RouteStop',
                fields=[
                    ('id', models.UUIDField(default=uuid.uuid4, editable=False, primary_key=True, serialize=False)),
                    ('sequence', models.IntegerField()),
                    ('estimated_arrival_time', models.TimeField(blank=True, null=True)),
                    ('estimated_service_duration', models.IntegerField(blank=True, null=True)),
                    ('estimated_drive_time_from_previous', models.IntegerField(blank=True, null=True)),
                    ('estimated_distance_from_previous', models.FloatField(blank=True, null=True)),
                    ('created_at', routing.fields.UTCDateTimeField(default=django.utils.timezone.now)),
                    ('customer', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='route_stops', to='routing.customer')),
                    ('route', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='stops', to='routing.route')),
                ],
                options={
                    'db_table': 'route_stops',
                    'ordering': ['route', 'sequence'],
                },
            ),
            migrations.AddIndex(
                model_name='customer',
                index=models.Index(fields=['display_name'], name='ix_customers_display_name'),
            ),
            migrations.AddIndex(
                model_name='customer',
                index=models.Index(fields=['service_day'], name='ix_customers_service_day'),
            ),
            migrations.AddIndex(
                model_name='customer',
                index=models.Index(fields=['service_type'], name='ix_customers_service_type'),
            ),
            migrations.AddIndex(
                model_name='route',
                index=models.Index(fields=['driver'], name='ix_routes_driver_id'),
            ),
            migrations.AddIndex(
                model_name='route',
                index=models.Index(fields=['service_day'], name='ix_routes_service_day'),
            ),
            migrations.AddIndex(
                model_name='routestop',
                index=models.Index(fields=['customer'], name='ix_route_stops_customer_id'),
            ),
            migrations.AddIndex(
                model_name='routestop',
                index=models.Index(fields=['route'], name='ix_route_stops_route_id'),
            ),
            ],
        ),
    ]
