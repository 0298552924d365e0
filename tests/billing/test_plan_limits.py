"""Plans defined once and their limits enforced at the write: API, admin, services, at the edge."""

import pytest

from billing import limits
from billing.limits import PlanLimitReached
from billing.models import UsageMetric, UsageRecord
from billing.plans import PLANS, apply_plan
from billing.services import organization_change_plan
from routing.models import Customer, Driver, Route
from tenants.claims import claim_user, platform_access
from tenants.context import organization_context
from tenants.models import Organization, OrganizationUser, PlanTier, Role
from tenants.services import organization_create, organization_invite_member
from tests.billing.conftest import set_columns
from tests.tenancy_data import PASSWORD

CUSTOMER = {
    "display_name": "New customer",
    "address": "9 Pool Lane",
    "service_type": "residential",
    "difficulty": 1,
    "service_day": "friday",
}
DRIVER = {
    "name": "New driver",
    "start_location_address": "1 Depot Rd",
    "end_location_address": "1 Depot Rd",
    "working_hours_start": "07:00",
    "working_hours_end": "16:00",
    "max_customers_per_day": 20,
}


def count(model, organization) -> int:
    return model.unscoped.filter(organization=organization).count()


# --- plans in one place ------------------------------------------------------------------------


def test_a_new_organization_gets_the_starter_plans_limits(db):
    with organization_context(None), platform_access():
        organization = organization_create(
            name="Fresh Pools", slug="fresh", owner_email="owner@fresh.test"
        )
    starter = PLANS[PlanTier.STARTER]
    assert organization.plan_tier == PlanTier.STARTER
    assert (organization.max_users, organization.max_customers) == (
        starter.max_users,
        starter.max_customers,
    )
    assert (organization.max_techs, organization.max_routes_per_day) == (
        starter.max_techs,
        starter.max_routes_per_day,
    )
    assert organization.features_enabled == starter.features


def test_changing_tier_applies_its_defaults_and_keeps_named_overrides(acme):
    organization = set_columns(acme.organization, max_customers=7)
    with organization_context(None), platform_access():
        organization_change_plan(organization=organization, tier=PlanTier.ENTERPRISE)
        organization.refresh_from_db()
        assert organization.max_customers is None  # enterprise: unlimited
        apply_plan(organization, PlanTier.PROFESSIONAL, keep=frozenset({"max_techs"}))
    assert organization.max_customers == PLANS[PlanTier.PROFESSIONAL].max_customers
    assert organization.max_techs is None  # kept: the override made with the change


# --- each limit at its edge, through a service (the model's save) ------------------------------


def test_customers_up_to_the_limit_then_refused(acme):
    organization = set_columns(acme.organization, max_customers=4, plan_tier=PlanTier.STARTER)
    with organization_context(organization):
        Customer(organization=organization, **CUSTOMER).save()  # the 4th: allowed
        with pytest.raises(PlanLimitReached) as refused:
            Customer(organization=organization, **CUSTOMER).save()
    message = str(refused.value)
    assert "allows 4 customers (max_customers) and has 4" in message
    assert "upgrade to the professional plan (500 customers)" in message
    assert "\n" not in message
    assert count(Customer, organization) == 4


def test_rows_above_a_lowered_limit_stay_and_can_change(acme):
    organization = set_columns(acme.organization, max_customers=1, max_techs=1)
    assert count(Customer, organization) == 3
    with organization_context(organization):
        customer = Customer.objects.first()
        customer.notes = "still editable"
        customer.save()
        driver = Driver.objects.first()
        driver.notes = "still editable"
        driver.save()
        with pytest.raises(PlanLimitReached):
            Customer(organization=organization, **CUSTOMER).save()
    assert count(Customer, organization) == 3


def test_null_means_unlimited(acme):
    organization = set_columns(acme.organization, max_customers=None)
    with organization_context(organization):
        for _ in range(3):
            Customer(organization=organization, **CUSTOMER).save()
    assert count(Customer, organization) == 6


def test_routes_per_service_day_counts_each_day_and_moves(acme):
    organization = set_columns(acme.organization, max_routes_per_day=1)
    with organization_context(organization):
        driver = Driver.objects.first()
        with pytest.raises(PlanLimitReached, match="allows 1 routes per service day on monday"):
            Route(organization=organization, driver=driver, service_day="monday").save()
        friday = Route(organization=organization, driver=driver, service_day="friday")
        friday.save()  # another day has room
        friday.total_customers = 3
        friday.save()  # staying on its day is no new route
        friday.service_day = "tuesday"  # tuesday is full
        with pytest.raises(PlanLimitReached, match="on tuesday"):
            friday.save()
    assert set(
        Route.unscoped.filter(organization=organization).values_list("service_day", flat=True)
    ) == {
        "monday",
        "tuesday",
        "friday",
    }


def test_invitations_take_a_seat(acme):
    organization = set_columns(acme.organization, max_users=6)  # 5 members already
    owner = acme.members[Role.OWNER]
    with organization_context(organization), claim_user(owner.pk):
        organization_invite_member(
            organization=organization, email="sixth@acme.test", role=Role.READONLY, invited_by=owner
        )
        # Inviting the same address again replaces the invitation: no new seat.
        organization_invite_member(
            organization=organization, email="SIXTH@acme.test", role=Role.READONLY, invited_by=owner
        )
        with pytest.raises(PlanLimitReached, match=r"allows 6 members .* \(max_users\) and has 6"):
            organization_invite_member(
                organization=organization,
                email="seventh@acme.test",
                role=Role.READONLY,
                invited_by=owner,
            )
    assert OrganizationUser.objects.filter(organization=organization).count() == 6


