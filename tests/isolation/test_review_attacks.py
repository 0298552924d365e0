"""An independent review's attacks on the claim transport, the PL/pgSQL policy functions and
billing (issue 12): one SQL injection on the application connection inside a request's
transaction (organization A's owner), a member or owner of another organization, an anonymous
caller.

Tests whose docstring says "Was a hole (fixed)" reproduced a real problem before its fix
(billing.0011's platform-only billing records and usage purge, the webhook's and the usage API's
input parsing, tokens for closed organizations, the journal's sequence); the others were refused
from the start and stay as regression tests.
"""

from __future__ import annotations

import json
import time

import pytest
from django.conf import settings
from django.db import connection
from django.test import Client
from rest_framework.test import APIClient

from accounts.services import api_token_issue
from billing.models import BillingWebhookEvent, UsageRecord
from billing.webhooks import sign as stripe_sign
from tenants.claims import EVERYWHERE, platform_access
from tenants.context import organization_context
from tenants.models import Organization, Role
from tests.isolation.test_hostile_sql import as_request, attempt, rows
from tests.tenancy_data import PASSWORD, seed_organization

pytestmark = pytest.mark.django_db

WEBHOOK = "/api/v1/billing/webhook"
CUSTOMER_A = "cus_review_a"


# --- fixtures and helpers --------------------------------------------------------------------


@pytest.fixture
def org_a(db):
    data = seed_organization("reva", "Review A")
    set_columns(data.organization, stripe_customer_id=CUSTOMER_A, subscription_status="active")
    return data


@pytest.fixture
def org_b(db):
    return seed_organization("revb", "Review B")


def set_columns(organization, **columns):
    with organization_context(None), platform_access():
        Organization.objects.filter(pk=organization.pk).update(**columns)
        return Organization.objects.get(pk=organization.pk)


def fresh(organization):
    with organization_context(None), platform_access():
        return Organization.objects.get(pk=organization.pk)


def api_client(data, role=Role.OWNER, **kwargs):
    token, _ = api_token_issue(user=data.members[role], organization=data.organization)
    client = APIClient(**kwargs)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def stripe_post(body, *, header=None, client=None):
    payload = json.dumps(body).encode()
    signature = header or stripe_sign(
        payload, settings.ROUTEOPTIMIZER_STRIPE_WEBHOOK_SECRET, int(time.time())
    )
    client = client or Client(raise_request_exception=False)
    return client.post(
        WEBHOOK, payload, content_type="application/json", HTTP_STRIPE_SIGNATURE=signature
    )


def invoice_event(kind="invoice.payment_failed", event_id="evt_review_1"):
    return {
        "id": event_id,
        "object": "event",
        "type": kind,
        "created": int(time.time()),
        "data": {
            "object": {
                "id": "in_review",
                "object": "invoice",
                "customer": CUSTOMER_A,
                "subscription": "sub_review_a",
            }
        },
    }


# === 1. The claim in the query's message =========================================================


@pytest.mark.django_db(transaction=True)
def test_claim_replayed_after_commit_begin_in_the_same_message_does_not_verify(org_a, org_b):
    """Held: the injection ends Django's transaction and opens its own in the same simple-query
    message, then sets the claim it read. transaction_timestamp() of a transaction begun inside
    that message is the message's start, not the claimed one: nothing is seen afterwards (and
    Django, believing its claim carried, sends none)."""
    owner = org_a.members[Role.OWNER]
    with as_request(org_a.organization, owner):
        claim = rows("SELECT current_setting('app.tenancy_claim', true)")[0][0]
        assert claim
        assert rows("SELECT count(*) FROM customers")[0][0] > 0
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT 1; COMMIT; BEGIN; SELECT set_config('app.tenancy_claim', '{claim}', true)"
            )
        assert rows("SELECT current_setting('app.tenancy_claim', true)")[0][0] == claim
        seen = rows(
            "SELECT (SELECT count(*) FROM customers), (SELECT tenancy_organizations()), "
            "(SELECT count(*) FROM users)"
        )[0]
        assert seen == (0, [], 0)


def test_claim_kept_for_the_session_does_not_carry_into_the_next_transaction(org_a, org_b):
    """Held: a session-level copy of the claim (is_local false) verifies in no later
    transaction of the same pooled connection."""
    owner = org_a.members[Role.OWNER]
    with as_request(org_a.organization, owner):
        rows(
            "SELECT set_config('app.tenancy_claim', "
            "current_setting('app.tenancy_claim', true), false)"
        )
    with as_request(None, None):
        assert rows("SELECT count(*) FROM customers")[0][0] == 0
        assert rows("SELECT tenancy_organizations()")[0][0] == []
        assert rows("SELECT count(*) FROM users")[0][0] == 0
    rows("RESET app.tenancy_claim")


