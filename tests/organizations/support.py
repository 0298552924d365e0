"""Helpers of the organization conversion tests: what a database holds, to prove no change."""

from psycopg import sql

from routing.legacy import LEGACY_TABLES


def tables_with_organization(db) -> list[str]:
    return [
        name
        for (name,) in db.sql(
            "SELECT c.relname FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid "
            "WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'r' "
            "AND a.attname = 'organization_id' AND NOT a.attisdropped ORDER BY 1"
        )
    ]


def organization_id(db, slug: str):
    return db.value("SELECT id FROM organizations WHERE slug = %s", [slug])


def organization_state(db, slug: str) -> dict[str, tuple]:
    """Per table with organization_id: count and checksum of the organization's whole rows."""
    organization = organization_id(db, slug)
    state = {}
    for table in tables_with_organization(db):
        state[table] = db.sql(
            sql.SQL(
                "SELECT count(*), coalesce(sum(hashtextextended(t::text, 0)), 0) FROM {} t "
                "WHERE organization_id = %s"
            ).format(sql.Identifier(table)),
            [organization],
        )[0]
    state["organizations"] = db.sql(
        "SELECT count(*), coalesce(sum(hashtextextended(o::text, 0)), 0) FROM organizations o "
        "WHERE id = %s",
        [organization],
    )[0]
    return state


def whole_state(db) -> dict[str, tuple]:
    """Count and checksum of every table of the public schema (nothing written anywhere)."""
    state = {}
    for (table,) in db.sql(
        "SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace "
        "AND relkind = 'r' ORDER BY 1"
    ):
        state[table] = db.sql(
            sql.SQL(
                "SELECT count(*), coalesce(sum(hashtextextended(t::text, 0)), 0) FROM {} t"
            ).format(sql.Identifier(table))
        )[0]
    return state


def legacy_digests(db) -> dict[str, set[tuple]]:
    """Every legacy table's (id, digest of the whole row) pairs: equal sets, equal contents."""
    return {
        table: set(
            db.sql(
                sql.SQL("SELECT t.id, hashtextextended(t::text, 0) FROM {} t").format(
                    sql.Identifier(table)
                )
            )
        )
        for table in LEGACY_TABLES
    }


def import_args(source, slug="acme", email="owner@acme.test", *extra) -> list[str]:
    return [
        "import_organization",
        "--from",
        source.url,
        "--slug",
        slug,
        "--name",
        slug.title(),
        "--owner-email",
        email,
        *extra,
    ]
