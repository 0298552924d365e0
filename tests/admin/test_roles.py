"""The role matrix in the admin: two organizations with staff of every role (every Django model
permission granted, so only the role and the platform's rules limit them).

EXPECTED is written out from PRODUCT.md ("Roles") and issue 9, not derived from
tenants.permissions: billing is the owner's to manage (admins read it), the subscription and
usage are read-only to every role, members and settings are owners' and admins', global tables
are superusers' only, API tokens are each user's own.
"""

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group
from django.test import RequestFactory
from django.urls import reverse

from accounts.models import ApiToken, User
from accounts.services import api_token_issue
from billing.models import (
    CustomerServiceAgreement,
    OrganizationSubscription,
    PaymentMethod,
    ServicePlan,
    UsageRecord,
)
from geocoding.models import GeocodingCacheEntry
from routing.models import Customer, Driver, Route, RouteStop
from tenants.admin import all_organizations, is_tenant_model
from tenants.models import Organization, OrganizationUser, Role
from tests.factories import GeocodingCacheEntryFactory, ServicePlanFactory
from tests.tenancy_data import unscoped

pytestmark = pytest.mark.django_db

OWNER, ADMIN, MANAGER, TECHNICIAN, READONLY = Role
EVERYONE = set(Role)
ADMINS = {OWNER, ADMIN}
PLANNERS = {OWNER, ADMIN, MANAGER}
READERS = {OWNER, ADMIN, MANAGER, READONLY}
NOBODY: set = set()

EXPECTED = {
    Customer: {"view": EVERYONE, "add": PLANNERS, "change": PLANNERS, "delete": ADMINS},
    Driver: {"view": EVERYONE, "add": PLANNERS, "change": PLANNERS, "delete": PLANNERS},
    Route: {"view": EVERYONE, "add": PLANNERS, "change": PLANNERS, "delete": PLANNERS},
    RouteStop: {"view": EVERYONE, "add": PLANNERS, "change": PLANNERS, "delete": PLANNERS},
    Organization: {"view": EVERYONE, "add": NOBODY, "change": ADMINS, "delete": NOBODY},
    OrganizationUser: {"view": READERS, "add": ADMINS, "change": ADMINS, "delete": ADMINS},
    User: {"view": READERS, "add": NOBODY, "change": ADMINS, "delete": ADMINS},
    ServicePlan: {"view": ADMINS, "add": {OWNER}, "change": {OWNER}, "delete": {OWNER}},
    CustomerServiceAgreement: {
        "view": ADMINS,
        "add": {OWNER},
        "change": {OWNER},
        "delete": {OWNER},
    },
    PaymentMethod: {"view": ADMINS, "add": {OWNER}, "change": {OWNER}, "delete": {OWNER}},
    OrganizationSubscription: {
        "view": ADMINS,
        "add": NOBODY,
        "change": NOBODY,
        "delete": NOBODY,
    },
    UsageRecord: {"view": READERS, "add": NOBODY, "change": NOBODY, "delete": NOBODY},
    ApiToken: {"view": EVERYONE, "add": NOBODY, "change": EVERYONE, "delete": NOBODY},
    GeocodingCacheEntry: {"view": NOBODY, "add": NOBODY, "change": NOBODY, "delete": NOBODY},
    Group: {"view": NOBODY, "add": NOBODY, "change": NOBODY, "delete": NOBODY},
}
CASES = [(model, role) for model in EXPECTED for role in Role]


def test_every_registered_model_has_an_expectation():
    assert set(admin.site._registry) == set(EXPECTED)


def url(model, view, *args):
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


def target(model, acme, actor):
    """A row of Acme the actor's role would act on (the technician's own route and stop)."""
    if model is Organization:
        return acme.organization
    if model in (User, OrganizationUser):
        # The weakest member who is not the actor.
        member = acme.members[READONLY if actor != acme.members[READONLY] else TECHNICIAN]
        if model is User:
            return member
        return OrganizationUser.objects.get(organization=acme.organization, user=member)
    if model is ApiToken:
        return ApiToken.objects.filter(user=actor).first()
    if model is GeocodingCacheEntry:
        return GeocodingCacheEntryFactory()
    if model is Group:
        return Group.objects.create(name="everything")
    index = 1 if model is Driver else 0
    return acme.rows[model][index]


@pytest.fixture
def tokens(acme, staff):
    for role, user in staff["acme"].items():
        if not ApiToken.objects.filter(user=user).exists():
            api_token_issue(user=user, organization=acme.organization, name=f"{role} token")


@pytest.mark.parametrize(("model", "role"), CASES, ids=lambda v: getattr(v, "__name__", v))
def test_each_role_may_do_what_the_matrix_says(client, acme, blue, staff, tokens, model, role):
    actor = staff["acme"][role]
    expected = {action: role in roles for action, roles in EXPECTED[model].items()}
    obj = target(model, acme, actor)
    model_admin = admin.site._registry[model]
    request = RequestFactory().get("/admin/")
    request.user = actor
    client.force_login(actor)

    listed = client.get(url(model, "changelist"))
    adding = client.get(url(model, "add"))

    assert (listed.status_code == 200) == expected["view"], listed.status_code
    assert listed.status_code in (200, 403)
    assert (adding.status_code == 200) == expected["add"], adding.status_code
    assert model_admin.has_view_or_change_permission(request, obj) == expected["view"]
    assert model_admin.has_change_permission(request, obj) == expected["change"]
    assert model_admin.has_delete_permission(request, obj) == expected["delete"]
    if expected["view"]:
        page = client.get(url(model, "change", obj.pk))
        assert page.status_code == 200
        assert page.context["has_change_permission"] == expected["change"]


