"""Password hashes leave the ORM (issue 8): the application role may not read users.password_hash.

The column stays where it is (the old application's accounts, if any, keep their hashes); the
model no longer maps it, so no query the ORM builds names it. accounts.models.User.password reads
and writes it through tenancy_password_hash() / tenancy_set_password_hash(), which answer only
for the claim's own user, the platform, or (for writes) tenancy_guard_users' rule
(tenants.verification). A new row gets the DEFAULT '!', Django's mark of an unusable password.

Locks: ALTER COLUMN ... SET DEFAULT is catalog-only (ACCESS EXCLUSIVE for milliseconds on users,
which the old application never uses). Reverse: drop the DEFAULT and map the column again.
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0002_api_tokens"),
        # After every data migration that still writes the hash through the historical model
        # (tenants.0004 seeds the default organization's owner).
        ("tenants", "0006_application_role_privileges"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.RunSQL(
                    "ALTER TABLE users ALTER COLUMN password_hash SET DEFAULT '!'",
                    "ALTER TABLE users ALTER COLUMN password_hash DROP DEFAULT",
                ),
            ],
            state_operations=[
                migrations.RemoveField(model_name="user", name="password"),
            ],
        ),
    ]
