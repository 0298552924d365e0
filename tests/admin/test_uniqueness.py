"""Uniqueness in the admin: checked across every organization, one message whoever holds the
value (or when it is simply invalid), never a 500; slugs unique whatever their case, in
PostgreSQL too."""

import pytest
from django.db import IntegrityError, connection, transaction
from django.urls import reverse

from accounts.models import User
from billing.models import OrganizationSubscription
from tenants.admin import UNAVAILABLE
from tenants.models import Organization, Role
from tests.factories import OrganizationFactory
from tests.tenancy_data import unscoped

pytestmark = pytest.mark.django_db


def test_slugs_are_unique_whatever_their_case_in_postgresql(acme):
    with pytest.raises(IntegrityError), transaction.atomic():
        # Saved through a queryset update: Organization.save's lowering is not involved.
        Organization.objects.filter(pk=OrganizationFactory(slug="other").pk).update(slug="ACME")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = 'organizations' "
            "AND indexdef ILIKE '%%UNIQUE%%lower(%%'"
        )
        names = {row[0] for row in cursor.fetchall()}
    assert {"idx_orgs_slug_lower", "idx_orgs_subdomain_lower"} <= names


def test_slugs_and_subdomains_are_lowered_on_save(db):
    organization = Organization.objects.create(name="Mixed", slug="Mixed-Case", subdomain="MiX")
    organization.refresh_from_db()
    assert (organization.slug, organization.subdomain) == ("mixed-case", "mix")


def test_an_owner_renames_the_slug_in_any_case_and_gets_lower_case(client, acme, staff):
    client.force_login(staff["acme"][Role.OWNER])
    url = reverse("admin:tenants_organization_change", args=[acme.organization.pk])

    response = client.post(
        url,
        {
            "name": "Acme Pools",
            "slug": "Acme-Pools",
            "subdomain": "ACME-POOLS",
            "timezone": "UTC",
            "default_map_provider": "openstreetmap",
            "memberships-TOTAL_FORMS": 0,
            "memberships-INITIAL_FORMS": 0,
        },
    )

    assert response.status_code == 302, response.context["adminform"].form.errors
    organization = Organization.objects.get(pk=acme.organization.pk)
    assert (organization.slug, organization.subdomain) == ("acme-pools", "acme-pools")


def test_another_organizations_subdomain_is_the_same_answer_as_an_invalid_one(
    client, acme, blue, staff
):
    client.force_login(staff["acme"][Role.OWNER])
    url = reverse("admin:tenants_organization_change", args=[acme.organization.pk])
    body = {
        "name": "Acme Pools",
        "slug": "acme",
        "timezone": "UTC",
        "default_map_provider": "openstreetmap",
        "memberships-TOTAL_FORMS": 0,
        "memberships-INITIAL_FORMS": 0,
    }

    taken = client.post(url, {**body, "subdomain": "BLUE"})
    invalid = client.post(url, {**body, "subdomain": "not/valid"})

    assert taken.status_code == invalid.status_code == 200
    assert (
        taken.context["adminform"].form.errors["subdomain"]
        == invalid.context["adminform"].form.errors["subdomain"]
    )


def test_a_stripe_id_another_organization_holds_is_a_form_error_not_a_500(
    client, acme, blue, superuser
):
    client.force_login(superuser)
    mine = acme.rows[OrganizationSubscription][0]
    theirs = blue.rows[OrganizationSubscription][0]
    url = reverse("admin:billing_organizationsubscription_change", args=[mine.pk])
    form = client.get(url).context["adminform"].form
    body = {
        name: value
        for name, value in form.initial.items()
        if value is not None and name in form.fields
    }
    for name in (
        "current_period_start",
        "current_period_end",
        "trial_start",
        "trial_end",
        "canceled_at",
    ):
        value = body.pop(name, None)
        if value:
            body[f"{name}_0"], body[f"{name}_1"] = value.date(), value.time()
    body.pop("cancel_at_period_end", None)

    taken = client.post(url, {**body, "stripe_subscription_id": theirs.stripe_subscription_id})

    assert taken.status_code == 200
    assert taken.context["adminform"].form.errors["stripe_subscription_id"] == [UNAVAILABLE]
    assert (
        unscoped(OrganizationSubscription).get(pk=mine.pk).stripe_subscription_id
        == mine.stripe_subscription_id
    )


def test_an_email_another_organizations_user_has_is_the_same_answer_as_an_invalid_one(
    client, acme, blue, staff
):
    client.force_login(staff["acme"][Role.OWNER])
    member = acme.members[Role.MANAGER]
    url = reverse("admin:accounts_user_change", args=[member.pk])
    body = {"first_name": "", "last_name": "", "locale": "en_US", "is_active": "on"}

    taken = client.post(url, {**body, "email": blue.members[Role.OWNER].email.upper()})
    invalid = client.post(url, {**body, "email": "not an address"})

    assert taken.status_code == invalid.status_code == 200
    assert (
        taken.context["adminform"].form.errors["email"]
        == invalid.context["adminform"].form.errors["email"]
    )
    assert User.objects.get(pk=member.pk).email == member.email
