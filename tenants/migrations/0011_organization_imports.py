"""Issue 11 (ours): the bookkeeping of import_organization.

- tenancy_imports: one row per imported organization, written in the import's own transaction
  (an import that is not committed has none): where it came from, whether the source had the
  billing columns, its Alembic revision, and the proof (per legacy table the source's row count
  and checksum, and the billing values' digest), which validate_tenancy --organization and
  export_organization read.
- tenancy_import_id_map: the rows whose source id clashed and got a new one (--remap-ids):
  organization, table, source id, imported id.

Both are the owner's only (maintenance tables, like the pre-migration snapshot): the
application role's default privileges on new tables (tenants.0006) are revoked here. No
foreign key to organizations, on purpose: adding one would lock organizations (SHARE ROW
EXCLUSIVE); remove_organization deletes their rows with the organization's.

Locks: none on any existing table (two new tables, a REVOKE on them).
"""

from django.db import migrations

from tenants.roles import application_role_name

CREATE = """
CREATE TABLE IF NOT EXISTS tenancy_imports (
    organization_id uuid PRIMARY KEY,
    source text NOT NULL,
    had_billing_columns boolean NOT NULL,
    alembic_revision text,
    proof jsonb NOT NULL,
    report jsonb NOT NULL,
    started_at timestamptz NOT NULL,
    finished_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS tenancy_import_id_map (
    organization_id uuid NOT NULL,
    table_name text NOT NULL,
    source_id uuid NOT NULL,
    imported_id uuid NOT NULL,
    PRIMARY KEY (organization_id, table_name, imported_id),
    UNIQUE (organization_id, table_name, source_id)
);
COMMENT ON TABLE tenancy_imports IS
    'One row per organization import_organization created: its source and proof (issue 11).';
COMMENT ON TABLE tenancy_import_id_map IS
    'Ids import_organization --remap-ids replaced: source id -> imported id, per table.';
"""
DROP = "DROP TABLE IF EXISTS tenancy_import_id_map; DROP TABLE IF EXISTS tenancy_imports;"


def restrict(apps, schema_editor):
    connection = schema_editor.connection
    role = application_role_name()
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_user, EXISTS (SELECT 1 FROM pg_roles WHERE rolname = %s)",
                       [role])
        current, exists = cursor.fetchone()
        if exists and role != current:
            cursor.execute(
                f'REVOKE ALL ON tenancy_imports, tenancy_import_id_map FROM "{role}"'
            )


class Migration(migrations.Migration):
    dependencies = [
        ("tenants", "0010_claim_functions_plpgsql"),
    ]

    operations = [
        migrations.RunSQL(CREATE, DROP, elidable=False),
        migrations.RunPython(restrict, migrations.RunPython.noop, elidable=False),
    ]
