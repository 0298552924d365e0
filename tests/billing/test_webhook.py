"""POST /api/v1/billing/webhook: Stripe's signature scheme verified offline, events applied
once, and what they change about what an organization may do. Tests sign their own events."""

import json
import time

import pytest
from django.conf import settings
from rest_framework.test import APIClient

from billing.models import BillingWebhookEvent, OrganizationSubscription
from billing.plans import PLANS
from billing.webhooks import sign
from tenants.claims import platform_access
from tenants.context import organization_context
from tenants.models import Organization, Role
from tests.billing.conftest import set_columns

URL = "/api/v1/billing/webhook"
CUSTOMER_ID = "cus_acme_test"
NEW_CUSTOMER = {
    "display_name": "New customer",
    "address": "9 Pool Lane",
    "service_type": "residential",
    "difficulty": 1,
    "service_day": "friday",
}


@pytest.fixture
def acme_on_stripe(acme):
    set_columns(acme.organization, stripe_customer_id=CUSTOMER_ID, subscription_status="active")
    return acme


def event(kind, obj, *, event_id="evt_1", created=None):
    return {
        "id": event_id,
        "object": "event",
        "type": kind,
        "created": created or int(time.time()),
        "data": {"object": obj},
    }


def subscription(status="active", **extra):
    return {
        "id": "sub_123",
        "object": "subscription",
        "customer": CUSTOMER_ID,
        "status": status,
        "current_period_start": int(time.time()) - 60,
        "current_period_end": int(time.time()) + 30 * 86400,
        "items": {"data": [{"price": {"unit_amount": 14900, "metadata": {}}}]},
        **extra,
    }


def invoice(**extra):
    return {
        "id": "in_1",
        "object": "invoice",
        "customer": CUSTOMER_ID,
        "subscription": "sub_123",
        **extra,
    }


def post(body, *, secret=None, timestamp=None, header=None, raw=None):
    payload = raw if raw is not None else json.dumps(body).encode()
    signature = header or sign(
        payload,
        secret or settings.ROUTEOPTIMIZER_STRIPE_WEBHOOK_SECRET,
        timestamp or int(time.time()),
    )
    return APIClient().post(
        URL, payload, content_type="application/json", HTTP_STRIPE_SIGNATURE=signature
    )


def organization(data) -> Organization:
    with organization_context(None), platform_access():
        return Organization.objects.get(pk=data.organization.pk)


def snapshot(data):
    org = organization(data)
    return (
        org.subscription_status,
        org.plan_tier,
        org.max_customers,
        sorted(OrganizationSubscription.unscoped.values_list("stripe_subscription_id", "status")),
        BillingWebhookEvent.unscoped.count(),
    )


# --- refused: one clear 400, nothing changed ---------------------------------------------------


@pytest.mark.parametrize(
    ("how", "expected"),
    [
        ({"secret": "whsec_wrong"}, "does not match this payload"),
        ({"timestamp": int(time.time()) - 3600}, "replayed or stale"),
        ({"timestamp": int(time.time()) + 3600}, "replayed or stale"),
        ({"header": "t=abc,v1="}, "malformed Stripe-Signature"),
        ({"header": "v1=deadbeef"}, "malformed Stripe-Signature"),
    ],
    ids=["wrong secret", "stale", "future", "garbage header", "no timestamp"],
)
def test_a_bad_signature_is_one_400_and_changes_nothing(acme_on_stripe, how, expected):
    before = snapshot(acme_on_stripe)
    response = post(event("invoice.payment_failed", invoice()), **how)
    assert response.status_code == 400
    assert set(response.json()) == {"error"}
    assert expected in response.json()["error"]
    assert snapshot(acme_on_stripe) == before


def test_no_signature_at_all_is_refused(acme_on_stripe):
    before = snapshot(acme_on_stripe)
    response = APIClient().post(
        URL, json.dumps(event("invoice.payment_failed", invoice())), content_type="application/json"
    )
    assert response.status_code == 400
    assert "missing Stripe-Signature" in response.json()["error"]
    assert snapshot(acme_on_stripe) == before


def test_a_tampered_body_does_not_verify(acme_on_stripe):
    payload = json.dumps(event("invoice.payment_succeeded", invoice())).encode()
    header = sign(payload, settings.ROUTEOPTIMIZER_STRIPE_WEBHOOK_SECRET, int(time.time()))
    tampered = payload.replace(b"payment_succeeded", b"payment_failed")
    response = post(None, raw=tampered, header=header)
    assert response.status_code == 400
    assert organization(acme_on_stripe).subscription_status == "active"


@pytest.mark.parametrize("raw", [b"{not json", b"[]", b'{"id": "evt_1"}', b"\xff\xfe"])
def test_malformed_json_signed_correctly_is_one_400(acme_on_stripe, raw):
    before = snapshot(acme_on_stripe)
    response = post(None, raw=raw)
    assert response.status_code == 400
    assert "malformed" in response.json()["error"]
    assert snapshot(acme_on_stripe) == before


