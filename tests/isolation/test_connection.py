"""The organization on the connection, across real transaction boundaries: committed data,
autocommit queries, and a connection reused by the next request (as a pooled one is)."""

import psycopg
import pytest
from django.db import IntegrityError, connection, transaction
from psycopg.pq import TransactionStatus

from routing.models import Customer
from tenants.claims import platform_access
from tenants.context import organization_context
from tests.factories import CustomerFactory, OrganizationFactory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def two_organizations():
    acme, blue = OrganizationFactory(slug="acme"), OrganizationFactory(slug="blue")
    for _ in range(3):
        CustomerFactory(organization=acme)
    CustomerFactory(organization=blue)
    return acme, blue


def customers_seen() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM customers")
        return cursor.fetchone()[0]


def bare(query: str):
    """Run `query` on the same PostgreSQL session, around Django and its wrapper: what the
    session itself holds, as the next user of a pooled connection would find it."""
    return connection.connection.execute(query).fetchone()[0]


def test_autocommit_queries_run_in_a_short_transaction_of_their_own(two_organizations):
    acme, blue = two_organizations
    assert connection.get_autocommit()

    with organization_context(acme):
        assert customers_seen() == 3
        assert Customer.objects.count() == 3
        assert connection.connection.info.transaction_status == TransactionStatus.IDLE
    with organization_context(blue):
        assert customers_seen() == 1
    with platform_access(False):
        assert customers_seen() == 0


def test_nothing_is_left_on_the_session_for_the_next_user(two_organizations):
    acme, _ = two_organizations
    with transaction.atomic(), organization_context(acme):  # a request, ATOMIC_REQUESTS
        assert customers_seen() == 3
    with organization_context(acme):  # an autocommit query
        assert customers_seen() == 3

    assert bare("SELECT coalesce(current_setting('app.tenancy_claim', true), '')") == ""
    assert bare("SELECT count(*) FROM customers") == 0


def test_a_failed_autocommit_query_leaves_the_connection_usable(two_organizations):
    acme, _ = two_organizations
    with organization_context(acme):
        with pytest.raises(IntegrityError):
            Customer.objects.create(
                display_name="x",
                address="1 Elm St",
                service_type="residential",
                difficulty=1,
                service_day="friday",
                assigned_driver_id="00000000-0000-4000-8000-000000000000",
            )
        assert connection.connection.info.transaction_status == TransactionStatus.IDLE
        assert customers_seen() == 3


def test_committed_writes_land_in_the_current_organization(two_organizations):
    acme, _ = two_organizations
    with organization_context(acme):
        created = Customer.objects.create(
            display_name="Committed",
            address="1 Elm St",
            service_type="residential",
            difficulty=1,
            service_day="friday",
        )
    assert Customer.unscoped.get(pk=created.pk).organization_id == acme.pk


def test_iterating_with_a_server_side_cursor_stays_in_the_organization(two_organizations):
    acme, blue = two_organizations
    with organization_context(blue):
        assert [c.organization_id for c in Customer.objects.iterator(chunk_size=1)] == [blue.pk]
    with transaction.atomic(), organization_context(acme):
        assert len(list(Customer.objects.iterator(chunk_size=2))) == 3


def test_set_transaction_still_opens_its_transaction(two_organizations):
    acme, _ = two_organizations
    with transaction.atomic(), organization_context(acme):
        with connection.cursor() as cursor:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        assert customers_seen() == 3


def test_an_autocommit_write_with_a_trailing_comment_is_committed(two_organizations):
    acme, _ = two_organizations
    customer = Customer.unscoped.filter(organization=acme).first()
    with organization_context(acme), connection.cursor() as cursor:
        cursor.execute(
            "UPDATE customers SET notes = 'kept' WHERE id = %s -- a comment at the end",
            [customer.pk],
        )
        assert connection.connection.info.transaction_status == TransactionStatus.IDLE
    assert Customer.unscoped.get(pk=customer.pk).notes == "kept"


@pytest.fixture
def claim_traffic(monkeypatch):
    """How the wrapper's own statements travel: the claim in the message of the query it
    precedes, or alone; the transaction's start read by a statement of its own (normally the
    BEGIN that opens the transaction reads it)."""
    sent = []
    execute = psycopg.Cursor.execute

    def recording(self, query, params=None, **kwargs):
        if isinstance(query, str) and query.startswith("SELECT set_config('app.tenancy_claim'"):
            alone = query == "SELECT set_config('app.tenancy_claim', %s, true)"
            sent.append("claim alone" if alone else "claim with the query")
        elif isinstance(query, str) and "transaction_timestamp()" in query:
            sent.append("transaction start")
        return execute(self, query, params, **kwargs)

    monkeypatch.setattr(psycopg.Cursor, "execute", recording)
    return sent


def test_the_claim_adds_no_round_trip_of_its_own(two_organizations, claim_traffic):
    acme, blue = two_organizations
    with transaction.atomic():  # a request, ATOMIC_REQUESTS
        with organization_context(acme):
            assert customers_seen() == 3
            assert Customer.objects.count() == 3
        with organization_context(blue):  # a claim that changes within the transaction
            assert customers_seen() == 1
    with organization_context(acme):  # autocommit: a short transaction of its own
        assert customers_seen() == 3
        assert connection.connection.info.transaction_status == TransactionStatus.IDLE
    assert claim_traffic == ["claim with the query"] * 3


def test_queries_that_cannot_share_a_message_get_the_claim_first(two_organizations, claim_traffic):
    acme, blue = two_organizations
    with transaction.atomic(), organization_context(blue):
        assert len(list(Customer.objects.iterator(chunk_size=1))) == 1  # a server-side cursor
    with transaction.atomic(), organization_context(acme), connection.cursor() as cursor:
        cursor.executemany("UPDATE customers SET notes = %s WHERE notes IS NULL", [["a"], ["b"]])
        cursor.execute("SELECT count(*) FROM customers WHERE notes = 'a'")
        assert cursor.fetchone()[0] == 3
    # SET TRANSACTION must come first: that transaction's start is asked for separately.
    with transaction.atomic(), organization_context(acme):
        with connection.cursor() as cursor:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        assert customers_seen() == 3
    assert claim_traffic == [
        "claim alone",
        "claim alone",
        "transaction start",
        "claim with the query",
    ]
    assert Customer.unscoped.filter(organization=blue, notes="a").count() == 0


def test_a_claim_rolled_back_with_its_savepoint_is_sent_again(two_organizations, claim_traffic):
    acme, _ = two_organizations
    with platform_access(False), transaction.atomic():
        # The claim is set inside the savepoint; the INSERT's error rolls both back.
        with pytest.raises(IntegrityError), transaction.atomic(), organization_context(acme):
            Customer.objects.create(
                display_name="x",
                address="1 Elm St",
                service_type="residential",
                difficulty=1,
                service_day="friday",
                assigned_driver_id="00000000-0000-4000-8000-000000000000",
            )
        with organization_context(acme):
            assert customers_seen() == 3
    assert claim_traffic == ["claim with the query", "claim with the query"]


def test_the_begin_that_reads_the_start_keeps_the_connections_isolation_level(
    two_organizations,
):
    acme, _ = two_organizations
    connection.ensure_connection()
    raw = connection.connection
    raw.isolation_level = psycopg.IsolationLevel.SERIALIZABLE
    try:
        with transaction.atomic(), organization_context(acme):
            assert customers_seen() == 3
            with connection.cursor() as cursor:
                cursor.execute("SHOW transaction_isolation")
                assert cursor.fetchone()[0] == "serializable"
    finally:
        raw.isolation_level = None
