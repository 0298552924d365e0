"""The Stripe billing webhook: Stripe's signature scheme verified here, offline, and the events
that change what an organization may do applied to organization_subscriptions and the
organization.

Signature (Stripe's scheme, implemented with hmac; no Stripe library, nothing on the network):
the `Stripe-Signature` header is `t=<unix time>,v1=<hex>[,v1=<hex>...]`; each `v1` may be
HMAC-SHA256 over `<t>.<raw body>` under the endpoint's signing secret
(ROUTEOPTIMIZER_STRIPE_WEBHOOK_SECRET). One matching `v1` (compared in constant time) and a `t`
within ROUTEOPTIMIZER_STRIPE_WEBHOOK_TOLERANCE seconds of now (300) make the request authentic;
anything else is refused before the body is parsed, and changes nothing.

Authority: the caller is anonymous (no user, no organization, no claim that sees anything).
The valid signature is what lets Django act as the platform, and only for this: finding the
organization by its Stripe ids and writing its plan and status (the platform's columns,
tenants.verification's guard) under `platform_access()`; its subscription rows and the event
record inside that organization's own claim. A request without a valid signature never reaches
that code.

Events applied (others are acknowledged and ignored):
- `customer.subscription.updated` / `.deleted`: the subscription row (found by its Stripe id, or
  the organization's live one, such as the trial's placeholder) takes Stripe's status, period,
  trial and price; the organization's status follows (trialing -> trial, active, past_due and
  unpaid/incomplete/paused -> past_due, canceled/incomplete_expired -> canceled) and a
  `plan_tier` in the subscription's (or its price's) metadata moves it to that tier.
- `invoice.payment_failed`: past due (read-only). `invoice.payment_succeeded`: active.
A suspended organization stays suspended (the platform's decision, not Stripe's), and a canceled
one is reopened only by a subscription event, never by an invoice.

Idempotent per event id: billing_webhook_events records each applied event (unique per
organization and event id); a second delivery answers 200 `duplicate` and changes nothing. An
event older than one already applied for the organization is recorded and not applied
(`outdated`): Stripe does not promise order.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import json
import re
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from billing.models import BillingWebhookEvent, OrganizationSubscription, SubscriptionStatus
from billing.plans import apply_plan, plan_for
from tenants.claims import EVERYWHERE, platform_access
from tenants.context import organization_context
from tenants.models import Organization, PlanTier
from tenants.models import SubscriptionStatus as OrganizationStatus

SIGNATURE_HEADER = "HTTP_STRIPE_SIGNATURE"
SUBSCRIPTION_EVENTS = ("customer.subscription.updated", "customer.subscription.deleted")
INVOICE_EVENTS = ("invoice.payment_failed", "invoice.payment_succeeded")

# Stripe's subscription statuses -> organization_subscriptions.status.
_SUBSCRIPTION_STATUS = {
    "trialing": SubscriptionStatus.TRIALING,
    "active": SubscriptionStatus.ACTIVE,
    "past_due": SubscriptionStatus.PAST_DUE,
    "unpaid": SubscriptionStatus.PAST_DUE,
    "incomplete": SubscriptionStatus.PAST_DUE,
    "paused": SubscriptionStatus.PAST_DUE,
    "canceled": SubscriptionStatus.CANCELED,
    "incomplete_expired": SubscriptionStatus.CANCELED,
}
# organization_subscriptions.status -> organizations.subscription_status.
_ORGANIZATION_STATUS = {
    SubscriptionStatus.TRIALING: OrganizationStatus.TRIAL,
    SubscriptionStatus.ACTIVE: OrganizationStatus.ACTIVE,
    SubscriptionStatus.PAST_DUE: OrganizationStatus.PAST_DUE,
    SubscriptionStatus.CANCELED: OrganizationStatus.CANCELED,
}


class WebhookRefused(Exception):
    """The request is not an authentic, well-formed event; `status` is the HTTP answer."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


# --- the signature -------------------------------------------------------------------------------


_DIGITS = re.compile(r"[0-9]{1,12}")
_HEX_SHA256 = re.compile(r"[0-9a-f]{64}")


