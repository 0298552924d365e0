"""Staff who are not superusers see and edit only their organizations' rows in the admin;
a superuser sees every organization."""

import pytest
from django.contrib import admin
from django.urls import reverse

from accounts.models import ApiToken, User
from routing.models import Customer, Driver
from tenants.admin import OrganizationScopedAdmin, all_organizations, is_tenant_model
from tenants.models import Organization
from tests.tenancy_data import unscoped

pytestmark = pytest.mark.django_db

TENANT_MODELS = sorted(
    (model for model in admin.site._registry if is_tenant_model(model)),
    key=lambda model: model._meta.label,
)
OTHER_NAME = "Blue Lagoon"  # in blue's organization name and in its rows' names


def url(model, view, *args):
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


def ids(model, data, viewer=None) -> set[str]:
    """The rows of `model` in `data`'s organization; with `viewer`, those the viewer's admin
    lists (API tokens: their own only, other users' are the platform's)."""
    rows = all_organizations(model).filter(organization=data.organization)
    if model is ApiToken and viewer is not None:
        rows = rows.filter(user=viewer)
    return {str(pk) for pk in rows.values_list("pk", flat=True)}


def organization_choices(changelist) -> list[str]:
    return [
        name
        for spec in changelist.filter_specs
        if getattr(spec, "field_path", "") == "organization"
        for _, name in spec.lookup_choices
    ]


def test_every_tenant_model_is_in_the_admin_through_the_scoped_mixin():
    labels = {model._meta.label for model in TENANT_MODELS}
    assert {
        "routing.Customer",
        "routing.Driver",
        "routing.Route",
        "routing.RouteStop",
        "tenants.OrganizationUser",
        "accounts.ApiToken",
        "billing.ServicePlan",
        "billing.CustomerServiceAgreement",
        "billing.PaymentMethod",
        "billing.OrganizationSubscription",
        "billing.UsageRecord",
    } <= labels
    for model in TENANT_MODELS:
        assert isinstance(admin.site._registry[model], OrganizationScopedAdmin), model


@pytest.mark.parametrize("model", TENANT_MODELS, ids=lambda m: m._meta.label)
def test_changelists_hold_only_the_staff_members_organization(
    client, acme, blue, acme_staff, model
):
    client.force_login(acme_staff)

    response = client.get(url(model, "changelist"))

    assert response.status_code == 200
    changelist = response.context["cl"]
    assert {str(row.pk) for row in changelist.result_list} == ids(model, acme, acme_staff)
    assert (
        changelist.result_count == changelist.full_result_count == len(ids(model, acme, acme_staff))
    )
    content = response.content.decode()
    assert OTHER_NAME not in content
    for other_id in ids(model, blue):
        assert url(model, "change", other_id) not in content
    # No organization filter to pick another organization from: with one organization to
    # offer, Django leaves the filter out.
    assert organization_choices(changelist) in ([], ["Acme Pools"])


@pytest.mark.parametrize("model", TENANT_MODELS, ids=lambda m: m._meta.label)
def test_filtering_or_searching_for_the_other_organization_finds_nothing(
    client, acme, blue, acme_staff, model
):
    client.force_login(acme_staff)

    changelist = url(model, "changelist")
    by_filter = client.get(changelist, {"organization__id__exact": blue.organization.pk})
    by_search = client.get(changelist, {"q": OTHER_NAME})

    assert by_search.context["cl"].result_count == 0
    # The admin ignores a filter it does not offer; either way no row of the other organization.
    if by_filter.status_code == 200:
        assert {str(row.pk) for row in by_filter.context["cl"].result_list} <= ids(model, acme)


@pytest.mark.parametrize("model", TENANT_MODELS, ids=lambda m: m._meta.label)
@pytest.mark.parametrize("view", ["change", "delete", "history"])
def test_the_other_organizations_ids_are_404(client, acme, blue, acme_staff, model, view):
    client.force_login(acme_staff)

    for other_id in ids(model, blue):
        assert client.get(url(model, view, other_id)).status_code == 404
        assert client.post(url(model, view, other_id), {"post": "yes"}).status_code == 404
    assert len(ids(model, blue)) == unscoped(model).filter(organization=blue.organization).count()


@pytest.mark.parametrize("model", TENANT_MODELS, ids=lambda m: m._meta.label)
def test_own_rows_open(client, acme, acme_staff, model):
    client.force_login(acme_staff)

    for own_id in ids(model, acme, acme_staff):
        assert client.get(url(model, "change", own_id)).status_code == 200


