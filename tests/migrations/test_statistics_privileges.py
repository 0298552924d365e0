"""tenants.0008 on a scratch database: the statistics objects lose PUBLIC here only, the
owner's side keeps them, and the reverse restores exactly what was there."""

import psycopg
import pytest
from django.conf import settings

from tenants.roles import APPLICATION
from tenants.statistics import (
    STATISTICS_PRIVILEGES_TABLE,
    may_revoke_statistics,
    revoke_statistics_from_public,
)

pytestmark = pytest.mark.cli

ACLS = """
SELECT 'view ' || relname, relacl::text,
       (SELECT array_agg(format('%s:%s', grantee, privilege_type) ORDER BY grantee, privilege_type)
        FROM aclexplode(coalesce(relacl, acldefault('r', relowner))))
FROM pg_class WHERE relnamespace = 'pg_catalog'::regnamespace
  AND (relname LIKE 'pg\\_stat%' OR relname LIKE 'pg\\_statio%')
UNION ALL
SELECT 'function ' || oid::regprocedure::text, NULL,
       (SELECT array_agg(format('%s:%s', grantee, privilege_type) ORDER BY grantee, privilege_type)
        FROM aclexplode(coalesce(proacl, acldefault('f', proowner))))
FROM pg_proc WHERE proname LIKE 'pg\\_stat\\_get\\_%'
ORDER BY 1
"""


def application_role() -> str:
    return settings.DATABASE_ROLES[APPLICATION]["USER"]


def reads(db, role: str, view: str = "pg_catalog.pg_stat_user_tables") -> bool:
    return db.value("SELECT has_table_privilege(%s, %s, 'SELECT')", [role, view])


def test_revoked_here_only_and_restored_exactly(legacy_db):
    if not legacy_db.value("SELECT rolsuper FROM pg_roles WHERE rolname = current_user"):
        pytest.skip("the test server's owner is not a superuser")
    before = legacy_db.sql(ACLS)

    legacy_db.manage("migrate")

    assert not reads(legacy_db, application_role())
    assert not legacy_db.value(
        "SELECT has_function_privilege(%s, 'pg_catalog.pg_stat_get_live_tuples(oid)', 'EXECUTE')",
        [application_role()],
    )
    assert reads(legacy_db, "pg_read_all_stats"), "monitoring keeps its view"
    with legacy_db._maintenance() as other_database:
        assert other_database.execute(
            "SELECT has_table_privilege('public', 'pg_catalog.pg_stat_user_tables', 'SELECT')"
        ).fetchone()[0], "another database of the server is untouched"

    legacy_db.manage("migrate", "tenants", "0006_application_role_privileges")

    assert legacy_db.sql(ACLS) == [
        (name, acl if name.startswith("view ") else None, effective)
        for name, acl, effective in before
    ]
    assert legacy_db.value("SELECT to_regclass(%s)", [STATISTICS_PRIVILEGES_TABLE]) is None


def test_a_role_that_may_not_revoke_skips_with_one_notice(legacy_db):
    url = legacy_db.url.replace(
        legacy_db.server_settings["USER"] + "@", f"{application_role()}@", 1
    )
    notices = []
    with psycopg.connect(url, autocommit=True) as connection:
        with connection.cursor() as cursor:
            assert not may_revoke_statistics(cursor)
        assert not revoke_statistics_from_public(connection, report=notices.append)

    assert len(notices) == 1
    assert "may not revoke PUBLIC's access to pg_stat_*" in notices[0]
    assert reads(legacy_db, application_role()), "nothing changed"
