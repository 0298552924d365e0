"""Organizations (plan M002), memberships (M004) and the pre-migration snapshot."""

import re
import uuid

from django.conf import settings
from django.contrib.postgres.functions import RandomUUID
from django.db import models
from django.db.models.functions import Lower, Now

DEFAULT_ORGANIZATION_SLUG = "demo"

# A DNS label: what `<slug>.<base domain>` and the subdomain column may hold.
_DNS_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")


class PlanTier(models.TextChoices):
    STARTER = "starter"
    PROFESSIONAL = "professional"
    ENTERPRISE = "enterprise"


class SubscriptionStatus(models.TextChoices):
    TRIAL = "trial"
    ACTIVE = "active"
    PAST_DUE = "past_due"
    CANCELED = "canceled"
    SUSPENDED = "suspended"


class MapProvider(models.TextChoices):
    OPENSTREETMAP = "openstreetmap"
    GOOGLE_MAPS = "google_maps"


class Organization(models.Model):
    id = models.UUIDField(
        primary_key=True, default=uuid.uuid4, db_default=RandomUUID(), editable=False
    )
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=100)
    subdomain = models.CharField(max_length=63, null=True, blank=True)  # noqa: DJ001 - NULL = none

    plan_tier = models.CharField(
        max_length=50,
        choices=PlanTier.choices,
        default=PlanTier.STARTER,
        db_default=PlanTier.STARTER,
    )
    subscription_status = models.CharField(
        max_length=50,
        choices=SubscriptionStatus.choices,
        default=SubscriptionStatus.TRIAL,
        db_default=SubscriptionStatus.TRIAL,
    )
    trial_ends_at = models.DateTimeField(null=True, blank=True)
    trial_days = models.IntegerField(null=True, blank=True, default=14, db_default=14)

    billing_email = models.EmailField(max_length=255, blank=True, default="")
    billing_address = models.TextField(blank=True, default="")
    stripe_customer_id = models.CharField(max_length=100, blank=True, default="")
    stripe_subscription_id = models.CharField(max_length=100, blank=True, default="")

    max_users = models.IntegerField(null=True, blank=True)
    max_customers = models.IntegerField(null=True, blank=True)
    max_techs = models.IntegerField(null=True, blank=True)
    max_routes_per_day = models.IntegerField(null=True, blank=True)

    features_enabled = models.JSONField(default=dict, db_default={}, blank=True)

    default_map_provider = models.CharField(
        max_length=50,
        choices=MapProvider.choices,
        default=MapProvider.OPENSTREETMAP,
        db_default=MapProvider.OPENSTREETMAP,
    )
    google_maps_api_key = models.CharField(max_length=200, blank=True, default="")

    logo_url = models.URLField(max_length=500, blank=True, default="")
    primary_color = models.CharField(max_length=7, blank=True, default="")
    timezone = models.CharField(
        max_length=50, default="America/Los_Angeles", db_default="America/Los_Angeles"
    )

    is_active = models.BooleanField(default=True, db_default=True)
    onboarded_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_default=Now())
    updated_at = models.DateTimeField(auto_now=True, db_default=Now())

    class Meta:
        db_table = "organizations"
        ordering = ["name"]
        constraints = [
            # The plan's idx_orgs_slug / idx_orgs_subdomain are these constraints' unique indexes.
            models.UniqueConstraint(fields=["slug"], name="idx_orgs_slug"),
            models.UniqueConstraint(fields=["subdomain"], name="idx_orgs_subdomain"),
            # Organizations are resolved case-insensitively from both (tenants.services), so
            # they are unique whatever the case (tenants.0008, built CONCURRENTLY).
            models.UniqueConstraint(Lower("slug"), name="idx_orgs_slug_lower"),
            models.UniqueConstraint(Lower("subdomain"), name="idx_orgs_subdomain_lower"),
            models.CheckConstraint(
                condition=models.Q(plan_tier__in=PlanTier.values),
                name="organizations_plan_tier_valid",
            ),
            models.CheckConstraint(
                condition=models.Q(subscription_status__in=SubscriptionStatus.values),
                name="organizations_subscription_status_valid",
            ),
        ]
        indexes = [
            models.Index(fields=["subscription_status"], name="idx_orgs_subscription_status"),
            models.Index(fields=["stripe_customer_id"], name="idx_orgs_stripe_customer"),
        ]

    def __str__(self):
        return self.name

    def save(self, *args, **kwargs):
        # Lower case on every save, whoever writes: `GLOBEX` and `globex` are one organization.
        self.slug = (self.slug or "").strip().lower()
        self.subdomain = (self.subdomain or "").strip().lower() or None
        super().save(*args, **kwargs)

    @staticmethod
    def valid_slug(value: str) -> bool:
        """A slug that works as a subdomain label: lower-case letters, digits, inner hyphens."""
        return bool(_DNS_LABEL.fullmatch(value or ""))

    @staticmethod
    def valid_subdomain(value: str) -> bool:
        return bool(_DNS_LABEL.fullmatch(value or ""))


