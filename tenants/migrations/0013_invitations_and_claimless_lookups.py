"""Ours (M030): an invitation is accepted only while pending and unexpired, and only the
application role calls the lookups that answer without a claim (tenants.verification).

- `tenancy_guard_memberships`: an invitee could change the invitation columns of their own
  membership row in any way, so one SQL injection in their own request accepted an expired
  invitation (or a pending one, by clearing its token alone) and then signed in to that
  organization. Now the invitee's own update may change them only as the acceptance of a
  pending invitation younger than INVITATION_LIFETIME, token cleared and acceptance time set at
  once, as `tenants.services.invitation_accept` writes them.
- `tenancy_api_token`, `tenancy_account_id` and the session functions run as the owner and
  answer by a hash or an email alone: EXECUTE is revoked from PUBLIC (any role that may log in
  to the cluster had it) and kept for the application role, as tenants.0012 did for
  `tenancy_api_token_membership`.

Locks: none on any table. CREATE OR REPLACE FUNCTION (the trigger keeps pointing at the
function, whose body changes), REVOKE and GRANT change the catalog only (pg_proc and its ACL),
so neither the old application nor a running request waits for this step. Re-running gives the
same definitions. Reverse: the guard as tenants.0007-0012 made it, EXECUTE for PUBLIC again.
"""

from django.db import migrations

from tenants.roles import distinct_application_role
from tenants.verification import harden_invitations_and_lookups, soften_invitations_and_lookups


def forwards(apps, schema_editor):
    connection = schema_editor.connection
    harden_invitations_and_lookups(connection, distinct_application_role(connection))


def backwards(apps, schema_editor):
    soften_invitations_and_lookups(schema_editor.connection)


class Migration(migrations.Migration):
    dependencies = [
        ("tenants", "0012_api_token_membership_lookup"),
    ]

    operations = [
        migrations.RunPython(forwards, backwards, elidable=False),
    ]