LISTED = sorted(
    (m for m in EXPECTED if is_tenant_model(m) or m in (Organization, User)),
    key=lambda m: m._meta.label,
)


@pytest.mark.parametrize("role", list(Role))
def test_no_role_sees_anything_of_the_other_organization(client, acme, blue, staff, role):
    client.force_login(staff["acme"][role])

    for model in LISTED:
        response = client.get(url(model, "changelist"))
        searched = client.get(url(model, "changelist"), {"q": "Blue Lagoon"})
        if response.status_code == 403:
            continue
        content = response.content.decode()  # the search page echoes what was searched for
        assert "Blue Lagoon" not in content, model
        assert "@blue.test" not in content, model
        if is_tenant_model(model):
            for pk in (
                all_organizations(model)
                .filter(organization=blue.organization)
                .values_list("pk", flat=True)
            ):
                assert str(pk) not in content, model
        assert str(blue.organization.pk) not in content, model
        assert searched.context["cl"].result_count == 0, model


def test_a_technician_sees_their_own_routes_and_stops_only(client, acme, staff):
    client.force_login(staff["acme"][TECHNICIAN])

    routes = client.get(url(Route, "changelist")).context["cl"]
    stops = client.get(url(RouteStop, "changelist")).context["cl"]
    other = client.get(url(Route, "change", acme.rows[Route][1].pk))

    assert [r.pk for r in routes.result_list] == [acme.rows[Route][0].pk]
    assert routes.full_result_count == 1
    assert [s.pk for s in stops.result_list] == [acme.rows[RouteStop][0].pk]
    assert other.status_code == 404


def test_a_readonly_member_cannot_change_or_delete_a_customer(client, acme, staff):
    client.force_login(staff["acme"][READONLY])
    customer = acme.rows[Customer][1]

    changed = client.post(url(Customer, "change", customer.pk), {"display_name": "Changed"})
    deleted = client.post(url(Customer, "delete", customer.pk), {"post": "yes"})
    bulk = client.post(
        url(Customer, "changelist"),
        {"action": "delete_selected", "_selected_action": [customer.pk], "post": "yes"},
    )

    assert changed.status_code == deleted.status_code == 403
    assert bulk.status_code in (200, 302, 403)
    assert unscoped(Customer).get(pk=customer.pk).display_name == customer.display_name


def test_a_manager_cannot_delete_a_customer_an_admin_can(client, acme, staff):
    customer = acme.rows[Customer][2]
    client.force_login(staff["acme"][MANAGER])
    assert client.post(url(Customer, "delete", customer.pk), {"post": "yes"}).status_code == 403
    assert unscoped(Customer).filter(pk=customer.pk).exists()


def test_global_service_plan_templates_are_the_platforms(client, acme, staff, superuser):
    template = ServicePlanFactory(organization=None, name="Global weekly")
    client.force_login(staff["acme"][OWNER])

    listed = client.get(url(ServicePlan, "changelist"))
    page = client.get(url(ServicePlan, "change", template.pk))

    assert template.pk not in {p.pk for p in listed.context["cl"].result_list}
    assert page.status_code == 404
    client.force_login(superuser)
    assert client.get(url(ServicePlan, "change", template.pk)).status_code == 200


def test_only_the_user_themself_sees_their_api_tokens(client, acme, staff, tokens):
    client.force_login(staff["acme"][ADMIN])
    owners_token = ApiToken.objects.get(user=staff["acme"][OWNER])

    listed = client.get(url(ApiToken, "changelist")).context["cl"]
    revoke = client.post(
        url(ApiToken, "changelist"),
        {"action": "revoke", "_selected_action": [owners_token.pk]},
    )

    assert {t.user_id for t in listed.result_list} == {staff["acme"][ADMIN].pk}
    assert client.get(url(ApiToken, "change", owners_token.pk)).status_code == 404
    assert revoke.status_code in (200, 302)
    owners_token.refresh_from_db()
    assert owners_token.revoked_at is None


def test_a_member_with_two_roles_writes_only_where_their_role_may(client, acme, blue, staff):
    """Readonly in Acme, admin in Blue: the add form offers Blue only and refuses Acme."""
    actor = staff["acme"][READONLY]
    OrganizationUser.objects.create(organization=blue.organization, user=actor, role=ADMIN)
    client.force_login(actor)

    form = client.get(url(Driver, "add")).context["adminform"].form
    refused = client.post(
        url(Driver, "add"),
        {"organization": acme.organization.pk, "name": "Smuggled", "max_customers_per_day": 5},
    )

    assert {o.pk for o in form.fields["organization"].queryset} == {blue.organization.pk}
    assert refused.status_code == 200
    assert "organization" in refused.context["adminform"].form.errors
    assert not unscoped(Driver).filter(name="Smuggled").exists()