@pytest.mark.parametrize(
    "tail",
    ["'", "/*", "-- ", "; SELECT set_config('app.tenancy_claim', 'x', false)", "\\"],
    ids=["open quote", "open comment", "line comment", "trailing statement", "backslash"],
)
def test_query_ending_badly_cannot_swallow_or_outlive_the_claim(org_a, org_b, tail):
    """Held: whatever the injected query ends with, it runs after the claim in the message, and
    the autocommit path's COMMIT is on its own line; B stays invisible."""
    owner = org_a.members[Role.OWNER]
    with as_request(org_a.organization, owner):
        attempt(f"SELECT count(*) FROM customers {tail}")
        seen = rows(
            "SELECT count(*) FROM customers WHERE organization_id = %s",
            [org_b.organization.pk],
        )
        assert seen[0][0] == 0


def test_claim_literal_cannot_be_broken_by_standard_conforming_strings_off(org_a, org_b):
    """Held: with standard_conforming_strings off for the session (an injection can set it),
    the next transactions' claims still quote correctly and still verify."""
    owner = org_a.members[Role.OWNER]
    with as_request(org_a.organization, owner):
        rows("SET standard_conforming_strings = off")
    try:
        with as_request(org_a.organization, owner):
            assert rows("SELECT tenancy_current_organization()")[0][0] == org_a.organization.pk
            seen = rows(
                "SELECT count(*) FROM customers WHERE organization_id = %s",
                [org_b.organization.pk],
            )
            assert seen[0][0] == 0
    finally:
        rows("RESET standard_conforming_strings")


def test_membership_functions_name_nothing_of_another_organization(org_a, org_b):
    """Held: tenancy_member_ids() and tenancy_own_organization_ids(), called directly by the
    injection, return A's members and the owner's own organizations, never B's."""
    owner = org_a.members[Role.OWNER]
    b_members = {user.pk for user in org_b.members.values()}
    with as_request(org_a.organization, owner):
        members = {row[0] for row in rows("SELECT tenancy_member_ids()")}
        own = {row[0] for row in rows("SELECT tenancy_own_organization_ids()")}
        assert not members & b_members
        assert own == {org_a.organization.pk}
        # Forged: a copy of the claim naming B (MAC kept) makes both empty.
        claim = rows("SELECT current_setting('app.tenancy_claim', true)")[0][0]
        parts = claim.split(".")
        parts[6] = str(org_b.organization.pk)
        rows("SELECT set_config('app.tenancy_claim', %s, true)", [".".join(parts)])
        assert rows("SELECT count(*) FROM tenancy_member_ids()")[0][0] == 0
        assert rows("SELECT count(*) FROM tenancy_own_organization_ids()")[0][0] == 0


# === 3. Owner-only tables ===============================================================


@pytest.mark.parametrize(
    "table",
    [
        "tenancy_migration_journal",
        "tenancy_imports",
        "tenancy_import_id_map",
    ],
)
def test_new_owner_only_tables_are_refused(org_a, table):
    """Held: the application role reads and writes none of them."""
    owner = org_a.members[Role.OWNER]
    with as_request(org_a.organization, owner):
        assert attempt(f"SELECT * FROM {table} LIMIT 1") is None
        assert attempt(f"DELETE FROM {table}") is None


def test_billing_webhook_events_of_another_organization_are_invisible(org_a, org_b):
    """Held: RLS on billing_webhook_events: A's transaction sees and changes none of B's."""
    with organization_context(org_b.organization), platform_access(EVERYWHERE):
        BillingWebhookEvent.objects.create(
            organization=org_b.organization,
            stripe_event_id="evt_b",
            event_type="invoice.payment_failed",
            event_created_at="2026-01-01T00:00:00Z",
        )
    owner = org_a.members[Role.OWNER]
    with as_request(org_a.organization, owner):
        seen = rows(
            "SELECT count(*) FROM billing_webhook_events WHERE organization_id = %s",
            [org_b.organization.pk],
        )
        assert seen[0][0] == 0
        assert (
            attempt(
                "INSERT INTO billing_webhook_events (organization_id, stripe_event_id, event_type, "
                "event_created_at) VALUES (%s, 'evt_x', 'x', now())",
                [org_b.organization.pk],
            )
            is None
        )


