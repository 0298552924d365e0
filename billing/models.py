"""Billing: service plans, customer agreements, payment methods (plan M010-M012), the
organizations' own subscriptions and their usage (M013-M014)."""

import uuid

from django.contrib.postgres.functions import RandomUUID
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Now
from django.utils import timezone

from tenants.managers import OrganizationOwned
from tenants.models import PlanTier


class BillingFrequency(models.TextChoices):
    WEEKLY = "weekly"
    MONTHLY = "monthly"
    PER_VISIT = "per-visit", "Per visit"


class PaymentType(models.TextChoices):
    CREDIT_CARD = "credit_card", "Credit card"
    ACH = "ach", "ACH"
    CHECK = "check"
    CASH = "cash"


class ServicePlan(OrganizationOwned):
    """A price list entry; organization NULL makes it a global template every organization sees."""

    # Global templates are read by every organization and written only through `unscoped`.
    shares_global_rows = True

    id = models.UUIDField(
        primary_key=True, default=uuid.uuid4, db_default=RandomUUID(), editable=False
    )
    organization = models.ForeignKey(
        "tenants.Organization",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="service_plans",
        db_index=False,
        help_text="Empty: a global template.",
    )
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True, default="", db_default="")
    # NULL: no list price, every agreement on the plan carries its own custom_rate (legacy
    # customers could have a billing frequency without a rate; M001 keeps them as they were).
    base_rate = models.DecimalField(max_digits=10, decimal_places=2, null=True, blank=True)
    billing_frequency = models.CharField(max_length=20, choices=BillingFrequency.choices)
    is_active = models.BooleanField(default=True, db_default=True)
    created_at = models.DateTimeField(auto_now_add=True, db_default=Now())
    updated_at = models.DateTimeField(auto_now=True, db_default=Now())

    class Meta:
        db_table = "service_plans"
        ordering = ["name"]
        constraints = [
            # NULLS NOT DISTINCT (PostgreSQL 15+): global templates' names are unique as well.
            models.UniqueConstraint(
                fields=["organization", "name"],
                name="uq_service_plans_org_name",
                nulls_distinct=False,
            ),
            # The application owns the plans, so their frequency is one of ours. Legacy free
            # text that is not (M001) stays with the customer's agreement, see billing.legacy.
            models.CheckConstraint(
                condition=Q(billing_frequency__in=BillingFrequency.values),
                name="service_plans_billing_frequency_valid",
            ),
        ]
        indexes = [
            models.Index(fields=["organization", "is_active"], name="idx_service_plans_org"),
        ]

    def __str__(self):
        return self.name


class CustomerServiceAgreement(OrganizationOwned):
    """What a customer pays: a plan, a custom rate, or both; end_date NULL is the current one."""

    id = models.UUIDField(
        primary_key=True, default=uuid.uuid4, db_default=RandomUUID(), editable=False
    )
    organization = models.ForeignKey(
        "tenants.Organization",
        on_delete=models.CASCADE,
        related_name="service_agreements",
        db_index=False,
    )
    # The database constraint is created by billing.0002 with ON DELETE CASCADE (Django 5.2
    # cannot declare it): the old application keeps deleting customers during the expand
    # phase and must not fail on the agreements M001 gave them.
    customer = models.ForeignKey(
        "routing.Customer",
        on_delete=models.CASCADE,
        related_name="service_agreements",
        db_index=False,
        db_constraint=False,
    )
    service_plan = models.ForeignKey(
        ServicePlan,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="agreements",
        db_index=False,
        help_text="Empty: a custom agreement.",
    )
    custom_rate = models.DecimalField(max_digits=10, decimal_places=2, null=True, blank=True)
    effective_date = models.DateField()
    end_date = models.DateField(null=True, blank=True, help_text="Empty: the current agreement.")
    # NULL and '' differ in the legacy column this is moved from, and M001 restores it exactly;
    # 500 is that column's width, so the reverse can always put a value back.
    rate_notes = models.CharField(max_length=500, null=True, blank=True)  # noqa: DJ001
    created_at = models.DateTimeField(auto_now_add=True, db_default=Now())
    updated_at = models.DateTimeField(auto_now=True, db_default=Now())

    class Meta:
        db_table = "customer_service_agreements"
        ordering = ["customer", "-effective_date"]
        constraints = [
            # At most one current agreement per customer; any number of ended ones (history).
            # Per organization (billing.0008): the same rule, since a customer has one
            # organization, but an agreement pointed at another organization's customer then
            # fails on the foreign key, not on this index (which would tell what B has).
            models.UniqueConstraint(
                fields=["organization", "customer"],
                condition=Q(end_date__isnull=True),
                name="uq_agreements_one_current_per_customer",
            ),
            models.CheckConstraint(
                condition=Q(end_date__isnull=True) | Q(end_date__gte=F("effective_date")),
                name="agreements_end_after_effective",
            ),
        ]
        indexes = [
            models.Index(fields=["customer", "effective_date"], name="idx_agreements_customer"),
            models.Index(fields=["organization"], name="idx_agreements_org"),
            models.Index(
                fields=["service_plan"],
                name="idx_agreements_service_plan",
                condition=Q(service_plan__isnull=False),
            ),
        ]

    def __str__(self):
        return f"{self.customer_id} from {self.effective_date}"

    @property
    def is_current(self) -> bool:
        return self.end_date is None


