"""PostgreSQL: the application role is bound by row level security on every tenant table, so raw
SQL on the application's connection sees the current organization's rows and no other."""

import pytest
from django.db import DatabaseError, connection, transaction
from psycopg import sql

from routing.models import Customer
from tenants.claims import platform_access
from tenants.context import organization_context
from tenants.rls import (
    GLOBAL_TEMPLATES_PLATFORM_POLICY,
    GLOBAL_TEMPLATES_POLICY,
    ORGANIZATION_POLICY,
    row_level_security_status,
    tenant_tables,
)
from tests.isolation.conftest import TENANT_MODELS

pytestmark = pytest.mark.django_db

TABLES = [model._meta.db_table for model in TENANT_MODELS]


def raw(query, params=None):
    with connection.cursor() as cursor:
        cursor.execute(query, params)
        return cursor.fetchall()


def organizations_in(table: str) -> list:
    return raw(
        sql.SQL("SELECT DISTINCT organization_id FROM {} ORDER BY 1").format(sql.Identifier(table))
    )


def count(table: str) -> int:
    return raw(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table)))[0][0]


def test_the_suite_runs_as_an_application_role_that_row_level_security_binds():
    (user, superuser, bypassrls, owned) = raw(
        "SELECT current_user, rolsuper, rolbypassrls, "
        "(SELECT count(*) FROM pg_class WHERE relowner = pg_roles.oid) "
        "FROM pg_roles WHERE rolname = current_user"
    )[0]
    assert not superuser, user
    assert not bypassrls, user
    assert owned == 0, f"{user} owns {owned} relations"


def test_every_tenant_table_has_row_level_security_enabled_with_its_policies():
    assert sorted(tenant_tables()) == sorted(TABLES)
    status = row_level_security_status(connection)

    assert [row["table"] for row in status] == sorted(TABLES)
    for row in status:
        assert row["exists"] and row["enabled"], row
        assert not row["forced"], "FORCE waits for contract_tenancy"
        expected = {ORGANIZATION_POLICY}
        if row["table"] == "service_plans":
            expected |= {GLOBAL_TEMPLATES_POLICY, GLOBAL_TEMPLATES_PLATFORM_POLICY}
        assert set(row["policies"]) == expected, row


@pytest.mark.parametrize("table", TABLES)
def test_raw_sql_sees_only_the_current_organizations_rows(table, acme, blue):
    for seeded in (acme, blue):
        model = next(m for m in TENANT_MODELS if m._meta.db_table == table)
        with organization_context(seeded.organization):
            assert organizations_in(table) == [(seeded.organization.pk,)]
            assert count(table) == len(seeded.rows[model])


@pytest.mark.parametrize("table", TABLES)
def test_raw_sql_sees_nothing_without_an_organization(table, acme, blue):
    with platform_access(False):
        assert count(table) == 0
        assert organizations_in(table) == []


def test_raw_sql_cannot_read_the_other_organizations_row_by_id(acme, blue):
    theirs = blue.rows[Customer][0].pk
    with organization_context(acme.organization):
        assert raw("SELECT id FROM customers WHERE id = %s", [theirs]) == []
        assert raw("UPDATE customers SET notes = 'x' WHERE id = %s RETURNING id", [theirs]) == []
        assert raw("DELETE FROM customers WHERE id = %s RETURNING id", [theirs]) == []
    with organization_context(blue.organization):
        assert raw("SELECT notes FROM customers WHERE id = %s", [theirs]) == [(None,)]


def test_raw_sql_cannot_write_into_another_organization(acme, blue):
    with organization_context(acme.organization):
        with pytest.raises(DatabaseError, match="row-level security"), transaction.atomic():
            raw(
                "UPDATE customers SET organization_id = %s WHERE id = %s",
                [blue.organization.pk, acme.rows[Customer][0].pk],
            )
        with pytest.raises(DatabaseError, match="row-level security"), transaction.atomic():
            raw(
                "INSERT INTO usage_tracking (id, organization_id, metric, quantity) "
                "VALUES (gen_random_uuid(), %s, 'api_calls', 1)",
                [blue.organization.pk],
            )


def test_the_organization_setting_does_not_outlive_its_transaction(acme):
    with transaction.atomic(), organization_context(acme.organization):
        assert count("customers") == 3
    # The same connection, a new transaction: nothing carried over.
    with platform_access(False):
        assert raw("SELECT current_setting('app.tenancy_claim', true)") in ([("",)], [(None,)])
        assert count("customers") == 0


def test_a_rolled_back_savepoint_does_not_lose_the_organization(acme):
    with transaction.atomic(), organization_context(acme.organization):
        try:
            with transaction.atomic():
                assert count("customers") == 3  # the first query: sent inside the savepoint
                raise RuntimeError("roll the savepoint back")
        except RuntimeError:
            pass
        assert count("customers") == 3


def test_switching_organization_inside_a_transaction_switches_the_setting(acme, blue):
    with transaction.atomic():
        with organization_context(acme.organization):
            assert count("customers") == 3
        with organization_context(blue.organization):
            assert count("customers") == 2
        with platform_access(False):
            assert count("customers") == 0


def test_unscoped_crosses_organizations_only_where_the_platform_is_authorized(acme, blue):
    # The suite's setup code is the platform (tests/conftest.py): `unscoped` crosses there, for
    # its own queries only.
    with organization_context(acme.organization):
        assert Customer.unscoped.count() == 5
        assert count("customers") == 3
    # A request is not: `unscoped` lifts the ORM's filter, PostgreSQL keeps the claim's.
    with platform_access(False):
        with organization_context(acme.organization):
            assert Customer.unscoped.count() == 3
        assert Customer.unscoped.count() == 0
        assert count("customers") == 0


def test_the_settings_cost_no_extra_query_in_django(acme):
    from django.test.utils import CaptureQueriesContext

    with organization_context(acme.organization), CaptureQueriesContext(connection) as queries:
        list(Customer.objects.all())
        Customer.objects.count()
    assert len(queries) == 2


@pytest.mark.parametrize("table", TABLES)
def test_the_policies_leave_the_organization_index_usable(table, acme):
    # Permissive policies are ORed: a bypass written as a policy of its own would make every
    # query on the table a sequential scan. With sequential scans priced out, the plan shows
    # whether an index can serve the organization condition at all.
    with transaction.atomic(), organization_context(acme.organization):
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL enable_seqscan = off")
        plan = "\n".join(
            row[0] for row in raw(sql.SQL("EXPLAIN SELECT * FROM {}").format(sql.Identifier(table)))
        )
    assert "Seq Scan" not in plan, plan
    assert "organization_id" in plan, plan
