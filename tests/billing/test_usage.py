"""Usage metered: customers created, routes optimized, geocoding cache misses, API calls (one
row per organization and hour); read per organization and period (selector, API, admin)."""

import datetime

import pytest
from django.utils import timezone

from billing import meter
from billing.models import UsageMetric, UsageRecord
from billing.selectors import organization_usage
from geocoding.services import cache_lookup, cache_store
from routing.models import Customer, Driver, Route
from tenants.context import organization_context
from tenants.models import Role

NEW_CUSTOMER = {
    "display_name": "New customer",
    "address": "9 Pool Lane",
    "service_type": "residential",
    "difficulty": 1,
    "service_day": "friday",
}


def usage_rows(organization, metric):
    return UsageRecord.unscoped.filter(organization=organization, metric=metric)


def total(organization, metric) -> int:
    return sum(usage_rows(organization, metric).values_list("quantity", flat=True))


@pytest.fixture
def flush_every_request(settings):
    settings.ROUTEOPTIMIZER_API_CALLS_FLUSH_SECONDS = 0


def test_a_sequence_of_api_calls_leaves_one_row_per_hour(
    acme, blue, client_as, flush_every_request
):
    before = total(acme.organization, UsageMetric.CUSTOMERS_CREATED)
    client = client_as(acme, Role.MANAGER)
    assert client.get("/api/v1/customers/").status_code == 200
    assert client.get("/api/v1/drivers/").status_code == 200
    assert client.post("/api/v1/customers/", NEW_CUSTOMER, format="json").status_code == 201
    # Invalid input is a call (counted); a role's refusal is not (it never reached the check).
    assert client.post("/api/v1/customers/", {}, format="json").status_code == 400
    assert client.delete(f"/api/v1/customers/{acme.rows[Customer][0].pk}/").status_code == 403
    client_as(blue).get("/api/v1/routes/")

    rows = usage_rows(acme.organization, UsageMetric.API_CALLS).filter(
        recorded_at=meter.hour_of(timezone.now())
    )
    assert [row.quantity for row in rows] == [4]  # one row for the hour
    assert total(acme.organization, UsageMetric.CUSTOMERS_CREATED) == before + 1
    assert total(blue.organization, UsageMetric.API_CALLS) == 2  # its own seed row + 1

    client.get("/api/v1/customers/")
    assert [row.quantity for row in rows.all()] == [5]


def test_calls_are_counted_in_memory_until_the_interval_is_due(acme, client_as, settings):
    settings.ROUTEOPTIMIZER_API_CALLS_FLUSH_SECONDS = 3600
    client = client_as(acme)
    for _ in range(3):
        client.get("/api/v1/drivers/")
    hour = meter.hour_of(timezone.now())
    assert not usage_rows(acme.organization, UsageMetric.API_CALLS).filter(recorded_at=hour)
    assert meter.flush() == 1
    assert usage_rows(acme.organization, UsageMetric.API_CALLS).get(recorded_at=hour).quantity == 3


def test_routes_are_metered_when_created_and_when_re_optimized(acme, client_as):
    before = total(acme.organization, UsageMetric.ROUTES_OPTIMIZED)
    client = client_as(acme)
    driver = acme.rows[Driver][0]
    created = client.post(
        "/api/v1/routes/", {"driver": str(driver.pk), "service_day": "friday"}, format="json"
    )
    assert created.status_code == 201
    route = created.json()["id"]
    client.patch(f"/api/v1/routes/{route}/", {"optimization_score": 0.93}, format="json")
    client.patch(f"/api/v1/routes/{route}/", {"optimization_score": 0.93}, format="json")  # same
    client.patch(f"/api/v1/routes/{route}/", {"service_day": "saturday"}, format="json")

    rows = usage_rows(acme.organization, UsageMetric.ROUTES_OPTIMIZED).filter(
        metadata__route_id=route
    )
    assert sorted(rows.values_list("metadata__reason", flat=True)) == ["created", "re-optimized"]
    assert total(acme.organization, UsageMetric.ROUTES_OPTIMIZED) == before + 2
    assert Route.unscoped.get(pk=route).service_day == "saturday"


def test_geocoding_cache_misses_are_metered_hits_are_not(acme):
    with organization_context(acme.organization):
        assert cache_lookup("12 Nowhere Rd, Springfield") is None
        cache_store(
            address="12 Nowhere Rd, Springfield",
            latitude=1.0,
            longitude=2.0,
            provider="openstreetmap",
        )
        assert cache_lookup("12 nowhere rd, springfield") is not None
    assert total(acme.organization, UsageMetric.GEOCODING_REQUESTS) == 1


def test_the_selector_sums_a_period_per_metric(acme, blue):
    now = timezone.now()
    usage = organization_usage(
        organization=acme.organization, start=now - datetime.timedelta(days=1), end=now
    )
    assert set(usage.totals) == set(UsageMetric.values)
    # The seed: 3 customers, 2 routes, 1 api_calls record of its own.
    assert usage.totals[UsageMetric.CUSTOMERS_CREATED] == 3
    assert usage.totals[UsageMetric.ROUTES_OPTIMIZED] == 2
    assert usage.totals[UsageMetric.API_CALLS] == 1
    empty = organization_usage(
        organization=acme.organization,
        start=now - datetime.timedelta(days=30),
        end=now - datetime.timedelta(days=29),
    )
    assert set(empty.totals.values()) == {0}


def test_usage_api_for_owners(acme, client_as):
    today = timezone.now().date()
    tomorrow = today + datetime.timedelta(days=1)
    owner = client_as(acme)
    response = owner.get(f"/api/v1/usage?from={today}&to={tomorrow}")
    assert response.status_code == 200
    body = response.json()
    assert body["organization"] == "acme"
    assert body["usage"]["customers_created"] == 3
    assert body["from"].startswith(str(today))

    assert owner.get("/api/v1/usage").status_code == 200  # default: the last 30 days
    for query, problem in (
        ("from=yesterday", "not a date"),
        (f"from={tomorrow}&to={today}", "before"),
    ):
        bad = owner.get(f"/api/v1/usage?{query}")
        assert bad.status_code == 400
        assert problem in bad.json()["error"]

    refused = client_as(acme, Role.ADMIN).get("/api/v1/usage")
    assert refused.status_code == 403
    assert "owners" in refused.json()["error"]


def test_the_admin_organization_page_shows_the_last_30_days(acme, client):
    owner = acme.members[Role.OWNER]
    owner.is_staff = True
    owner.save()
    from django.contrib.auth.models import Permission

    owner.user_permissions.set(Permission.objects.all())
    client.force_login(owner)
    page = client.get(f"/admin/tenants/organization/{acme.organization.pk}/change/")
    assert page.status_code == 200
    assert b"usage, last 30 days" in page.content.lower()
    assert b"Customers Created: 3" in page.content
