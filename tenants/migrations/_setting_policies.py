"""tenants.0005's policies, frozen: they trusted two plain settings (`app.current_organization_id`
and `app.unscoped`). tenants.0007 replaces them with the verified claim's; its reverse puts these
back, so that tenants.0005's reverse finds what it created. Not a migration (the leading
underscore keeps Django's loader away)."""

from psycopg import sql

ORGANIZATION_POLICY = "organization_isolation"
GLOBAL_TEMPLATES_POLICY = "global_templates_readable"
GLOBAL_TEMPLATES_UNSCOPED_POLICY = "global_templates_unscoped"

_CURRENT = sql.SQL("NULLIF(current_setting('app.current_organization_id', true), '')::uuid")
_UNSCOPED = sql.SQL("current_setting('app.unscoped', true) = 'on'")
_VISIBLE = sql.SQL(
    "organization_id = ANY (CASE WHEN {unscoped} THEN ARRAY(SELECT id FROM organizations) "
    "ELSE ARRAY[{current}] END)"
).format(unscoped=_UNSCOPED, current=_CURRENT)
_WRITABLE = sql.SQL("organization_id = {current} OR {unscoped}").format(
    current=_CURRENT, unscoped=_UNSCOPED
)


def create_setting_policies(table: str, *, global_templates: bool) -> list[sql.Composed]:
    identifier = sql.Identifier(table)
    statements = [
        sql.SQL("CREATE POLICY {} ON {} USING ({}) WITH CHECK ({})").format(
            sql.Identifier(ORGANIZATION_POLICY), identifier, _VISIBLE, _WRITABLE
        )
    ]
    if global_templates:
        statements += [
            sql.SQL("CREATE POLICY {} ON {} FOR SELECT USING (organization_id IS NULL)").format(
                sql.Identifier(GLOBAL_TEMPLATES_POLICY), identifier
            ),
            sql.SQL("CREATE POLICY {} ON {} USING (organization_id IS NULL AND {})").format(
                sql.Identifier(GLOBAL_TEMPLATES_UNSCOPED_POLICY), identifier, _UNSCOPED
            ),
        ]
    return statements