class PaymentMethod(OrganizationOwned):
    """How a customer pays: a reference to Stripe and the last four digits, never a card number."""

    id = models.UUIDField(
        primary_key=True, default=uuid.uuid4, db_default=RandomUUID(), editable=False
    )
    organization = models.ForeignKey(
        "tenants.Organization",
        on_delete=models.CASCADE,
        related_name="payment_methods",
        db_index=False,
    )
    # ON DELETE CASCADE in the database, created by billing.0003: see CustomerServiceAgreement.
    customer = models.ForeignKey(
        "routing.Customer",
        on_delete=models.CASCADE,
        related_name="payment_methods",
        db_index=False,
        db_constraint=False,
    )
    # No CHECK on purpose, and nullable: M001 moves the legacy free-text payment_method_type
    # here verbatim (it may hold any spelling, or be NULL on rows that only have Stripe ids),
    # and its reverse must put back exactly what was there. The choices guide forms only.
    payment_type = models.CharField(  # noqa: DJ001
        max_length=20, choices=PaymentType.choices, null=True, blank=True
    )
    is_primary = models.BooleanField(default=False, db_default=False)
    is_active = models.BooleanField(default=True, db_default=True)
    # Nullable, widths as the legacy columns: NULL and '' are kept apart for M001's reverse.
    stripe_customer_id = models.CharField(max_length=100, null=True, blank=True)  # noqa: DJ001
    stripe_payment_method_id = models.CharField(max_length=100, null=True, blank=True)  # noqa: DJ001
    last_four = models.CharField(max_length=4, null=True, blank=True)  # noqa: DJ001
    brand = models.CharField(max_length=50, null=True, blank=True)  # noqa: DJ001
    created_at = models.DateTimeField(auto_now_add=True, db_default=Now())
    updated_at = models.DateTimeField(auto_now=True, db_default=Now())

    class Meta:
        db_table = "payment_methods"
        ordering = ["customer", "-is_primary", "-created_at"]
        constraints = [
            # At most one active primary method per customer; inactive ones are history.
            # Per organization (billing.0008), as the agreements' rule.
            models.UniqueConstraint(
                fields=["organization", "customer"],
                condition=Q(is_primary=True, is_active=True),
                name="uq_payment_methods_one_active_primary",
            ),
        ]
        indexes = [
            models.Index(fields=["customer"], name="idx_payment_methods_customer"),
            models.Index(fields=["organization"], name="idx_payment_methods_org"),
            models.Index(
                fields=["stripe_customer_id"],
                name="idx_payment_methods_stripe_cus",
                condition=Q(stripe_customer_id__isnull=False),
            ),
        ]

    def __str__(self):
        kind = self.get_payment_type_display() if self.payment_type else "payment method"
        return f"{kind} ending {self.last_four}" if self.last_four else kind


class SubscriptionStatus(models.TextChoices):
    """Stripe's subscription statuses that RouteOptimizer acts on."""

    TRIALING = "trialing"
    ACTIVE = "active"
    PAST_DUE = "past_due"
    CANCELED = "canceled"


class OrganizationSubscription(OrganizationOwned):
    """An organization's RouteOptimizer subscription, mirrored from Stripe."""

    id = models.UUIDField(
        primary_key=True, default=uuid.uuid4, db_default=RandomUUID(), editable=False
    )
    organization = models.ForeignKey(
        "tenants.Organization",
        on_delete=models.CASCADE,
        related_name="subscriptions",
        db_index=False,
    )
    stripe_subscription_id = models.CharField(max_length=100)
    plan_tier = models.CharField(max_length=50, choices=PlanTier.choices)
    status = models.CharField(max_length=50, choices=SubscriptionStatus.choices)
    monthly_price = models.DecimalField(max_digits=10, decimal_places=2)
    current_period_start = models.DateTimeField()
    current_period_end = models.DateTimeField()
    trial_start = models.DateTimeField(null=True, blank=True)
    trial_end = models.DateTimeField(null=True, blank=True)
    cancel_at_period_end = models.BooleanField(default=False, db_default=False)
    canceled_at = models.DateTimeField(null=True, blank=True)
    cancellation_reason = models.TextField(blank=True, default="", db_default="")
    created_at = models.DateTimeField(auto_now_add=True, db_default=Now())
    updated_at = models.DateTimeField(auto_now=True, db_default=Now())

    class Meta:
        db_table = "organization_subscriptions"
        ordering = ["organization", "-current_period_start"]
        constraints = [
            models.UniqueConstraint(
                fields=["stripe_subscription_id"], name="uq_org_subscriptions_stripe_id"
            ),
            # One live subscription per organization; canceled ones are history.
            models.UniqueConstraint(
                fields=["organization"],
                condition=~Q(status=SubscriptionStatus.CANCELED),
                name="uq_org_subscriptions_one_live",
            ),
            models.CheckConstraint(
                condition=Q(plan_tier__in=PlanTier.values),
                name="org_subscriptions_plan_tier_valid",
            ),
            models.CheckConstraint(
                condition=Q(status__in=SubscriptionStatus.values),
                name="org_subscriptions_status_valid",
            ),
            models.CheckConstraint(
                condition=Q(monthly_price__gte=0), name="org_subscriptions_price_not_negative"
            ),
            models.CheckConstraint(
                condition=Q(current_period_end__gte=F("current_period_start")),
                name="org_subscriptions_period_ordered",
            ),
            models.CheckConstraint(
                condition=Q(trial_start__isnull=True)
                | Q(trial_end__isnull=True)
                | Q(trial_end__gte=F("trial_start")),
                name="org_subscriptions_trial_ordered",
            ),
            models.CheckConstraint(
                condition=~Q(status=SubscriptionStatus.CANCELED) | Q(canceled_at__isnull=False),
                name="org_subscriptions_canceled_has_date",
            ),
        ]
        indexes = [
            models.Index(fields=["organization", "status"], name="idx_org_subscriptions_org"),
        ]

    def __str__(self):
        return f"{self.organization} {self.plan_tier} ({self.status})"


