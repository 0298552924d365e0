"""Organization slugs and subdomains unique whatever their case (issue 9).

Organizations are resolved case-insensitively (`acme.<domain>`, `X-Organization: ACME`), while
the plan's idx_orgs_slug / idx_orgs_subdomain compare case-sensitively: renaming one
organization's slug to `GLOBEX` took over `globex`. This adds expression unique indexes on
lower(slug) and lower(subdomain); the application writes both in lower case from now on
(Organization.save).

1. Existing slugs and subdomains are checked for values equal but for case; if any exist the
   migration stops before changing anything and names them (rename one of each pair, then run
   migrate again). Then those not in lower case are lowered: an UPDATE of those few rows of
   organizations (ROW EXCLUSIVE on the table, row locks on the rows it changes, milliseconds;
   organizations is small and the legacy application does not use it).
2. idx_orgs_slug_lower and idx_orgs_subdomain_lower are built with CREATE UNIQUE INDEX
   CONCURRENTLY: the strongest lock is SHARE UPDATE EXCLUSIVE on organizations, held for the
   build (one scan of the table); reads and writes go on, only DDL and VACUUM on organizations
   wait. atomic = False, since CONCURRENTLY cannot run inside a transaction; an interrupted
   build leaves an invalid index that the next run drops and builds again.

Reverse: DROP INDEX CONCURRENTLY both (SHARE UPDATE EXCLUSIVE); the lowered values stay lower
case (the original case is not kept, and resolution never depended on it).
"""

from django.db import migrations, models
from django.db.models.functions import Lower

from tenants.conversion.operations import CreateIndexConcurrently


def lower_slugs_and_subdomains(apps, schema_editor):
    with schema_editor.connection.cursor() as cursor:
        for column in ("slug", "subdomain"):
            cursor.execute(
                f"SELECT lower({column}), string_agg({column}, ', ' ORDER BY {column}) "
                f"FROM organizations WHERE {column} IS NOT NULL "
                f"GROUP BY lower({column}) HAVING count(*) > 1"
            )
            clashes = cursor.fetchall()
            if clashes:
                named = "; ".join(values for _, values in clashes)
                raise RuntimeError(
                    f"organizations whose {column} differs only in case: {named}; rename one "
                    f"of each (python manage.py shell or the admin as a superuser) and run "
                    f"migrate again"
                )
        cursor.execute(
            "UPDATE organizations SET slug = lower(slug), subdomain = lower(subdomain) "
            "WHERE slug <> lower(slug) OR subdomain <> lower(subdomain)"
        )


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("tenants", "0007_verified_organization"),
    ]

    operations = [
        migrations.RunPython(
            lower_slugs_and_subdomains, migrations.RunPython.noop, elidable=False
        ),
        migrations.SeparateDatabaseAndState(
            database_operations=[
                CreateIndexConcurrently(
                    "organizations", "idx_orgs_slug_lower", "(lower(slug))", unique=True
                ),
                CreateIndexConcurrently(
                    "organizations", "idx_orgs_subdomain_lower", "(lower(subdomain))", unique=True
                ),
            ],
            state_operations=[
                migrations.AddConstraint(
                    model_name="organization",
                    constraint=models.UniqueConstraint(Lower("slug"), name="idx_orgs_slug_lower"),
                ),
                migrations.AddConstraint(
                    model_name="organization",
                    constraint=models.UniqueConstraint(
                        Lower("subdomain"), name="idx_orgs_subdomain_lower"
                    ),
                ),
            ],
        ),
    ]
