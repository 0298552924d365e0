"""Ours (M029): authentication in one query (issue 13, item 4), `tenancy_api_token_membership`.

A request's bearer token was found through `tenancy_api_token(digest)` and its accepted
membership, user and organization read in a second query under the user's claim. The new
SECURITY DEFINER function (tenants.verification, beside tenancy_api_token) answers both for one
token hash, compared by equality (no listing, no pattern): the token's columns a request reads
and, while the token is usable, the accepted membership of its user in its organization with
the user's and the organization's columns a request reads; NULLs for those when the token is
revoked or expired or the membership is gone (authentication then says why, as before). Nothing
else: no hash, no password, no other account's row. `search_path` pinned like its siblings;
EXECUTE revoked from PUBLIC and granted to the application role only.

Locks: none on any table. CREATE OR REPLACE FUNCTION, REVOKE and GRANT change the catalog only
(pg_proc and its ACL); the account tables' policies are not replaced (unlike tenants.0010, which
had to), so neither the old application nor a running request waits for this step.
Re-running replaces the same definition. Reverse: the function is dropped (the code before it
authenticates with tenancy_api_token and a second query).
"""

from django.db import migrations

from tenants.roles import distinct_application_role
from tenants.verification import (
    install_api_token_membership_lookup,
    remove_api_token_membership_lookup,
)


def forwards(apps, schema_editor):
    connection = schema_editor.connection
    install_api_token_membership_lookup(connection, distinct_application_role(connection))


def backwards(apps, schema_editor):
    remove_api_token_membership_lookup(schema_editor.connection)


class Migration(migrations.Migration):
    dependencies = [
        ("tenants", "0011_organization_imports"),
    ]

    operations = [
        migrations.RunPython(forwards, backwards, elidable=False),
    ]
