"""Reads of billing data that more than one caller needs: an organization's usage."""

from __future__ import annotations

import datetime
from typing import NamedTuple

from django.db.models import Sum

from billing.models import UsageMetric, UsageRecord
from tenants.context import organization_context


class Usage(NamedTuple):
    start: datetime.datetime
    end: datetime.datetime
    totals: dict[str, int]  # every metric, 0 where nothing was recorded


def organization_usage(*, organization, start: datetime.datetime, end: datetime.datetime) -> Usage:
    """`organization`'s usage per metric with `start <= recorded_at < end`. api_calls rows are
    hours (recorded_at is the hour's start), so a period counts the hours that start in it.
    One query, on the (organization_id, metric, recorded_at) index."""
    with organization_context(organization):
        rows = (
            UsageRecord.objects.filter(
                organization=organization, recorded_at__gte=start, recorded_at__lt=end
            )
            .values("metric")
            .annotate(total=Sum("quantity"))
            .order_by()
        )
        found = {row["metric"]: row["total"] for row in rows}
    return Usage(start, end, {metric: int(found.get(metric) or 0) for metric in UsageMetric.values})


def organization_usage_last_days(*, organization, days: int = 30, now=None) -> Usage:
    from django.utils import timezone

    end = now or timezone.now()
    return organization_usage(
        organization=organization, start=end - datetime.timedelta(days=days), end=end
    )