def sign(payload: bytes, secret: str, timestamp: int) -> str:
    """The `Stripe-Signature` header Stripe would send for `payload` at `timestamp` (tests and
    local tooling sign their own events with it)."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify_signature(payload: bytes, header: str | None, *, secret: str, now=None) -> None:
    """Raise WebhookRefused unless `header` signs `payload` with `secret` within the tolerance."""
    if not header:
        raise WebhookRefused(
            "missing Stripe-Signature header: only Stripe's signed events are accepted"
        )
    timestamp, signatures = None, []
    for item in header.split(","):
        key, _, value = item.strip().partition("=")
        # ASCII digits and lowercase hex only: str.isdigit() takes '²', which int() refuses,
        # and hmac.compare_digest() refuses non-ASCII text (an anonymous 500 either way).
        if key == "t" and _DIGITS.fullmatch(value):
            timestamp = int(value)
        elif key == "v1" and _HEX_SHA256.fullmatch(value):
            signatures.append(value)
    if timestamp is None or not signatures:
        raise WebhookRefused(
            "malformed Stripe-Signature header: expected 't=<timestamp>,v1=<signature>'"
        )
    expected = sign(payload, secret, timestamp).rpartition("v1=")[2]
    if not any(hmac.compare_digest(expected, candidate) for candidate in signatures):
        raise WebhookRefused(
            "the Stripe-Signature does not match this payload: check the endpoint's signing "
            "secret (ROUTEOPTIMIZER_STRIPE_WEBHOOK_SECRET)"
        )
    now = int((now or timezone.now()).timestamp())
    tolerance = settings.ROUTEOPTIMIZER_STRIPE_WEBHOOK_TOLERANCE
    if abs(now - timestamp) > tolerance:
        raise WebhookRefused(
            f"the signature's timestamp is {abs(now - timestamp)} seconds from now, more than "
            f"the {tolerance} allowed: a replayed or stale request; Stripe retries with a new one"
        )


# --- the event -----------------------------------------------------------------------------------


def parse_event(payload: bytes) -> dict:
    try:
        event = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        raise WebhookRefused("malformed JSON: the body must be a Stripe event object") from None
    if not (
        isinstance(event, dict)
        and isinstance(event.get("id"), str)
        and 0 < len(event["id"]) <= 255
        and isinstance(event.get("type"), str)
        and len(event["type"]) <= 100
        and isinstance(event.get("created"), int)
        and isinstance(event.get("data"), dict)
        and isinstance(event["data"].get("object"), dict)
    ):
        raise WebhookRefused(
            "malformed event: expected an object with id, type, created and data.object"
        )
    return event


def _text(value) -> str | None:
    return value if isinstance(value, str) and 0 < len(value) <= 100 else None


def _time(value) -> datetime.datetime | None:
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**37:
        return datetime.datetime.fromtimestamp(value, tz=datetime.UTC)
    return None


def _organization_for(obj: dict, subscription_id: str | None) -> Organization | None:
    """As the platform (the signature was verified): the organization of these Stripe ids."""
    customer = _text(obj.get("customer"))
    with organization_context(None), platform_access():
        if customer:
            found = Organization.objects.filter(stripe_customer_id=customer).first()
            if found is not None:
                return found
        if subscription_id:
            found = Organization.objects.filter(stripe_subscription_id=subscription_id).first()
            if found is not None:
                return found
            owner = (
                OrganizationSubscription.unscoped.filter(stripe_subscription_id=subscription_id)
                .values_list("organization_id", flat=True)
                .first()
            )
            if owner is not None:
                return Organization.objects.filter(pk=owner).first()
    return None


def handle(payload: bytes, signature: str | None, *, now=None) -> dict:
    """Verify and apply one delivery; returns the JSON answer (200). Raises WebhookRefused."""
    secret = settings.ROUTEOPTIMIZER_STRIPE_WEBHOOK_SECRET
    if not secret:
        # No signature can verify: the same 400 as a wrong one, naming what the operator sets.
        raise WebhookRefused(
            "no signature can be verified: the webhook's signing secret is not configured "
            "(ROUTEOPTIMIZER_STRIPE_WEBHOOK_SECRET)"
        )
    verify_signature(payload, signature, secret=secret, now=now)
    event = parse_event(payload)
    kind, obj = event["type"], event["data"]["object"]
    if kind not in SUBSCRIPTION_EVENTS + INVOICE_EVENTS:
        return {
            "status": "ignored",
            "reason": f"event type {kind!r} is not one RouteOptimizer acts on",
        }
    subscription_id = (
        _text(obj.get("id")) if kind in SUBSCRIPTION_EVENTS else _text(obj.get("subscription"))
    )
    organization = _organization_for(obj, subscription_id)
    if organization is None:
        return {"status": "ignored", "reason": "no organization has this Stripe customer"}
    created = _time(event["created"]) or timezone.now()
    with transaction.atomic():
        # As the platform, inside the organization (its ORM scope): the events and the
        # subscription rows are the platform's to write (billing.0011's guard), so nothing the
        # organization writes itself can make a real event look outdated.
        with organization_context(organization), platform_access(EVERYWHERE):
            newer = BillingWebhookEvent.objects.filter(
                organization=organization, event_created_at__gt=created
            ).exists()
            try:
                with transaction.atomic():
                    BillingWebhookEvent.objects.create(
                        organization=organization,
                        stripe_event_id=event["id"],
                        event_type=kind,
                        event_created_at=created,
                    )
            except IntegrityError:
                return {"status": "duplicate", "event": event["id"]}
            if newer:
                return {"status": "outdated", "event": event["id"]}
            if kind in SUBSCRIPTION_EVENTS:
                status, tier = _apply_subscription(organization, obj, subscription_id, kind, now)
            else:
                status, tier = _apply_invoice(organization, subscription_id, kind)
        _update_organization(
            organization, status=status, tier=tier, obj=obj, subscription_id=subscription_id
        )
    return {"status": "applied", "event": event["id"], "organization": organization.slug}


def _tier_of(obj: dict) -> str | None:
    candidates = [obj.get("metadata")]
    items = obj.get("items")
    if isinstance(items, dict) and isinstance(items.get("data"), list) and items["data"]:
        first = items["data"][0]
        if isinstance(first, dict) and isinstance(first.get("price"), dict):
            candidates += [
                first["price"].get("metadata"),
                {"plan_tier": first["price"].get("lookup_key")},
            ]
    for candidate in candidates:
        if isinstance(candidate, dict) and candidate.get("plan_tier") in PlanTier.values:
            return candidate["plan_tier"]
    return None


def _price_of(obj: dict, tier: str) -> Decimal:
    items = obj.get("items")
    try:
        amount = items["data"][0]["price"]["unit_amount"]
        if isinstance(amount, int) and not isinstance(amount, bool) and 0 <= amount < 10**10:
            return (Decimal(amount) / 100).quantize(Decimal("0.01"))
    except (KeyError, IndexError, TypeError, InvalidOperation):
        pass
    return plan_for(tier).monthly_price


def _apply_subscription(organization, obj, subscription_id, kind, now):
    stripe_status = obj.get("status") if kind.endswith("updated") else "canceled"
    status = _SUBSCRIPTION_STATUS.get(stripe_status)
    if status is None or subscription_id is None:
        raise WebhookRefused(
            f"malformed event: subscription status {stripe_status!r} or id is not one Stripe sends"
        )
    tier = _tier_of(obj) or organization.plan_tier
    now = now or timezone.now()
    row = (
        OrganizationSubscription.objects.filter(stripe_subscription_id=subscription_id).first()
        or OrganizationSubscription.objects.exclude(status=SubscriptionStatus.CANCELED)
        .order_by("-current_period_start")
        .first()
        or OrganizationSubscription(organization=organization)
    )
    start = _time(obj.get("current_period_start")) or row.current_period_start or now
    end = _time(obj.get("current_period_end")) or row.current_period_end or start
    row.stripe_subscription_id = subscription_id
    row.plan_tier = tier
    row.status = status
    row.monthly_price = _price_of(obj, tier)
    row.current_period_start, row.current_period_end = start, max(start, end)
    row.trial_start = _time(obj.get("trial_start")) or row.trial_start
    row.trial_end = _time(obj.get("trial_end")) or row.trial_end
    if row.trial_start and row.trial_end and row.trial_end < row.trial_start:
        row.trial_end = row.trial_start
    row.cancel_at_period_end = obj.get("cancel_at_period_end") is True
    if status == SubscriptionStatus.CANCELED:
        row.canceled_at = _time(obj.get("canceled_at")) or row.canceled_at or now
    try:
        with transaction.atomic():
            row.save()
    except IntegrityError:
        # Stripe's ids are unique: a subscription id another organization holds is not this
        # customer's. The same answer whoever holds it.
        raise WebhookRefused(
            "this event's subscription does not belong to this customer: nothing was changed"
        ) from None
    return _ORGANIZATION_STATUS[status], tier


def _apply_invoice(organization, subscription_id, kind):
    failed = kind == "invoice.payment_failed"
    rows = OrganizationSubscription.objects.exclude(status=SubscriptionStatus.CANCELED)
    if subscription_id:
        rows = rows.filter(stripe_subscription_id=subscription_id)
    rows.update(status=SubscriptionStatus.PAST_DUE if failed else SubscriptionStatus.ACTIVE)
    if organization.subscription_status == OrganizationStatus.CANCELED:
        return None, None  # an invoice does not reopen a canceled organization
    return (OrganizationStatus.PAST_DUE if failed else OrganizationStatus.ACTIVE), None


def _update_organization(organization, *, status, tier, obj, subscription_id) -> None:
    """The platform's columns, as the platform (tenants.verification's guard)."""
    with organization_context(None), platform_access():
        current = Organization.objects.select_for_update().get(pk=organization.pk)
        fields = []
        if status and current.subscription_status != OrganizationStatus.SUSPENDED:
            current.subscription_status = status
            fields.append("subscription_status")
        if tier and tier != current.plan_tier:
            apply_plan(current, tier)
            fields += [
                "plan_tier",
                "max_users",
                "max_customers",
                "max_techs",
                "max_routes_per_day",
                "features_enabled",
            ]
        if subscription_id and obj.get("object") == "subscription":
            current.stripe_subscription_id = subscription_id
            fields.append("stripe_subscription_id")
        customer = _text(obj.get("customer"))
        if customer and not current.stripe_customer_id:
            current.stripe_customer_id = customer
            fields.append("stripe_customer_id")
        if fields:
            current.save(update_fields=[*fields, "updated_at"])
