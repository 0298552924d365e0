"""The takeover paths of issue 9, each as the attacker would try it: staff of Acme (any role,
every model permission Django has, not superuser) against Blue and against Acme's own owner."""

import pytest
from django.urls import reverse

from accounts.models import User
from geocoding.models import GeocodingCacheEntry
from tenants.models import Organization, OrganizationUser, PlanTier, Role
from tests.factories import GeocodingCacheEntryFactory
from tests.tenancy_data import PASSWORD

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "a brand new secret 4711"


def password_change(user):
    return reverse("admin:auth_user_password_change", args=[user.pk])


def user_change(user):
    return reverse("admin:accounts_user_change", args=[user.pk])


def membership_add():
    return reverse("admin:tenants_organizationuser_add")


def test_staff_cannot_pick_another_organizations_owner_as_a_member(client, acme, blue, staff):
    attacker = staff["acme"][Role.OWNER]
    victim = blue.members[Role.OWNER]
    client.force_login(attacker)

    # Step 1 of the takeover: the add-member form took any user id.
    picked = client.post(
        membership_add(),
        {"organization": acme.organization.pk, "user": victim.pk, "role": Role.READONLY},
    )
    # Step 2: the users admin set that user's password.
    password = client.post(
        password_change(victim), {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD}
    )

    assert picked.status_code == 200  # the invitation form again: it asks for an email
    assert not OrganizationUser.objects.filter(organization=acme.organization, user=victim).exists()
    assert password.status_code in (403, 404)
    victim.refresh_from_db()
    assert victim.check_password(PASSWORD)


def test_inviting_another_organizations_owner_by_email_hands_over_nothing(
    client, acme, blue, staff
):
    attacker = staff["acme"][Role.OWNER]
    victim = blue.members[Role.OWNER]
    client.force_login(attacker)

    invited = client.post(
        membership_add(),
        {"organization": acme.organization.pk, "email": victim.email.upper(), "role": "admin"},
    )

    assert invited.status_code == 302
    pending = OrganizationUser.objects.get(organization=acme.organization, user=victim)
    assert pending.invitation_token and pending.invitation_accepted_at is None
    # A pending invitation is not membership: the invitee is not Acme's to see or edit.
    assert client.get(user_change(victim)).status_code == 404
    assert client.post(
        password_change(victim), {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD}
    ).status_code in (403, 404)
    victim.refresh_from_db()
    assert victim.check_password(PASSWORD)


def test_a_user_shared_with_another_organization_is_read_only_to_staff(client, acme, blue, staff):
    shared = blue.members[Role.OWNER]
    OrganizationUser.objects.create(organization=acme.organization, user=shared, role=Role.READONLY)
    attacker = staff["acme"][Role.OWNER]
    client.force_login(attacker)

    page = client.get(user_change(shared))
    edited = client.post(
        user_change(shared),
        {
            "email": "attacker@evil.test",
            "first_name": "Owned",
            "is_active": "",
            "locale": "en_US",
        },
    )
    password = client.post(
        password_change(shared), {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD}
    )
    deleted = client.post(reverse("admin:accounts_user_delete", args=[shared.pk]), {"post": "yes"})

    assert page.status_code == 200
    assert not page.context["has_change_permission"]
    assert edited.status_code == 403
    assert password.status_code in (403, 404)
    assert deleted.status_code == 403
    shared.refresh_from_db()
    assert (shared.email, shared.is_active, shared.first_name) == (
        "owner@blue.test",
        True,
        "",
    )
    assert shared.check_password(PASSWORD)


def test_staff_may_reset_a_member_who_belongs_to_their_organization_only(client, acme, staff):
    client.force_login(staff["acme"][Role.OWNER])
    member = acme.members[Role.MANAGER]

    response = client.post(
        password_change(member), {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD}
    )

    assert response.status_code == 302
    member.refresh_from_db()
    assert member.check_password(NEW_PASSWORD)


def test_an_admin_cannot_take_over_the_owner_of_their_own_organization(client, acme, staff):
    client.force_login(staff["acme"][Role.ADMIN])
    owner = acme.members[Role.OWNER]

    response = client.post(
        password_change(owner), {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD}
    )

    assert response.status_code in (403, 404)
    owner.refresh_from_db()
    assert owner.check_password(PASSWORD)


def test_a_readonly_member_cannot_promote_themselves(client, acme, staff):
    attacker = staff["acme"][Role.READONLY]
    membership = OrganizationUser.objects.get(organization=acme.organization, user=attacker)
    client.force_login(attacker)

    url = reverse("admin:tenants_organizationuser_change", args=[membership.pk])
    response = client.post(url, {"role": Role.OWNER, "is_primary_org": "on"})

    assert response.status_code in (403, 404)
    membership.refresh_from_db()
    assert membership.role == Role.READONLY


