"""Two organizations with rows in every tenant table: a missing filter shows up as a leak."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from billing.models import (
    BillingWebhookEvent,
    CustomerServiceAgreement,
    OrganizationSubscription,
    PaymentMethod,
    ServicePlan,
    UsageRecord,
)
from routing.models import Customer, Driver, Route, RouteStop
from tenants.models import Organization
from tests.factories import (
    BillingWebhookEventFactory,
    CustomerFactory,
    CustomerServiceAgreementFactory,
    DriverFactory,
    OrganizationFactory,
    OrganizationSubscriptionFactory,
    PaymentMethodFactory,
    RouteFactory,
    RouteStopFactory,
    ServicePlanFactory,
    UsageRecordFactory,
)

TENANT_MODELS = (
    Customer,
    Driver,
    Route,
    RouteStop,
    ServicePlan,
    CustomerServiceAgreement,
    PaymentMethod,
    OrganizationSubscription,
    UsageRecord,
    BillingWebhookEvent,
)


@dataclass
class Seeded:
    organization: Organization
    rows: dict[type, list] = field(default_factory=dict)

    def ids(self, model) -> set:
        return {row.pk for row in self.rows[model]}


def seed(organization: Organization, *, customers: int) -> Seeded:
    """Rows of `organization` in every tenant table; `customers` varies, so counts differ."""
    drivers = [DriverFactory(organization=organization) for _ in range(2)]
    customer_rows = [
        CustomerFactory(organization=organization, assigned_driver=drivers[n % 2])
        for n in range(customers)
    ]
    routes = [RouteFactory(organization=organization, driver=driver) for driver in drivers]
    stops = [
        RouteStopFactory(organization=organization, route=routes[n % 2], customer=customer)
        for n, customer in enumerate(customer_rows)
    ]
    plan = ServicePlanFactory(organization=organization)
    return Seeded(
        organization,
        {
            Customer: customer_rows,
            Driver: drivers,
            Route: routes,
            RouteStop: stops,
            ServicePlan: [plan],
            CustomerServiceAgreement: [
                CustomerServiceAgreementFactory(
                    organization=organization, customer=customer_rows[0], service_plan=plan
                )
            ],
            PaymentMethod: [
                PaymentMethodFactory(organization=organization, customer=customer_rows[0])
            ],
            OrganizationSubscription: [OrganizationSubscriptionFactory(organization=organization)],
            # The usage the rows above metered (customers created, routes optimized) and two
            # records of their own.
            UsageRecord: [
                *UsageRecord.unscoped.filter(organization=organization),
                *(UsageRecordFactory(organization=organization) for _ in range(2)),
            ],
            BillingWebhookEvent: [BillingWebhookEventFactory(organization=organization)],
        },
    )


@pytest.fixture
def acme(db) -> Seeded:
    return seed(OrganizationFactory(name="Acme Pools", slug="acme"), customers=3)


@pytest.fixture
def blue(db) -> Seeded:
    return seed(OrganizationFactory(name="Blue Lagoon", slug="blue"), customers=2)


@pytest.fixture
def global_template(db) -> ServicePlan:
    """A service plan without an organization: every organization reads it, none writes it."""
    return ServicePlanFactory(organization=None, name="Global weekly template")
