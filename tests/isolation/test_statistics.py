"""The application role cannot read the statistics views and functions that would show it
every organization's row totals and activity (tenants.0008), where the server allows the
revoke."""

import pytest
from django.db import DatabaseError, connection, transaction

from tenants.statistics import STATISTICS_PRIVILEGES_TABLE

pytestmark = pytest.mark.django_db

QUERIES = [
    "SELECT n_live_tup FROM pg_stat_user_tables WHERE relname = 'customers'",
    "SELECT n_tup_ins FROM pg_stat_all_tables WHERE relname = 'route_stops'",
    "SELECT n_tup_ins FROM pg_stat_xact_user_tables",
    "SELECT heap_blks_read FROM pg_statio_user_tables",
    "SELECT idx_scan FROM pg_stat_user_indexes",
    "SELECT idx_blks_read FROM pg_statio_user_indexes",
    "SELECT tup_inserted FROM pg_stat_database",
    "SELECT query FROM pg_stat_activity",
    "SELECT pg_stat_get_live_tuples('customers'::regclass)",
    "SELECT pg_stat_get_tuples_inserted('route_stops'::regclass)",
    "SELECT pg_stat_get_xact_tuples_inserted('route_stops'::regclass)",
    "SELECT pg_stat_get_backend_activity(s) FROM pg_stat_get_backend_idset() s",
]


@pytest.fixture
def revoked():
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [STATISTICS_PRIVILEGES_TABLE])
        if not cursor.fetchone()[0]:
            pytest.skip("this server does not let the owner revoke the statistics views")


@pytest.mark.parametrize("query", QUERIES)
def test_the_application_role_cannot_read_statistics(revoked, query):
    with (
        pytest.raises(DatabaseError, match="permission denied"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(query)


def test_the_record_of_the_revoke_is_the_owners_alone(revoked):
    with (
        pytest.raises(DatabaseError, match="permission denied"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(f"SELECT * FROM {STATISTICS_PRIVILEGES_TABLE}")
