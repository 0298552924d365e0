"""The verified claim, checked once per policy function and with plans kept, and lighter
policies on users and organizations (issue 8's performance target).

tenants.0007's functions the policies call (`tenancy_organizations()`, `tenancy_is_platform()`,
`tenancy_user_id()`, `tenancy_current_organization()`, `tenancy_session_owns_tables()`) were SQL
functions: SECURITY DEFINER ones are never inlined, so PostgreSQL parsed and planned their bodies
again on every statement, and `tenancy_organizations()` verified the claim twice (once through
`tenancy_is_platform()`). They become PL/pgSQL (plans kept for the session), each verifying the
claim once, inline, with exactly tenancy_claim()'s checks: signed with an installed key, made for
this backend and this transaction. Same names, arguments, results, privileges and claim format.

The policies on users (who is visible: oneself, the platform, the members of the claim's
organizations) and organizations (the claim's, and those of one's own memberships) read
organization_users in subqueries, whose own policies PostgreSQL planned into every statement on
users and organizations. They read the same sets through two new SECURITY DEFINER functions,
`tenancy_member_ids()` and `tenancy_own_organization_ids()` (PL/pgSQL, planned once per
session, each row set hashed once per statement when a row needs it).

Locks: CREATE OR REPLACE FUNCTION changes the catalog only (statements already running keep the
definition they started with); the account tables' policies are replaced (as every migrate's
tenants.0007 step does) under ACCESS EXCLUSIVE for milliseconds on the account tables; the old
application's writes lock users and organizations too (their foreign key checks), so every lock
request gives up after 50 ms and the replacement is retried (with_short_lock), never a deadlock
with a writer; no tenant table is touched. Re-running replaces the same
definitions. Reverse: tenants.0007's SQL functions and its users / organizations policies back
(frozen in _claim_functions_0007); the two new functions stay until tenants.0007's reverse
drops them with the others (nothing calls them then).
"""

from django.db import migrations

from tenants.migrations._claim_functions_0007 import account_policies_0007, claim_functions_0007
from tenants.roles import distinct_application_role
from tenants.verification import install_account_boundary, install_claim_functions


def _schema(connection) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_schema()")
        return cursor.fetchone()[0]


def forwards(apps, schema_editor):
    connection = schema_editor.connection
    install_claim_functions(connection)
    install_account_boundary(connection, distinct_application_role(connection))


def backwards(apps, schema_editor):
    connection = schema_editor.connection
    schema = _schema(connection)
    with connection.cursor() as cursor:
        for statement in [*claim_functions_0007(schema), *account_policies_0007(schema)]:
            cursor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [
        ("tenants", "0009_application_role_statistics"),
    ]

    operations = [
        migrations.RunPython(forwards, backwards, elidable=False),
    ]