def test_journal_sequence_is_out_of_the_application_roles_reach(org_a):
    """Was a hole (fixed): tenancy_migration_journal is owner-only, but its bigserial sequence is
    not: tenants.0006's default privileges give the application role USAGE and SELECT on every
    new sequence, and tenants.journal.ensure_table revokes on the table only. The injection reads
    how many journal rows the operator wrote (last_value) and advances the sequence (nextval)."""
    owner = org_a.members[Role.OWNER]
    with as_request(org_a.organization, owner):
        read = attempt("SELECT last_value FROM tenancy_migration_journal_id_seq")
        advanced = attempt("SELECT nextval('tenancy_migration_journal_id_seq')")
    assert read is None, f"the application role reads the journal's sequence: {read}"
    assert advanced is None, f"the application role advances the journal's sequence: {advanced}"


# === 2. Billing: the webhook ================================================================


def test_webhook_unicode_digit_timestamp_is_a_400_not_a_500(org_a):
    """Was a hole (fixed): `t=²` (U+00B2, a Latin-1 byte any HTTP client can send): str.isdigit()
    accepts it, int() does not, so an anonymous caller gets a 500 (billing/webhooks.py
    verify_signature)."""
    response = stripe_post(invoice_event(), header="t=\u00b2,v1=00")
    assert response.status_code == 400, response.status_code


def test_webhook_non_ascii_signature_is_a_400_not_a_500(org_a):
    """Was a hole (fixed): `v1=é`: hmac.compare_digest raises TypeError on non-ASCII str, so an
    anonymous caller gets a 500 instead of the one 400 for a wrong signature."""
    response = stripe_post(invoice_event(), header=f"t={int(time.time())},v1=\u00e9")
    assert response.status_code == 400, response.status_code


def test_webhook_forged_or_replayed_changes_nothing(org_a, org_b):
    """Held: wrong secret, stale timestamp, signature of another body, empty v1: one 400 each,
    and neither organization's status moves."""
    body = invoice_event()
    payload = json.dumps(body).encode()
    now = int(time.time())
    headers = [
        stripe_sign(payload, "whsec_guess", now),
        stripe_sign(payload, settings.ROUTEOPTIMIZER_STRIPE_WEBHOOK_SECRET, now - 10_000),
        stripe_sign(b"{}", settings.ROUTEOPTIMIZER_STRIPE_WEBHOOK_SECRET, now),
        f"t={now},v1=",
        f"t={now},v0="
        + stripe_sign(payload, settings.ROUTEOPTIMIZER_STRIPE_WEBHOOK_SECRET, now).rpartition(
            "v1="
        )[2],
    ]
    for header in headers:
        response = stripe_post(body, header=header)
        assert response.status_code == 400, (header, response.status_code)
    assert fresh(org_a.organization).subscription_status == "active"
    assert not BillingWebhookEvent.unscoped.exists()


def test_sqli_future_event_freezes_the_organizations_status(org_a):
    """Was a hole (fixed): billing_webhook_events is written by the organization's own claim, and
    the webhook ignores any event older than one recorded (`outdated`). One injection in A's
    transaction records a fake event dated 2100: every later Stripe event for A (payment failed,
    subscription canceled) is `outdated` and A stays active without paying."""
    owner = org_a.members[Role.OWNER]
    with as_request(org_a.organization, owner):
        refused = attempt(
            "INSERT INTO billing_webhook_events (organization_id, stripe_event_id, event_type, "
            "event_created_at) VALUES (tenancy_current_organization(), 'evt_fake', 'x', "
            "'2100-01-01')"
        )
        assert refused is None, "the organization's own claim cannot record a Stripe event"
        assert (
            attempt(
                "UPDATE organization_subscriptions SET status = 'active' "
                "WHERE organization_id = tenancy_current_organization() RETURNING id"
            )
            is None
        ), "nor rewrite its subscription"
    response = stripe_post(invoice_event())
    assert response.status_code == 200
    assert fresh(org_a.organization).subscription_status == "past_due", response.json()