class UsageMetric(models.TextChoices):
    CUSTOMERS_CREATED = "customers_created"
    ROUTES_OPTIMIZED = "routes_optimized"
    API_CALLS = "api_calls", "API calls"
    GEOCODING_REQUESTS = "geocoding_requests"


class UsageRecord(OrganizationOwned):
    """One metered event (or a batch of them): append-only, billing evidence.

    UPDATE and DELETE are rejected by a trigger (billing.0005); a correction is a new record
    with a negative quantity. Organizations with usage cannot be deleted by accident (PROTECT);
    billing.services.dangerously_purge_organization_usage is the one way to remove it.
    """

    id = models.UUIDField(
        primary_key=True, default=uuid.uuid4, db_default=RandomUUID(), editable=False
    )
    organization = models.ForeignKey(
        "tenants.Organization",
        on_delete=models.PROTECT,
        related_name="usage_records",
        db_index=False,
    )
    metric = models.CharField(max_length=50, choices=UsageMetric.choices)
    quantity = models.BigIntegerField(default=1, db_default=1)
    metadata = models.JSONField(default=dict, db_default={}, blank=True)
    recorded_at = models.DateTimeField(default=timezone.now, db_default=Now())

    class Meta:
        db_table = "usage_tracking"
        ordering = ["-recorded_at"]
        constraints = [
            # A new metric is a one-line migration (drop and re-add this CHECK, NOT VALID then
            # VALIDATE): a misspelt metric would otherwise go unbilled without anyone noticing.
            models.CheckConstraint(
                condition=Q(metric__in=UsageMetric.values), name="usage_tracking_metric_valid"
            ),
            models.CheckConstraint(
                condition=~Q(quantity=0), name="usage_tracking_quantity_not_zero"
            ),
            # api_calls are aggregated: one row per organization and hour (recorded_at is the
            # hour's start), which billing.meter adds to with an upsert (billing.0009).
            models.UniqueConstraint(
                fields=["organization", "metric", "recorded_at"],
                condition=Q(metric="api_calls"),
                name="uq_usage_api_calls_hourly",
            ),
        ]
        indexes = [
            models.Index(
                fields=["organization", "metric", "recorded_at"],
                name="idx_usage_org_metric_recorded",
            ),
        ]

    def __str__(self):
        return f"{self.organization_id} {self.metric} {self.quantity:+d} at {self.recorded_at}"


class BillingWebhookEvent(OrganizationOwned):
    """A Stripe event the billing webhook applied: each event id is applied once per
    organization (Stripe retries deliveries, and a captured request can be replayed within the
    signature's tolerance)."""

    id = models.UUIDField(
        primary_key=True, default=uuid.uuid4, db_default=RandomUUID(), editable=False
    )
    organization = models.ForeignKey(
        "tenants.Organization",
        on_delete=models.CASCADE,
        related_name="billing_webhook_events",
        db_index=False,
    )
    stripe_event_id = models.CharField(max_length=255)
    event_type = models.CharField(max_length=100)
    # When Stripe created the event: an older event arriving after a newer one changes nothing.
    event_created_at = models.DateTimeField()
    received_at = models.DateTimeField(auto_now_add=True, db_default=Now())

    class Meta:
        db_table = "billing_webhook_events"
        ordering = ["-event_created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "stripe_event_id"], name="uq_billing_webhook_events_event"
            ),
        ]
        indexes = [
            models.Index(
                fields=["organization", "event_created_at"], name="idx_billing_webhook_events_org"
            ),
        ]

    def __str__(self):
        return f"{self.event_type} {self.stripe_event_id}"