def test_limits_switched_off_refuse_nothing(acme, settings):
    settings.ROUTEOPTIMIZER_PLANS_ENFORCED = False
    organization = set_columns(acme.organization, max_customers=1)
    with organization_context(organization):
        Customer(organization=organization, **CUSTOMER).save()
    assert count(Customer, organization) == 4
    assert limits.enabled() is False


# --- through the API ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "column", "body", "model"),
    [
        ("/api/v1/customers/", "max_customers", CUSTOMER, Customer),
        ("/api/v1/drivers/", "max_techs", DRIVER, Driver),
    ],
    ids=["customers", "drivers"],
)
def test_api_creates_up_to_the_limit_then_answers_402(acme, client_as, path, column, body, model):
    existing = count(model, acme.organization)
    organization = set_columns(acme.organization, **{column: existing + 1})
    client = client_as(acme, Role.MANAGER)

    assert client.post(path, body, format="json").status_code == 201
    response = client.post(path, body, format="json")

    assert response.status_code == 402
    assert set(response.json()) == {"error"}
    error = response.json()["error"]
    assert f"({column}) and has {existing + 1}" in error
    assert f"allows {existing + 1}" in error and "upgrade" in error
    assert count(model, organization) == existing + 1


def test_api_route_on_a_full_day_answers_402(acme, client_as):
    set_columns(acme.organization, max_routes_per_day=1)
    driver = acme.rows[Driver][1]
    client = client_as(acme)
    response = client.post(
        "/api/v1/routes/", {"driver": str(driver.pk), "service_day": "monday"}, format="json"
    )
    assert response.status_code == 402
    assert (
        "routes per service day on monday (max_routes_per_day) and has 1"
        in response.json()["error"]
    )
    route = acme.rows[Route][1]  # tuesday
    moved = client.patch(f"/api/v1/routes/{route.pk}/", {"service_day": "monday"}, format="json")
    assert moved.status_code == 402
    assert (
        client.post(
            "/api/v1/routes/", {"driver": str(driver.pk), "service_day": "sunday"}, format="json"
        ).status_code
        == 201
    )


# --- through the admin -------------------------------------------------------------------------


@pytest.fixture
def owner_in_admin(acme, client):
    owner = acme.members[Role.OWNER]
    owner.is_staff = True
    owner.save()
    from django.contrib.auth.models import Permission

    owner.user_permissions.set(Permission.objects.all())
    client.force_login(owner)
    return client


def test_admin_refuses_a_customer_beyond_the_limit_as_a_form_error(acme, owner_in_admin):
    organization = set_columns(acme.organization, max_customers=3)
    response = owner_in_admin.post(
        "/admin/routing/customer/add/",
        {
            **CUSTOMER,
            "organization": str(organization.pk),
            "status": "active",
            "service_days_per_week": 1,
            "visit_duration": 15,
            "created_at_0": "2026-01-01",
            "created_at_1": "10:00:00",
        },
    )
    assert response.status_code == 200  # the form again, with its error
    assert b"plan limit reached" in response.content
    assert b"allows 3 customers (max_customers) and has 3" in response.content
    assert count(Customer, organization) == 3


def test_admin_refuses_an_invitation_beyond_the_limit_as_a_form_error(acme, owner_in_admin):
    organization = set_columns(acme.organization, max_users=5)
    response = owner_in_admin.post(
        "/admin/tenants/organizationuser/add/",
        {"organization": str(organization.pk), "email": "extra@acme.test", "role": "readonly"},
    )
    assert response.status_code == 200
    assert b"allows 5 members" in response.content
    assert OrganizationUser.objects.filter(organization=organization).count() == 5


def test_superuser_changing_the_tier_in_the_admin_applies_its_defaults(acme, client):
    from accounts.models import User

    client.force_login(User.objects.create_superuser("root@operator.test", PASSWORD))
    organization = acme.organization
    page = client.get(f"/admin/tenants/organization/{organization.pk}/change/")
    assert page.status_code == 200
    form = page.context["adminform"].form
    data = {
        name: ("" if value is None else value)
        for name, value in form.initial.items()
        if name in form.fields
    }
    data.update(
        {
            "plan_tier": "enterprise",
            "max_techs": "4",  # set in the same form: an override that stays
            "features_enabled": "{}",
            "memberships-TOTAL_FORMS": "0",
            "memberships-INITIAL_FORMS": "0",
            "trial_ends_at_0": "",
            "trial_ends_at_1": "",
            "onboarded_at_0": "",
            "onboarded_at_1": "",
        }
    )
    response = client.post(f"/admin/tenants/organization/{organization.pk}/change/", data)
    assert response.status_code == 302, response.content[:2000]
    with organization_context(None), platform_access():
        organization = Organization.objects.get(pk=organization.pk)
    assert organization.plan_tier == "enterprise"
    assert organization.max_customers is None and organization.max_users is None
    assert organization.max_techs == 4
    assert organization.features_enabled == {}


# --- metered on the same writes ----------------------------------------------------------------


def test_creating_a_customer_meters_it_once(acme):
    organization = acme.organization
    before = UsageRecord.unscoped.filter(
        organization=organization, metric=UsageMetric.CUSTOMERS_CREATED
    ).count()
    with organization_context(organization):
        customer = Customer(organization=organization, **CUSTOMER)
        customer.save()
        customer.notes = "an edit is not a creation"
        customer.save()
    rows = UsageRecord.unscoped.filter(
        organization=organization, metric=UsageMetric.CUSTOMERS_CREATED
    )
    assert rows.count() == before + 1
    assert rows.filter(metadata__customer_id=str(customer.pk)).exists()