@pytest.mark.parametrize("model", TENANT_MODELS, ids=lambda m: m._meta.label)
def test_a_superuser_sees_both_organizations(client, acme, blue, superuser, model):
    client.force_login(superuser)

    response = client.get(url(model, "changelist"), {"all": ""})

    shown = {str(row.pk) for row in response.context["cl"].result_list}
    assert ids(model, acme) | ids(model, blue) <= shown
    offered = set(organization_choices(response.context["cl"]))
    assert {"Acme Pools", "Blue Lagoon Service"} <= offered
    for other_id in ids(model, blue):
        assert client.get(url(model, "change", other_id)).status_code == 200


def test_organizations_and_users_are_limited_to_the_staff_members_organizations(
    client, acme, blue, acme_staff
):
    client.force_login(acme_staff)

    organizations = client.get(url(Organization, "changelist"))
    users = client.get(url(User, "changelist"))

    assert [o.slug for o in organizations.context["cl"].result_list] == ["acme"]
    assert {u.email for u in users.context["cl"].result_list} == {
        u.email for u in acme.members.values()
    }
    assert OTHER_NAME not in organizations.content.decode() + users.content.decode()
    assert client.get(url(Organization, "change", blue.organization.pk)).status_code == 404
    for member in blue.members.values():
        assert client.get(url(User, "change", member.pk)).status_code == 404
        password = reverse("admin:auth_user_password_change", args=[member.pk])
        assert client.get(password).status_code == 404


def test_staff_cannot_create_rows_in_another_organization_or_point_at_its_rows(
    client, acme, blue, acme_staff
):
    client.force_login(acme_staff)
    body = {
        "display_name": "Smuggled",
        "address": "1 Elsewhere",
        "service_type": "residential",
        "difficulty": 1,
        "service_day": "monday",
        "service_days_per_week": 1,
        "visit_duration": 15,
        "status": "active",
        "is_active": "on",
    }

    into_blue = client.post(url(Customer, "add"), {**body, "organization": blue.organization.pk})
    blue_driver = client.post(
        url(Customer, "add"),
        {
            **body,
            "organization": acme.organization.pk,
            "assigned_driver": blue.rows[Driver][0].pk,
        },
    )

    for response in (into_blue, blue_driver):
        assert response.status_code == 200  # the form again, with errors
        assert response.context["adminform"].form.errors
    assert not unscoped(Customer).filter(display_name="Smuggled").exists()


def test_staff_create_a_customer_in_their_organization(client, acme, acme_staff):
    client.force_login(acme_staff)

    response = client.post(
        url(Customer, "add"),
        {
            "organization": acme.organization.pk,
            "display_name": "Walk-in",
            "address": "5 Pool Ln",
            "service_type": "residential",
            "difficulty": 1,
            "service_day": "monday",
            "service_days_per_week": 1,
            "visit_duration": 15,
            "status": "active",
            "is_active": "on",
            "assigned_driver": acme.rows[Driver][0].pk,
        },
    )

    assert response.status_code == 302, response.context["adminform"].form.errors
    created = unscoped(Customer).get(display_name="Walk-in")
    assert created.organization_id == acme.organization.pk


def test_staff_cannot_grant_themselves_privileges(client, acme, acme_staff):
    client.force_login(acme_staff)

    response = client.get(url(User, "change", acme_staff.pk))

    form = response.context["adminform"].form
    for name in ("is_superuser", "is_staff", "user_permissions", "groups"):
        assert name not in form.fields


def test_a_malformed_organization_in_an_add_form_is_a_form_error(client, acme, acme_staff):
    client.force_login(acme_staff)

    response = client.post(url(Customer, "add"), {"organization": "not-an-id"})

    assert response.status_code == 200
    assert "organization" in response.context["adminform"].form.errors


def test_a_pending_invitation_gives_no_admin_access(client, acme, blue, acme_staff):
    from routing.models import Customer
    from tenants.models import OrganizationUser, Role

    OrganizationUser.objects.create(
        organization=blue.organization,
        user=acme_staff,
        role=Role.ADMIN,
        invitation_token="0" * 64,
    )
    client.force_login(acme_staff)

    for other_id in ids(Customer, blue):
        assert client.get(url(Customer, "change", other_id)).status_code == 404
