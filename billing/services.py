"""Billing writes that need more than a model save."""

from __future__ import annotations

from django.db import connection, transaction

from billing.models import UsageRecord
from tenants.claims import EVERYWHERE, platform_access
from tenants.context import organization_context
from tenants.models import Organization


def dangerously_purge_organization_usage(*, organization: Organization) -> int:
    """Delete every usage record of `organization`; returns how many. Irreversible.

    usage_tracking is append-only (billing.0005): its trigger rejects DELETE unless the
    transaction sets billing.allow_usage_purge as the platform or the owner (billing.0011). This is
    the one caller that does, for the
    deliberate removal of an organization (after which `organization.delete()` works).
    """
    # In the organization's own context: the purge never reaches another organization's rows;
    # as the platform, which alone may purge (billing.0011: the setting alone is no permission).
    with (
        organization_context(organization),
        platform_access(EVERYWHERE),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute("SELECT set_config('billing.allow_usage_purge', 'on', true)")
        deleted, _ = UsageRecord.objects.filter(organization=organization).delete()
        cursor.execute("SELECT set_config('billing.allow_usage_purge', '', true)")
    return deleted


# --- plans and trials ----------------------------------------------------------------------------


def organization_change_plan(
    *, organization: Organization, tier: str, keep: frozenset[str] = frozenset()
) -> Organization:
    """Move `organization` to `tier` with that tier's default limits and features (billing.plans);
    the columns in `keep` stay (an override the caller sets itself). The platform's change:
    the caller runs as a superuser, the owner, or the verified webhook."""
    from billing.plans import LIMIT_COLUMNS, apply_plan

    apply_plan(organization, tier, keep=keep)
    organization.save(update_fields=["plan_tier", *LIMIT_COLUMNS, "features_enabled", "updated_at"])
    return organization


def organizations_expire_trials(*, now=None) -> list[str]:
    """Every organization whose trial has ended becomes past due (read-only), and so does its
    trialing subscription row; returns their slugs. Idempotent: a second run finds nothing.

    One transaction; the rows are locked and re-checked by the UPDATE itself, so it is safe to
    run from cron while requests (or the billing webhook) change organizations."""
    from django.utils import timezone

    from billing.models import OrganizationSubscription, SubscriptionStatus
    from tenants.models import SubscriptionStatus as OrganizationStatus

    now = now or timezone.now()
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE organizations SET subscription_status = %s, updated_at = now() "
                "WHERE subscription_status = %s AND trial_ends_at <= %s RETURNING id, slug",
                [OrganizationStatus.PAST_DUE, OrganizationStatus.TRIAL, now],
            )
            expired = cursor.fetchall()
        ids = [row[0] for row in expired]
        if ids:
            OrganizationSubscription.unscoped.filter(
                organization_id__in=ids, status=SubscriptionStatus.TRIALING
            ).update(status=SubscriptionStatus.PAST_DUE)
    return sorted(row[1] for row in expired)
