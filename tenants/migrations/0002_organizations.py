"""Plan step M002: the organizations table, the tenant of every other row.

A new table: the only lock is on the table being created.
"""

import django.contrib.postgres.functions
import django.db.models.functions.datetime
import uuid
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("tenants", "0001_legacy_snapshot"),
    ]

    operations = [
        migrations.CreateModel(
            name='Organization',
            fields=[
                ('id', models.UUIDField(db_default=django.contrib.postgres.functions.RandomUUID(), default=uuid.uuid4, editable=False, primary_key=True, serialize=False)),
                ('name', models.CharField(max_length=200)),
                ('slug', models.SlugField(max_length=100)),
                ('subdomain', models.CharField(blank=True, max_length=63, null=True)),
                ('plan_tier', models.CharField(choices=[('starter', 'Starter'), ('professional', 'Professional'), ('enterprise', 'Enterprise')], db_default='starter', default='starter', max_length=50)),
                ('subscription_status', models.CharField(choices=[('trial', 'Trial'), ('active', 'Active'), ('past_due', 'Past Due'), ('canceled', 'Canceled'), ('suspended', 'Suspended')], db_default='trial', default='trial', max_length=50)),
                ('trial_ends_at', models.DateTimeField(blank=True, null=True)),
                ('trial_days', models.IntegerField(blank=True, db_default=14, default=14, null=True)),
                ('billing_email', models.EmailField(blank=True, default='', max_length=255)),
                ('billing_address', models.TextField(blank=True, default='')),
                ('stripe_customer_id', models.CharField(blank=True, default='', max_length=100)),
                ('stripe_subscription_id', models.CharField(blank=True, default='', max_length=100)),
                ('max_users', models.IntegerField(blank=True, null=True)),
                ('max_customers', models.IntegerField(blank=True, null=True)),
                ('max_techs', models.IntegerField(blank=True, null=True)),
                ('max_routes_per_day', models.IntegerField(blank=True, null=True)),
                ('features_enabled', models.JSONField(blank=True, db_default={}, default=dict)),
                ('default_map_provider', models.CharField(choices=[('openstreetmap', 'Openstreetmap'), ('google_maps', 'Google Maps')], db_default='openstreetmap', default='openstreetmap', max_length=50)),
                ('google_maps_api_key', models.CharField(blank=True, default='', max_length=200)),
                ('logo_url', models.URLField(blank=True, default='', max_length=500)),
                ('primary_color', models.CharField(blank=True, default='', max_length=7)),
                ('timezone', models.CharField(db_default='America/Los_Angeles', default='America/Los_Angeles', max_length=50)),
                ('is_active', models.BooleanField(db_default=True, default=True)),
                ('onboarded_at', models.DateTimeField(blank=True, null=True)),
                ('created_at', models.DateTimeField(auto_now_add=True, db_default=django.db.models.functions.datetime.Now())),
                ('updated_at', models.DateTimeField(auto_now=True, db_default=django.db.models.functions.datetime.Now())),
            ],
            options={
                'db_table': 'organizations',
                'ordering': ['name'],
                'indexes': [models.Index(fields=['subscription_status'], name='idx_orgs_subscription_status'), models.Index(fields=['stripe_customer_id'], name='idx_orgs_stripe_customer')],
                'constraints': [models.UniqueConstraint(fields=('slug',), name='idx_orgs_slug'), models.UniqueConstraint(fields=('subdomain',), name='idx_orgs_subdomain'), models.CheckConstraint(condition=models.Q(('plan_tier__in', ['starter', 'professional', 'enterprise'])), name='organizations_plan_tier_valid'), models.CheckConstraint(condition=models.Q(('subscription_status__in', ['trial', 'active', 'past_due', 'canceled', 'suspended'])), name='organizations_subscription_status_valid')],
            },
        ),
    ]
