"""Plan step M004: organization_users, the membership of users in organizations with a role.

A new table: the only locks are on it and (briefly, SHARE ROW EXCLUSIVE for the foreign keys)
on the new organizations and users tables.
"""

import django.contrib.postgres.functions
import django.db.models.deletion
import django.db.models.functions.datetime
import uuid
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("tenants", "0002_organizations"),
        ("accounts", "0001_users"),
    ]

    operations = [
        migrations.CreateModel(
            name='OrganizationUser',
            fields=[
                ('id', models.UUIDField(db_default=django.contrib.postgres.functions.RandomUUID(), default=uuid.uuid4, editable=False, primary_key=True, serialize=False)),
                ('role', models.CharField(choices=[('owner', 'Owner'), ('admin', 'Admin'), ('manager', 'Manager'), ('technician', 'Technician'), ('readonly', 'Readonly')], max_length=50)),
                ('is_primary_org', models.BooleanField(db_default=False, default=False)),
                ('invitation_token', models.CharField(blank=True, editable=False, max_length=100, null=True)),
                ('invitation_accepted_at', models.DateTimeField(blank=True, null=True)),
                ('created_at', models.DateTimeField(auto_now_add=True, db_default=django.db.models.functions.datetime.Now())),
                ('updated_at', models.DateTimeField(auto_now=True, db_default=django.db.models.functions.datetime.Now())),
                ('invited_by', models.ForeignKey(blank=True, db_column='invited_by', null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('organization', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='memberships', to='tenants.organization')),
                ('user', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='memberships', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'db_table': 'organization_users',
                'ordering': ['organization', 'user'],
                'indexes': [models.Index(fields=['user'], name='idx_org_users_user'), models.Index(fields=['organization'], name='idx_org_users_org'), models.Index(fields=['role'], name='idx_org_users_role'), models.Index(condition=models.Q(('invitation_token__isnull', False)), fields=['invitation_token'], name='idx_org_users_invitation_token')],
                'constraints': [models.UniqueConstraint(fields=('organization', 'user'), name='uq_org_user'), models.UniqueConstraint(condition=models.Q(('is_primary_org', True)), fields=('user',), name='uq_org_users_one_primary_org'), models.CheckConstraint(condition=models.Q(('role__in', ['owner', 'admin', 'manager', 'technician', 'readonly'])), name='organization_users_role_valid')],
            },
        ),
    ]