def test_sqli_usage_purge_is_a_setting_the_application_role_can_write(org_a):
    """Was a hole (fixed): usage_tracking's append-only trigger lets DELETE through when the plain
    setting billing.allow_usage_purge is 'on' (billing.0005/0009): the application role can set
    it, so one injection erases its organization's metered usage (billing evidence)."""
    owner = org_a.members[Role.OWNER]
    with organization_context(org_a.organization):
        before = UsageRecord.objects.count()
    assert before > 0
    with as_request(org_a.organization, owner):
        attempt(
            "SELECT set_config('billing.allow_usage_purge', 'on', true); DELETE FROM usage_tracking"
        )
    with organization_context(org_a.organization):
        after = UsageRecord.objects.count()
    assert after == before, f"{before - after} usage rows erased by the application role"


def test_sqli_negative_usage_correction_is_the_platforms(org_a):
    """Was a hole (fixed): a row with a negative quantity (a correction) was open to the
    application role, so one injection could cancel out its organization's metered usage."""
    owner = org_a.members[Role.OWNER]
    with as_request(org_a.organization, owner):
        assert (
            attempt(
                "INSERT INTO usage_tracking (organization_id, metric, quantity, recorded_at, "
                "metadata) VALUES (tenancy_current_organization(), 'api_calls', -1000000, now(), "
                "'{}') RETURNING id"
            )
            is None
        )
        assert attempt(
            "INSERT INTO usage_tracking (organization_id, metric, quantity, recorded_at, "
            "metadata) VALUES (tenancy_current_organization(), 'customers_created', 1, now(), "
            "'{}') RETURNING id"
        ), "positive amounts, as the application meters them, still go in"


# === 2. Billing: usage, limits, status =========================================================


def test_usage_of_another_organization_cannot_be_read(org_a, org_b):
    """Held: B's owner token naming A (header) is 404; A's admin is 403; anonymous 401."""
    b_owner = api_client(org_b)
    assert b_owner.get("/api/v1/usage", HTTP_X_ORGANIZATION="reva").status_code == 404
    assert api_client(org_a, Role.ADMIN).get("/api/v1/usage").status_code == 403
    assert APIClient().get("/api/v1/usage").status_code == 401
    body = b_owner.get("/api/v1/usage").json()
    assert body["organization"] == "revb"


@pytest.mark.parametrize("query", ["from=2024-02-30", "to=2024-13-01", "to=0001-01-05"])
def test_usage_bad_dates_are_a_400_not_a_500(org_a, query):
    """Was a hole (fixed): a well-formed but impossible date makes parse_date raise ValueError, and
    a `to` near year 1 overflows `to - 30 days` (billing/api.py _moment / UsageView.get): 500s."""
    client = api_client(org_a, raise_request_exception=False)
    response = client.get(f"/api/v1/usage?{query}")
    assert response.status_code == 400, response.status_code


def test_route_moved_by_patch_onto_a_full_day_is_refused(org_a):
    """Held: PATCH moving a route to a service day at its limit answers 402."""
    set_columns(org_a.organization, max_routes_per_day=1)
    client = api_client(org_a)
    routes = client.get("/api/v1/routes/").json()["results"]
    days = {route["service_day"] for route in routes}
    assert len(days) >= 2
    first, second = (
        routes[0],
        next(r for r in routes if r["service_day"] != routes[0]["service_day"]),
    )
    response = client.patch(
        f"/api/v1/routes/{second['id']}/", {"service_day": first["service_day"]}, format="json"
    )
    assert response.status_code == 402, response.json()


@pytest.mark.parametrize("status", ["canceled", "suspended"])
def test_closed_organization_reads_and_writes_nothing_through_the_api(org_a, status):
    """Held: v1 resources, usage and the legacy endpoint all refuse a closed organization."""
    client = api_client(org_a)
    set_columns(org_a.organization, subscription_status=status)
    for path in ("/api/v1/customers/", "/api/v1/usage", "/api/customers"):
        assert client.get(path).status_code in (402, 403), path
    assert client.post("/api/v1/customers/", {}, format="json").status_code in (402, 403)


@pytest.mark.parametrize("status", ["canceled", "suspended"])
def test_closed_organization_is_not_issued_new_tokens(org_a, status):
    """Was a hole (fixed): POST /api/v1/auth/token has no organization before the view, so the
    status check never runs: a member of a canceled or suspended organization still gets a new
    token (a write in api_tokens), learns the organization exists and their role, 201."""
    set_columns(org_a.organization, subscription_status=status)
    response = APIClient().post(
        "/api/v1/auth/token",
        {"email": "owner@reva.test", "password": PASSWORD, "organization": "reva"},
        format="json",
    )
    assert response.status_code in (402, 403), (response.status_code, response.json())
