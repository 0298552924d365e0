"""The plan tiers (starter, professional, enterprise): their default limits, features and price,
defined once, and what an organization's subscription status lets it do.

A module, not a table, on purpose. A tier's limits are behaviour the code enforces (billing.limits)
and the tests pin; changing them is a reviewed deploy, not a row anyone with the platform's
admin could edit in production. An organization copies its tier's defaults into its own columns
(`max_users`, `max_customers`, `max_techs`, `max_routes_per_day`, `features_enabled`) when it is
created or changes tier (`apply_plan`), so existing organizations keep what they signed up for
when a tier's defaults change later, and a superuser can override any column of one
organization in the admin. In those columns `NULL` means unlimited.

The organization's `subscription_status` (tenants.models.SubscriptionStatus) decides access,
checked on every API request from the organization the request already loaded (no query):
`trial` until `trial_ends_at`, then read-only exactly like `past_due` (even before
`manage.py expire_trials` has written the new status); `canceled` and `suspended` answer nobody.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from decimal import Decimal

from django.utils import timezone

from tenants.models import PlanTier, SubscriptionStatus

LIMIT_COLUMNS = ("max_users", "max_customers", "max_techs", "max_routes_per_day")


@dataclass(frozen=True)
class Plan:
    tier: str
    monthly_price: Decimal
    max_users: int | None
    max_customers: int | None
    max_techs: int | None
    max_routes_per_day: int | None
    features: dict = field(default_factory=dict)

    def limits(self) -> dict[str, int | None]:
        return {column: getattr(self, column) for column in LIMIT_COLUMNS}


PLANS: dict[str, Plan] = {
    PlanTier.STARTER: Plan(
        tier=PlanTier.STARTER,
        monthly_price=Decimal("49.00"),
        max_users=3,
        max_customers=100,
        max_techs=2,
        max_routes_per_day=2,
        features={
            "api_access": True,
            "route_optimization": True,
            "google_maps": False,
            "custom_branding": False,
        },
    ),
    # The default organization of plan M005 is professional with 10 users, 500 customers and
    # 10 technicians: the tier's defaults are the same figures.
    PlanTier.PROFESSIONAL: Plan(
        tier=PlanTier.PROFESSIONAL,
        monthly_price=Decimal("149.00"),
        max_users=10,
        max_customers=500,
        max_techs=10,
        max_routes_per_day=10,
        features={
            "api_access": True,
            "route_optimization": True,
            "google_maps": True,
            "custom_branding": True,
        },
    ),
    PlanTier.ENTERPRISE: Plan(
        tier=PlanTier.ENTERPRISE,
        monthly_price=Decimal("499.00"),
        max_users=None,
        max_customers=None,
        max_techs=None,
        max_routes_per_day=None,
        features={
            "api_access": True,
            "route_optimization": True,
            "google_maps": True,
            "custom_branding": True,
            "priority_support": True,
        },
    ),
}


def plan_for(tier: str) -> Plan:
    return PLANS[PlanTier(tier)]


def apply_plan(organization, tier: str, *, keep: frozenset[str] = frozenset()) -> None:
    """Give `organization` (unsaved) `tier` and that tier's default limits and features; the
    columns named in `keep` stay as they are (an override made together with the change)."""
    plan = plan_for(tier)
    organization.plan_tier = plan.tier
    for column, value in plan.limits().items():
        if column not in keep:
            setattr(organization, column, value)
    if "features_enabled" not in keep:
        organization.features_enabled = dict(plan.features)


def next_tier_allowing(tier: str, column: str, count: int) -> Plan | None:
    """The cheapest tier above `tier` whose default for `column` allows more than `count`."""
    current = plan_for(tier).monthly_price
    for plan in sorted(PLANS.values(), key=lambda p: p.monthly_price):
        maximum = getattr(plan, column)
        if plan.monthly_price > current and (maximum is None or maximum > count):
            return plan
    return None


# --- access by subscription status -----------------------------------------------------------

CLOSED = frozenset({SubscriptionStatus.CANCELED, SubscriptionStatus.SUSPENDED})


def trial_over(organization, now: datetime.datetime | None = None) -> bool:
    return (
        organization.subscription_status == SubscriptionStatus.TRIAL
        and organization.trial_ends_at is not None
        and organization.trial_ends_at <= (now or timezone.now())
    )


def effective_status(organization, now: datetime.datetime | None = None) -> str:
    """The status that applies now: an ended trial is past due before expire_trials says so."""
    if trial_over(organization, now):
        return SubscriptionStatus.PAST_DUE
    return organization.subscription_status


class AccessRefused(Exception):
    """The organization's subscription status refuses this request; `status` is the HTTP code."""

    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.status = status


def check_access(organization, *, write: bool, now: datetime.datetime | None = None) -> None:
    """Raise AccessRefused when `organization`'s subscription does not allow the request: reads
    and writes while trialing or active, reads only while past due (an ended trial included),
    nothing while canceled or suspended. Reads only the organization's loaded columns."""
    status = organization.subscription_status
    if status in (SubscriptionStatus.ACTIVE, SubscriptionStatus.TRIAL) and not trial_over(
        organization, now
    ):
        return
    slug = organization.slug
    if status == SubscriptionStatus.CANCELED:
        raise AccessRefused(
            f"organization '{slug}' has canceled its subscription, so it is closed; an owner "
            f"can subscribe again to reopen it",
            402,
        )
    if status == SubscriptionStatus.SUSPENDED:
        raise AccessRefused(
            f"organization '{slug}' is suspended by the platform; its owner should contact support",
            403,
        )
    if not write:
        return
    if status == SubscriptionStatus.PAST_DUE:
        reason = "its subscription is past due (a payment failed)"
    elif status == SubscriptionStatus.TRIAL:
        reason = f"its trial ended on {organization.trial_ends_at:%Y-%m-%d}"
    else:
        reason = f"its subscription is {status}"
    raise AccessRefused(
        f"organization '{slug}' is read-only because {reason}: reads work, changes do not; an "
        f"owner can pay or subscribe to make it writable again",
        402,
    )
