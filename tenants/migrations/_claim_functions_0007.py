"""tenants.0007's policy functions, frozen: SQL functions, which PostgreSQL plans again on every
statement, the platform check verifying the claim a second time. tenants.0010 replaces them with
PL/pgSQL ones (tenants.verification); its reverse puts these back. Not a migration (the leading
underscore keeps Django's loader away)."""

from psycopg import sql

_DEFINER = "SECURITY DEFINER PARALLEL RESTRICTED SET search_path = pg_catalog, pg_temp"

CLAIM_FUNCTIONS_0007 = [
    """
    CREATE OR REPLACE FUNCTION {s}.tenancy_session_owns_tables() RETURNS boolean
    LANGUAGE sql STABLE """
    + _DEFINER
    + """ AS $fn$
        SELECT pg_has_role(session_user,
                           (SELECT relowner FROM pg_class WHERE oid = {organizations}::regclass),
                           'USAGE')
    $fn$
    """,
    """
    CREATE OR REPLACE FUNCTION {s}.tenancy_is_platform() RETURNS boolean
    LANGUAGE sql STABLE """
    + _DEFINER
    + """ AS $fn$
        SELECT coalesce((SELECT (c).platform FROM (SELECT {s}.tenancy_claim() AS c) v), false)
            OR (coalesce(current_setting('app.unscoped', true), '') = 'on'
                AND {s}.tenancy_session_owns_tables())
    $fn$
    """,
    """
    CREATE OR REPLACE FUNCTION {s}.tenancy_organizations() RETURNS uuid[]
    LANGUAGE sql STABLE """
    + _DEFINER
    + """ AS $fn$
        SELECT CASE WHEN {s}.tenancy_is_platform() THEN ARRAY(SELECT id FROM {s}.organizations)
                    ELSE coalesce(({s}.tenancy_claim()).organization_ids, '{{}}') END
    $fn$
    """,
    """
    CREATE OR REPLACE FUNCTION {s}.tenancy_user_id() RETURNS uuid
    LANGUAGE sql STABLE """
    + _DEFINER
    + """ AS $fn$ SELECT ({s}.tenancy_claim()).user_id $fn$
    """,
    """
    CREATE OR REPLACE FUNCTION {s}.tenancy_current_organization() RETURNS uuid
    LANGUAGE sql STABLE """
    + _DEFINER
    + """ AS $fn$
        SELECT CASE WHEN cardinality(ids) = 1 THEN ids[1] END
        FROM (SELECT ({s}.tenancy_claim()).organization_ids AS ids) v
    $fn$
    """,
]


def claim_functions_0007(schema: str) -> list[sql.Composed]:
    return [
        sql.SQL(template).format(
            s=sql.Identifier(schema), organizations=sql.Literal(f'"{schema}".organizations')
        )
        for template in CLAIM_FUNCTIONS_0007
    ]


# tenants.0007's policies on users and organizations, which read organization_users in
# subqueries (tenants.0010 reads the same sets through tenancy_member_ids() and
# tenancy_own_organization_ids()).
_ORGS = "((SELECT {s}.tenancy_organizations())::uuid[])"
_USER = "(SELECT {s}.tenancy_user_id())"
_PLATFORM = "(SELECT {s}.tenancy_is_platform())"
_MEMBER_OF_CLAIM = (
    f"id IN (SELECT m.user_id FROM {{s}}.organization_users m "
    f"WHERE m.organization_id = ANY {_ORGS})"
)
_OWN_MEMBERSHIP = (
    f"id IN (SELECT m.organization_id FROM {{s}}.organization_users m WHERE m.user_id = {_USER})"
)
_VISIBLE_USER = f"id = {_USER} OR {_PLATFORM} OR {_MEMBER_OF_CLAIM}"

ACCOUNT_POLICIES_0007 = [
    "DROP POLICY IF EXISTS account_visible ON {s}.users",
    f"CREATE POLICY account_visible ON {{s}}.users FOR SELECT USING ({_VISIBLE_USER})",
    "DROP POLICY IF EXISTS account_update ON {s}.users",
    f"CREATE POLICY account_update ON {{s}}.users FOR UPDATE USING ({_VISIBLE_USER}) "
    "WITH CHECK (true)",
    "DROP POLICY IF EXISTS account_delete ON {s}.users",
    f"CREATE POLICY account_delete ON {{s}}.users FOR DELETE USING ({_VISIBLE_USER})",
    "DROP POLICY IF EXISTS organization_visible ON {s}.organizations",
    f"CREATE POLICY organization_visible ON {{s}}.organizations FOR SELECT "
    f"USING (id = ANY {_ORGS} OR {_OWN_MEMBERSHIP})",
]


def account_policies_0007(schema: str) -> list[sql.Composed]:
    return [sql.SQL(t).format(s=sql.Identifier(schema)) for t in ACCOUNT_POLICIES_0007]
