"""factory-boy factories shared by the suites: real rows in real PostgreSQL."""

import datetime
import hashlib
import uuid
from decimal import Decimal

import factory
from django.utils import timezone

from accounts.models import User
from billing.models import (
    BillingFrequency,
    BillingWebhookEvent,
    CustomerServiceAgreement,
    OrganizationSubscription,
    PaymentMethod,
    PaymentType,
    ServicePlan,
    SubscriptionStatus,
    UsageMetric,
    UsageRecord,
)
from geocoding.models import GeocodingCacheEntry
from routing.models import Customer, Driver, Route, RouteStop
from tenants.context import current_organization_or_none, organization_context
from tenants.models import Organization, OrganizationUser, PlanTier, Role


def _current_or_new_organization():
    return current_organization_or_none() or OrganizationFactory()


class OrganizationOwnedFactory(factory.django.DjangoModelFactory):
    """Creates a tenant-owned row as test set-up: inside its own organization's context (where
    tenant-owned models save), through the model's `unscoped` manager when it has one, so rows
    of several organizations, and global templates without one, can be set up side by side."""

    class Meta:
        abstract = True

    @classmethod
    def _get_manager(cls, model_class):
        return getattr(model_class, "unscoped", None) or model_class._default_manager

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        with organization_context(kwargs.get("organization")):
            return super()._create(model_class, *args, **kwargs)


# --- tenants and routing -----------------------------------------------------------------------


class PlatformFactory(factory.django.DjangoModelFactory):
    """Creates a row that only the platform may create (an organization, an account, a
    membership) as test set-up: outside any organization, where the suite is the platform
    (tests/conftest.py), whatever organization the test itself runs in."""

    class Meta:
        abstract = True

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        with organization_context(None):
            return super()._create(model_class, *args, **kwargs)


class OrganizationFactory(PlatformFactory):
    class Meta:
        model = Organization

    name = factory.Sequence(lambda n: f"Pool Company {n}")
    slug = factory.Sequence(lambda n: f"pool-company-{n}")


class CustomerFactory(OrganizationOwnedFactory):
    class Meta:
        model = Customer

    organization = factory.LazyFunction(_current_or_new_organization)
    display_name = factory.Sequence(lambda n: f"Customer {n}")
    address = factory.Sequence(lambda n: f"{n} Main St, Springfield")
    service_type = Customer.ServiceType.RESIDENTIAL
    difficulty = 2
    service_day = "monday"


# --- billing -----------------------------------------------------------------------------------


class ServicePlanFactory(OrganizationOwnedFactory):
    class Meta:
        model = ServicePlan

    organization = factory.LazyFunction(_current_or_new_organization)
    name = factory.Sequence(lambda n: f"Weekly plan {n}")
    base_rate = Decimal("125.00")
    billing_frequency = BillingFrequency.WEEKLY


class CustomerServiceAgreementFactory(OrganizationOwnedFactory):
    class Meta:
        model = CustomerServiceAgreement

    customer = factory.SubFactory(CustomerFactory)
    organization = factory.SelfAttribute("customer.organization")
    service_plan = factory.SubFactory(
        ServicePlanFactory, organization=factory.SelfAttribute("..organization")
    )
    effective_date = datetime.date(2025, 1, 1)


class PaymentMethodFactory(OrganizationOwnedFactory):
    class Meta:
        model = PaymentMethod

    customer = factory.SubFactory(CustomerFactory)
    organization = factory.SelfAttribute("customer.organization")
    payment_type = PaymentType.CREDIT_CARD
    is_primary = True
    stripe_customer_id = factory.LazyFunction(lambda: f"cus_{uuid.uuid4().hex[:14]}")
    stripe_payment_method_id = factory.LazyFunction(lambda: f"pm_{uuid.uuid4().hex[:24]}")
    last_four = "4242"
    brand = "Visa"


class OrganizationSubscriptionFactory(OrganizationOwnedFactory):
    class Meta:
        model = OrganizationSubscription

    organization = factory.LazyFunction(_current_or_new_organization)
    stripe_subscription_id = factory.LazyFunction(lambda: f"sub_{uuid.uuid4().hex[:24]}")
    plan_tier = PlanTier.PROFESSIONAL
    status = SubscriptionStatus.ACTIVE
    monthly_price = Decimal("99.00")
    current_period_start = factory.LazyFunction(timezone.now)
    current_period_end = factory.LazyAttribute(
        lambda o: o.current_period_start + datetime.timedelta(days=30)
    )


class UsageRecordFactory(OrganizationOwnedFactory):
    class Meta:
        model = UsageRecord

    organization = factory.LazyFunction(_current_or_new_organization)
    metric = UsageMetric.API_CALLS
    quantity = 1


class BillingWebhookEventFactory(OrganizationOwnedFactory):
    class Meta:
        model = BillingWebhookEvent

    organization = factory.LazyFunction(_current_or_new_organization)
    stripe_event_id = factory.Sequence(lambda n: f"evt_test_{n}")
    event_type = "invoice.payment_succeeded"
    event_created_at = factory.LazyFunction(timezone.now)


# --- geocoding ---------------------------------------------------------------------------------


class GeocodingCacheEntryFactory(factory.django.DjangoModelFactory):
    """A cache row written directly; tests of the service go through geocoding.services."""

    class Meta:
        model = GeocodingCacheEntry

    normalized_address = factory.Sequence(lambda n: f"{n} main st, springfield")
    address_hash = factory.LazyAttribute(
        lambda o: hashlib.sha256(o.normalized_address.encode()).hexdigest()
    )
    latitude = 34.05
    longitude = -118.25
    provider = "openstreetmap"


# --- routing, users and memberships (the isolation suites) -------------------------------------


class DriverFactory(OrganizationOwnedFactory):
    class Meta:
        model = Driver

    organization = factory.LazyFunction(_current_or_new_organization)
    name = factory.Sequence(lambda n: f"Driver {n}")
    start_location_address = "1 Depot Rd, Springfield"
    end_location_address = "1 Depot Rd, Springfield"
    working_hours_start = datetime.time(7, 0)
    working_hours_end = datetime.time(16, 0)
    max_customers_per_day = 20


class RouteFactory(OrganizationOwnedFactory):
    class Meta:
        model = Route

    organization = factory.LazyFunction(_current_or_new_organization)
    driver = factory.SubFactory(DriverFactory, organization=factory.SelfAttribute("..organization"))
    service_day = "monday"


class RouteStopFactory(OrganizationOwnedFactory):
    class Meta:
        model = RouteStop

    organization = factory.LazyFunction(_current_or_new_organization)
    route = factory.SubFactory(RouteFactory, organization=factory.SelfAttribute("..organization"))
    customer = factory.SubFactory(
        CustomerFactory, organization=factory.SelfAttribute("..organization")
    )
    sequence = factory.Sequence(lambda n: n + 1)


class UserFactory(PlatformFactory):
    class Meta:
        model = User

    email = factory.Sequence(lambda n: f"user{n}@example.test")
    password = factory.django.Password("correct horse battery staple")


class MembershipFactory(PlatformFactory):
    class Meta:
        model = OrganizationUser

    organization = factory.SubFactory(OrganizationFactory)
    user = factory.SubFactory(UserFactory)
    role = Role.OWNER
    is_primary_org = True
