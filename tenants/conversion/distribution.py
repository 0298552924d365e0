"""Ready to distribute by organization (Citus): the keys among tenant tables without
organization_id.

A table distributed by organization_id can only enforce a primary key, a unique constraint or
index and a foreign key to another distributed table that include organization_id: each is
checked on one node. docs/scale-out.md says which tables are distributed and which are
reference tables (replicated to every node, where keys need no organization_id); this lists
what stands in the way, for tenancy_preflight and the tests.
"""

from __future__ import annotations

from dataclasses import dataclass

# Tenant tables replicated to every node instead of distributed (docs/scale-out.md): a
# service plan may be a global template with no organization at all, and a subscription's
# Stripe id is unique across organizations because the billing webhook finds the organization
# by it. A foreign key from a distributed table to a reference table needs no organization_id.
REFERENCE_TABLES = {
    "service_plans": "global templates have no organization_id; small, read everywhere",
    "organization_subscriptions": "stripe_subscription_id is unique across organizations "
    "(the webhook resolves the organization from it); one live row per organization",
}


@dataclass(frozen=True)
class KeyWithoutOrganization:
    table: str
    name: str
    kind: str  # "primary key", "unique constraint", "unique index", "foreign key"
    definition: str

    @property
    def accepted(self) -> str | None:
        """Why it may stay (its table is a reference table, or it references one), or None."""
        for table, why in REFERENCE_TABLES.items():
            if self.table == table:
                return f"{table} is a reference table: {why}"
            if self.kind == "foreign key" and f"REFERENCES {table}(" in self.definition:
                return f"references {table}, a reference table"
        return None

    def describe(self) -> str:
        accepted = self.accepted
        verdict = f"accepted: {accepted}" if accepted else "to change before distributing"
        return f"{self.table}: {self.kind} {self.name} {self.definition} ({verdict})"


KEYS = """
WITH tenant AS (
    SELECT c.oid, c.relname,
           (SELECT a.attnum FROM pg_attribute a
            WHERE a.attrelid = c.oid AND a.attname = 'organization_id' AND NOT a.attisdropped)
               AS organization_attnum
    FROM pg_class c
    WHERE c.relnamespace = current_schema()::regnamespace AND c.relname = ANY(%(tables)s)
)
SELECT t.relname, ic.relname,
       CASE WHEN i.indisprimary THEN 'primary key'
            WHEN con.oid IS NOT NULL THEN 'unique constraint'
            ELSE 'unique index' END,
       coalesce(pg_get_constraintdef(con.oid), pg_get_indexdef(i.indexrelid))
FROM tenant t
JOIN pg_index i ON i.indrelid = t.oid AND i.indisunique
JOIN pg_class ic ON ic.oid = i.indexrelid
LEFT JOIN pg_constraint con ON con.conindid = i.indexrelid AND con.contype IN ('p', 'u')
WHERE t.organization_attnum IS NULL OR NOT t.organization_attnum = ANY(i.indkey::int2[])
UNION ALL
SELECT t.relname, con.conname, 'foreign key', pg_get_constraintdef(con.oid)
FROM tenant t
JOIN pg_constraint con ON con.conrelid = t.oid AND con.contype = 'f'
WHERE con.confrelid IN (SELECT oid FROM tenant)
  AND (t.organization_attnum IS NULL OR NOT t.organization_attnum = ANY(con.conkey))
ORDER BY 1, 3, 2
"""


def keys_without_organization(cursor, tables=None) -> list[KeyWithoutOrganization]:
    """Every primary key, unique constraint or index, and foreign key between tenant tables
    that lacks organization_id, in `tables` (default: the tenant tables)."""
    if tables is None:
        from tenants.conversion.validation import TENANT_TABLES

        tables = TENANT_TABLES
    cursor.execute(KEYS, {"tables": list(tables)})
    return [KeyWithoutOrganization(*row) for row in cursor.fetchall()]