@pytest.mark.parametrize("role", list(Role))
def test_no_member_raises_their_organizations_plan(client, acme, staff, role):
    client.force_login(staff["acme"][role])
    organization = acme.organization
    url = reverse("admin:tenants_organization_change", args=[organization.pk])
    body = {
        "name": organization.name,
        "slug": organization.slug,
        "subdomain": organization.subdomain,
        "timezone": organization.timezone,
        "is_active": "on",
        "plan_tier": PlanTier.ENTERPRISE,
        "subscription_status": "active",
        "trial_ends_at_0": "2099-12-31",
        "trial_ends_at_1": "00:00:00",
        "max_users": 100000,
        "max_customers": 100000,
        "stripe_customer_id": "cus_attacker",
        "features_enabled": '{"everything": true}',
        "default_map_provider": "openstreetmap",
        "memberships-TOTAL_FORMS": 0,
        "memberships-INITIAL_FORMS": 0,
    }

    response = client.post(url, body)

    assert response.status_code in (302, 403), response.status_code
    after = Organization.objects.get(pk=organization.pk)
    assert after.plan_tier == organization.plan_tier
    assert after.subscription_status == organization.subscription_status
    assert after.trial_ends_at == organization.trial_ends_at
    assert after.max_users == organization.max_users
    assert after.max_customers == organization.max_customers
    assert after.stripe_customer_id == organization.stripe_customer_id
    assert after.features_enabled == organization.features_enabled


def test_a_readonly_member_changes_nothing_in_their_organization(client, acme, staff):
    client.force_login(staff["acme"][Role.READONLY])
    organization = acme.organization
    url = reverse("admin:tenants_organization_change", args=[organization.pk])

    response = client.post(url, {"name": "Renamed", "slug": "renamed", "timezone": "UTC"})

    assert response.status_code == 403
    assert Organization.objects.get(pk=organization.pk).name == "Acme Pools"


@pytest.mark.parametrize("taken", ["BLUE", "blue", "Blue"])
def test_renaming_the_slug_to_another_organizations_in_another_case_is_refused(
    client, acme, blue, staff, taken
):
    client.force_login(staff["acme"][Role.OWNER])
    url = reverse("admin:tenants_organization_change", args=[acme.organization.pk])
    body = {
        "name": "Acme Pools",
        "slug": taken,
        "subdomain": "acme",
        "timezone": "UTC",
        "is_active": "on",
        "memberships-TOTAL_FORMS": 0,
        "memberships-INITIAL_FORMS": 0,
    }

    hijack = client.post(url, body)
    invalid = client.post(url, {**body, "slug": "not a slug!"})

    assert hijack.status_code == invalid.status_code == 200
    taken_errors = hijack.context["adminform"].form.errors["slug"]
    assert taken_errors == invalid.context["adminform"].form.errors["slug"]
    assert Organization.objects.get(pk=acme.organization.pk).slug == "acme"
    assert Organization.objects.filter(slug__iexact="blue").count() == 1


def test_staff_cannot_edit_the_shared_geocoding_cache(client, acme, staff):
    entry = GeocodingCacheEntryFactory()
    client.force_login(staff["acme"][Role.OWNER])
    url = reverse("admin:geocoding_geocodingcacheentry_change", args=[entry.pk])

    listed = client.get(reverse("admin:geocoding_geocodingcacheentry_changelist"))
    page = client.get(url)
    moved = client.post(url, {"latitude": "0", "longitude": "0"})

    assert listed.status_code == page.status_code == moved.status_code == 403
    after = GeocodingCacheEntry.objects.get(pk=entry.pk)
    assert (after.latitude, after.longitude) == (entry.latitude, entry.longitude)


def test_geocoded_by_offers_only_the_organizations_members(client, acme, blue, staff, superuser):
    from routing.models import Customer

    client.force_login(staff["acme"][Role.OWNER])
    customer = acme.rows[Customer][0]

    form = (
        client.get(reverse("admin:routing_customer_change", args=[customer.pk]))
        .context["adminform"]
        .form
    )

    offered = {str(user.pk) for user in form.fields["geocoded_by"].queryset}
    assert offered == {str(user.pk) for user in acme.members.values()}
    assert str(superuser.pk) not in offered
    assert not offered & {str(user.pk) for user in blue.members.values()}


def test_staff_cannot_grant_groups_or_see_them(client, acme, staff):
    client.force_login(staff["acme"][Role.OWNER])

    assert client.get(reverse("admin:auth_group_changelist")).status_code == 403
    assert client.get(reverse("admin:auth_group_add")).status_code == 403
    assert User.objects.filter(groups__isnull=False).count() == 0


@pytest.mark.parametrize(("role", "shown"), [(Role.ADMIN, True), (Role.READONLY, False)])
def test_the_maps_api_key_is_shown_to_those_who_manage_settings_only(
    client, acme, staff, role, shown
):
    Organization.objects.filter(pk=acme.organization.pk).update(google_maps_api_key="AIzaSECRET")
    client.force_login(staff["acme"][role])

    page = client.get(reverse("admin:tenants_organization_change", args=[acme.organization.pk]))

    assert page.status_code == 200
    assert ("AIzaSECRET" in page.content.decode()) == shown
