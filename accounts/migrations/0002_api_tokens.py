"""API bearer tokens (api_tokens): a new table, so no lock on any legacy table.

Depends on tenants.0002_organizations for the organization foreign key.
"""

import django.contrib.postgres.functions
import django.db.models.deletion
import django.db.models.functions.datetime
import django.utils.timezone
import uuid
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("accounts", "0001_users"),
        ("tenants", "0002_organizations"),
    ]

    operations = [
        migrations.CreateModel(
            name="ApiToken",
            fields=[
                ("id", models.UUIDField(db_default=django.contrib.postgres.functions.RandomUUID(), default=uuid.uuid4, editable=False, primary_key=True, serialize=False)),
                ("key_hash", models.CharField(editable=False, max_length=64)),
                ("name", models.CharField(blank=True, default="", max_length=100)),
                ("created_at", models.DateTimeField(db_default=django.db.models.functions.datetime.Now(), default=django.utils.timezone.now)),
                ("last_used_at", models.DateTimeField(blank=True, editable=False, null=True)),
                ("expires_at", models.DateTimeField(blank=True, help_text="Empty: never expires.", null=True)),
                ("revoked_at", models.DateTimeField(blank=True, null=True)),
                ("organization", models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name="api_tokens", to="tenants.organization")),
                ("user", models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name="api_tokens", to=settings.AUTH_USER_MODEL)),
            ],
            options={
                "db_table": "api_tokens",
                "verbose_name": "API token",
                "ordering": ["-created_at"],
                "indexes": [models.Index(fields=["user"], name="idx_api_tokens_user"), models.Index(fields=["organization"], name="idx_api_tokens_org")],
                "constraints": [models.UniqueConstraint(fields=("key_hash",), name="uq_api_tokens_key_hash")],
            },
        ),
    ]