class Role(models.TextChoices):
    """Membership roles, strongest first: owner > admin > manager > technician > readonly."""

    OWNER = "owner"
    ADMIN = "admin"
    MANAGER = "manager"
    TECHNICIAN = "technician"
    READONLY = "readonly"


class OrganizationUser(models.Model):
    id = models.UUIDField(
        primary_key=True, default=uuid.uuid4, db_default=RandomUUID(), editable=False
    )
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="memberships", db_index=False
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="memberships",
        db_index=False,
    )
    role = models.CharField(max_length=50, choices=Role.choices)
    is_primary_org = models.BooleanField(default=False, db_default=False)
    # Only the SHA-256 of the invitation token is stored (accounts.tokens).
    invitation_token = models.CharField(max_length=100, null=True, blank=True, editable=False)  # noqa: DJ001
    invitation_accepted_at = models.DateTimeField(null=True, blank=True)
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        db_column="invited_by",
    )
    created_at = models.DateTimeField(auto_now_add=True, db_default=Now())
    updated_at = models.DateTimeField(auto_now=True, db_default=Now())

    class Meta:
        db_table = "organization_users"
        ordering = ["organization", "user"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "user"], name="uq_org_user"),
            # One primary organization per user: a partial unique index.
            models.UniqueConstraint(
                fields=["user"],
                condition=models.Q(is_primary_org=True),
                name="uq_org_users_one_primary_org",
            ),
            models.CheckConstraint(
                condition=models.Q(role__in=Role.values), name="organization_users_role_valid"
            ),
        ]
        indexes = [
            models.Index(fields=["user"], name="idx_org_users_user"),
            models.Index(fields=["organization"], name="idx_org_users_org"),
            models.Index(fields=["role"], name="idx_org_users_role"),
            models.Index(
                fields=["invitation_token"],
                name="idx_org_users_invitation_token",
                condition=models.Q(invitation_token__isnull=False),
            ),
        ]

    def __str__(self):
        return f"{self.user} in {self.organization} ({self.role})"


class LegacySnapshot(models.Model):
    """Per legacy table, what it held just before the SaaS migration changed anything.

    The per-row digests behind `checksum` live in tenancy_snapshot_rows_<table> (see
    tenants.conversion.snapshot); validate_tenancy compares the live tables against both.
    """

    table_name = models.CharField(max_length=63, primary_key=True)
    row_count = models.BigIntegerField()
    checksum = models.DecimalField(max_digits=30, decimal_places=0)
    columns = models.JSONField(help_text="The legacy columns the digests cover, in order.")
    taken_at = models.DateTimeField(db_default=Now())

    class Meta:
        db_table = "tenancy_legacy_snapshot"
        ordering = ["table_name"]

    def __str__(self):
        return f"{self.table_name}: {self.row_count} rows"
