"""Two organizations with rows in every tenant table and one member per role: the isolation
suites (API, admin) look for the other organization's rows everywhere, so a missing filter
shows up as a leak."""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field

import factory

from accounts.models import User
from billing.models import (
    CustomerServiceAgreement,
    OrganizationSubscription,
    PaymentMethod,
    ServicePlan,
    UsageRecord,
)
from routing.models import Customer, Driver, Route, RouteStop
from tenants.context import organization_context
from tenants.models import Organization, OrganizationUser, Role
from tests.factories import (
    CustomerFactory,
    CustomerServiceAgreementFactory,
    OrganizationSubscriptionFactory,
    PaymentMethodFactory,
    ServicePlanFactory,
    UsageRecordFactory,
)

PASSWORD = "correct horse battery staple"


class DriverFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Driver

    name = factory.Sequence(lambda n: f"Driver {n}")
    email = factory.Sequence(lambda n: f"driver{n}@example.test")
    start_location_address = "1 Depot Rd"
    end_location_address = "1 Depot Rd"
    working_hours_start = datetime.time(7, 0)
    working_hours_end = datetime.time(16, 0)
    max_customers_per_day = 20


class RouteFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Route

    service_day = "monday"
    total_customers = 2


class RouteStopFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = RouteStop

    sequence = factory.Sequence(lambda n: n + 1)


@dataclass
class OrganizationData:
    organization: Organization
    members: dict[Role, User] = field(default_factory=dict)
    rows: dict[type, list] = field(default_factory=dict)

    @property
    def slug(self) -> str:
        return self.organization.slug

    def ids(self, model) -> list[str]:
        return [str(row.pk) for row in self.rows[model]]

    def first(self, model):
        return self.rows[model][0]


def seed_organization(slug: str, name: str) -> OrganizationData:
    """An organization, a member per role (technician = the first driver), and rows in every
    tenant table. Emails are `<role>@<slug>.test`; every password is PASSWORD."""
    organization = Organization.objects.create(name=name, slug=slug, subdomain=slug)
    data = OrganizationData(organization)
    for role in Role:
        user = User.objects.create_user(f"{role}@{slug}.test", PASSWORD)
        OrganizationUser.objects.create(
            organization=organization, user=user, role=role, is_primary_org=True
        )
        data.members[role] = user

    with organization_context(organization):
        own = {"organization": organization}
        # The technician's driver row: linked by email, written in another case on purpose.
        technician_driver = DriverFactory(
            **own, name=f"{name} technician", email=f"TECHNICIAN@{slug.upper()}.test"
        )
        other_driver = DriverFactory(**own, name=f"{name} second driver")
        customers = [
            CustomerFactory(
                **own,
                display_name=f"{name} customer {n}",
                email=f"customer{n}@{slug}.test",
                service_day=day,
                assigned_driver=driver,
            )
            for n, (day, driver) in enumerate(
                [
                    ("monday", technician_driver),
                    ("tuesday", other_driver),
                    ("monday", other_driver),
                ]
            )
        ]
        technician_route = RouteFactory(**own, driver=technician_driver, service_day="monday")
        other_route = RouteFactory(**own, driver=other_driver, service_day="tuesday")
        stops = [
            RouteStopFactory(**own, route=technician_route, customer=customers[0]),
            RouteStopFactory(**own, route=other_route, customer=customers[1]),
            RouteStopFactory(**own, route=other_route, customer=customers[2]),
        ]
        plan = ServicePlanFactory(**own, name=f"{name} weekly")
        agreement = CustomerServiceAgreementFactory(**own, customer=customers[0], service_plan=plan)
        payment = PaymentMethodFactory(**own, customer=customers[0])
        subscription = OrganizationSubscriptionFactory(**own)
        usage = UsageRecordFactory(**own)

    data.rows = {
        Driver: [technician_driver, other_driver],
        Customer: customers,
        Route: [technician_route, other_route],
        RouteStop: stops,
        ServicePlan: [plan],
        CustomerServiceAgreement: [agreement],
        PaymentMethod: [payment],
        OrganizationSubscription: [subscription],
        UsageRecord: [usage],
    }
    return data


def unscoped(model):
    """Every organization's rows of `model`, for assertions that must see across organizations."""
    return model.unscoped if hasattr(model, "unscoped") else model._base_manager


def seed_two_organizations() -> tuple[OrganizationData, OrganizationData]:
    return (
        seed_organization("acme", "Acme Pools"),
        seed_organization("blue", "Blue Lagoon Service"),
    )
