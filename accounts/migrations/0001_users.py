"""Plan step M003: the users table (email login, case-insensitive unique email, hashed tokens).

A new table: the only lock is on the table being created.
"""

import accounts.models
import django.contrib.postgres.functions
import django.db.models.functions.datetime
import django.db.models.functions.text
import django.utils.timezone
import uuid
from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('auth', '0012_alter_user_first_name_max_length'),
    ]

    operations = [
        migrations.CreateModel(
            name='User',
            fields=[
                ('is_superuser', models.BooleanField(default=False, help_text='Designates that this user has all permissions without explicitly assigning them.', verbose_name='superuser status')),
                ('id', models.UUIDField(db_default=django.contrib.postgres.functions.RandomUUID(), default=uuid.uuid4, editable=False, primary_key=True, serialize=False)),
                ('email', models.EmailField(max_length=255, unique=True)),
                ('password', models.CharField(db_column='password_hash', max_length=255, verbose_name='password')),
                ('first_name', models.CharField(blank=True, default='', max_length=100)),
                ('last_name', models.CharField(blank=True, default='', max_length=100)),
                ('is_active', models.BooleanField(db_default=True, default=True)),
                ('is_staff', models.BooleanField(db_default=False, default=False, help_text='May log into the admin.')),
                ('email_verified_at', models.DateTimeField(blank=True, null=True)),
                ('email_verification_token', models.CharField(blank=True, editable=False, max_length=100, null=True)),
                ('password_reset_token', models.CharField(blank=True, editable=False, max_length=100, null=True)),
                ('password_reset_expires_at', models.DateTimeField(blank=True, editable=False, null=True)),
                ('last_login', models.DateTimeField(blank=True, db_column='last_login_at', null=True, verbose_name='last login')),
                ('last_login_ip', models.GenericIPAddressField(blank=True, null=True)),
                ('login_count', models.IntegerField(db_default=0, default=0)),
                ('timezone', models.CharField(blank=True, max_length=50, null=True)),
                ('locale', models.CharField(db_default='en_US', default='en_US', max_length=10)),
                ('created_at', models.DateTimeField(db_default=django.db.models.functions.datetime.Now(), default=django.utils.timezone.now)),
                ('updated_at', models.DateTimeField(auto_now=True, db_default=django.db.models.functions.datetime.Now())),
                ('groups', models.ManyToManyField(blank=True, help_text='The groups this user belongs to. A user will get all permissions granted to each of their groups.', related_name='user_set', related_query_name='user', to='auth.group', verbose_name='groups')),
                ('user_permissions', models.ManyToManyField(blank=True, help_text='Specific permissions for this user.', related_name='user_set', related_query_name='user', to='auth.permission', verbose_name='user permissions')),
            ],
            options={
                'db_table': 'users',
                'ordering': ['email'],
                'indexes': [models.Index(condition=models.Q(('email_verification_token__isnull', False)), fields=['email_verification_token'], name='idx_users_email_verification_token'), models.Index(condition=models.Q(('password_reset_token__isnull', False)), fields=['password_reset_token'], name='idx_users_password_reset_token')],
                'constraints': [models.UniqueConstraint(django.db.models.functions.text.Lower('email'), name='idx_users_email_lower')],
            },
            managers=[
                ('objects', accounts.models.UserManager()),
            ],
        ),
    ]
