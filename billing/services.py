"""Billing writes that need more than a model save."""

from __future__ import annotations

from django.db import connection, transaction

from billing.models import UsageRecord
from tenants.context import organization_context
from tenants.models import Organization


def dangerously_purge_organization_usage(*, organization: Organization) -> int:
    """Delete every usage record of `organization`; returns how many. Irreversible.

    usage_tracking is append-only (billing.0005): its trigger rejects DELETE unless the
    transaction sets billing.allow_usage_purge. This is the one caller that does, for the
    deliberate removal of an organization (after which `organization.delete()` works).
    """
    # In the organization's own context: the purge never reaches another organization's rows.
    with (
        organization_context(organization),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute("SELECT set_config('billing.allow_usage_purge', 'on', true)")
        deleted, _ = UsageRecord.objects.filter(organization=organization).delete()
        cursor.execute("SELECT set_config('billing.allow_usage_purge', '', true)")
    return deleted