def test_without_a_configured_secret_nothing_verifies(acme_on_stripe, settings):
    settings.ROUTEOPTIMIZER_STRIPE_WEBHOOK_SECRET = ""
    response = post(event("invoice.payment_failed", invoice()), secret="anything")
    assert response.status_code == 400
    assert "ROUTEOPTIMIZER_STRIPE_WEBHOOK_SECRET" in response.json()["error"]
    assert organization(acme_on_stripe).subscription_status == "active"


# --- applied, once -----------------------------------------------------------------------------


def test_payment_failed_makes_the_organization_read_only_and_succeeded_reopens_it(
    acme_on_stripe, client_as
):
    response = post(event("invoice.payment_failed", invoice(), event_id="evt_failed"))
    assert response.status_code == 200
    assert response.json()["status"] == "applied"
    assert organization(acme_on_stripe).subscription_status == "past_due"
    client = client_as(acme_on_stripe, Role.MANAGER)
    assert client.get("/api/v1/customers/").status_code == 200
    assert client.post("/api/v1/customers/", NEW_CUSTOMER, format="json").status_code == 402

    assert (
        post(event("invoice.payment_succeeded", invoice(), event_id="evt_paid")).status_code == 200
    )
    assert organization(acme_on_stripe).subscription_status == "active"
    assert client.post("/api/v1/customers/", NEW_CUSTOMER, format="json").status_code == 201


def test_the_same_event_twice_is_applied_once(acme_on_stripe):
    body = event("invoice.payment_failed", invoice(), event_id="evt_dup")
    assert post(body).json()["status"] == "applied"
    set_columns(acme_on_stripe.organization, subscription_status="active")  # fixed meanwhile
    again = post(body)  # Stripe's retry: a new signature, the same event
    assert again.status_code == 200
    assert again.json()["status"] == "duplicate"
    assert organization(acme_on_stripe).subscription_status == "active"
    assert BillingWebhookEvent.unscoped.filter(stripe_event_id="evt_dup").count() == 1


def test_an_older_event_after_a_newer_one_changes_nothing(acme_on_stripe):
    now = int(time.time())
    post(event("invoice.payment_succeeded", invoice(), event_id="evt_new", created=now))
    late = post(event("invoice.payment_failed", invoice(), event_id="evt_old", created=now - 600))
    assert late.json()["status"] == "outdated"
    assert organization(acme_on_stripe).subscription_status == "active"


def test_subscription_updated_sets_the_tier_its_limits_and_the_subscription_row(acme_on_stripe):
    body = event(
        "customer.subscription.updated",
        subscription(metadata={"plan_tier": "enterprise"}),
        event_id="evt_upgrade",
    )
    assert post(body).json()["status"] == "applied"
    org = organization(acme_on_stripe)
    assert (org.plan_tier, org.subscription_status) == ("enterprise", "active")
    assert org.max_customers == PLANS["enterprise"].max_customers  # None: unlimited
    assert org.stripe_subscription_id == "sub_123"
    with organization_context(org):
        row = OrganizationSubscription.objects.get(stripe_subscription_id="sub_123")
    assert (row.status, row.plan_tier, str(row.monthly_price)) == ("active", "enterprise", "149.00")


def test_subscription_deleted_closes_the_organization(acme_on_stripe, client_as):
    post(event("customer.subscription.updated", subscription(), event_id="evt_a"))
    assert (
        post(
            event("customer.subscription.deleted", subscription("canceled"), event_id="evt_b")
        ).status_code
        == 200
    )
    assert organization(acme_on_stripe).subscription_status == "canceled"
    assert client_as(acme_on_stripe).get("/api/v1/customers/").status_code == 402
    # An invoice does not reopen a canceled organization.
    post(event("invoice.payment_succeeded", invoice(), event_id="evt_c"))
    assert organization(acme_on_stripe).subscription_status == "canceled"


def test_a_suspended_organization_stays_suspended(acme_on_stripe):
    set_columns(acme_on_stripe.organization, subscription_status="suspended")
    post(event("invoice.payment_succeeded", invoice(), event_id="evt_s"))
    assert organization(acme_on_stripe).subscription_status == "suspended"


def test_events_for_other_customers_or_types_are_acknowledged_and_ignored(acme_on_stripe, blue):
    before = snapshot(acme_on_stripe)
    other = post(
        event("invoice.payment_failed", invoice(customer="cus_nobody", subscription="sub_x"))
    )
    assert other.json()["status"] == "ignored"
    kind = post(event("customer.created", {"id": CUSTOMER_ID}, event_id="evt_other"))
    assert kind.json()["status"] == "ignored"
    assert snapshot(acme_on_stripe) == before
    assert organization(blue).subscription_status == blue.organization.subscription_status


def test_another_organizations_subscription_id_changes_nothing(acme_on_stripe, blue):
    with organization_context(blue.organization):
        theirs = OrganizationSubscription.objects.get()
    before = snapshot(acme_on_stripe)
    body = event(
        "customer.subscription.updated",
        subscription(id=theirs.stripe_subscription_id, status="canceled"),
        event_id="evt_cross",
    )
    response = post(body)
    assert response.status_code == 400
    assert "does not belong to this customer" in response.json()["error"]
    assert snapshot(acme_on_stripe) == before
    with organization_context(blue.organization):
        assert OrganizationSubscription.objects.get().status == theirs.status
