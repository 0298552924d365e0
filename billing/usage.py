"""Usage metering: the events usage_tracking records, one row each (billing evidence).

- `customers_created`: a customer inserted, by any path (routing.models.Customer.save).
- `routes_optimized`: a route inserted, or saved with a changed result of optimization (its
  totals, algorithm or score): routing.models.Route.save.
- `geocoding_requests`: a geocoding cache miss, i.e. a lookup that would go to a provider
  (geocoding.services.cache_lookup), for the current organization.
- `api_calls` are aggregated per organization and hour: billing.meter.

Reading usage is billing.selectors.organization_usage.
"""

from __future__ import annotations

from billing.models import UsageMetric, UsageRecord
from tenants.context import current_organization_or_none

OPTIMIZATION_FIELDS = (
    "total_duration_minutes",
    "total_distance_miles",
    "total_customers",
    "optimization_algorithm",
    "optimization_score",
)


def record(
    organization_id, metric: str, *, quantity: int = 1, metadata: dict | None = None
) -> None:
    """One usage row of organization `organization_id`. Through `unscoped`, like the write it
    meters (a row of another organization saved through `unscoped` meters into that one);
    PostgreSQL's policies still decide whether the claim may write it."""
    from billing.limits import enabled

    if not enabled():
        return
    UsageRecord.unscoped.create(
        organization_id=organization_id, metric=metric, quantity=quantity, metadata=metadata or {}
    )


def customer_saved(customer, *, created: bool) -> None:
    if created:
        record(
            customer.organization_id,
            UsageMetric.CUSTOMERS_CREATED,
            metadata={"customer_id": str(customer.pk)},
        )


def route_saved(route, *, created: bool) -> None:
    if created:
        reason = "created"
    elif any(route.loaded_value(name) != getattr(route, name) for name in OPTIMIZATION_FIELDS):
        reason = "re-optimized"
    else:
        return
    record(
        route.organization_id,
        UsageMetric.ROUTES_OPTIMIZED,
        metadata={"route_id": str(route.pk), "service_day": route.service_day, "reason": reason},
    )


def geocoding_cache_missed() -> None:
    """A lookup the cache could not answer: the provider request it stands for is metered for
    the current organization (none current, as in the platform's maintenance: not metered)."""
    organization = current_organization_or_none()
    if organization is not None:
        record(organization.pk, UsageMetric.GEOCODING_REQUESTS)
