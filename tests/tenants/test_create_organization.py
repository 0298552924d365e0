"""Onboarding: `create_organization` and the service behind it, in one transaction."""

import datetime
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from accounts.models import User
from billing.models import OrganizationSubscription
from tenants.context import organization_context
from tenants.models import Organization, OrganizationUser, PlanTier, Role, SubscriptionStatus
from tenants.services import OrganizationCreateError, organization_create
from tests.factories import MembershipFactory, OrganizationFactory, UserFactory


def everything() -> tuple[int, int, int, int]:
    return (
        Organization.objects.count(),
        User.objects.count(),
        OrganizationUser.objects.count(),
        OrganizationSubscription.unscoped.count(),
    )


@pytest.mark.django_db
def test_a_new_organization_gets_a_trial_an_owner_and_a_trial_subscription():
    before = timezone.now()

    organization = organization_create(
        name="Crystal Clear Pools",
        slug="Crystal-Clear",
        owner_email="Owner@Crystal.example",
        owner_password="a long and good passphrase",
    )

    organization.refresh_from_db()
    assert organization.slug == "crystal-clear"
    assert organization.plan_tier == PlanTier.STARTER
    assert organization.subscription_status == SubscriptionStatus.TRIAL
    trial = organization.trial_ends_at - before
    assert datetime.timedelta(days=13, hours=23) < trial < datetime.timedelta(days=14, hours=1)

    membership = OrganizationUser.objects.get(organization=organization)
    assert membership.role == Role.OWNER
    assert membership.is_primary_org
    assert membership.user.email == "Owner@crystal.example"
    assert membership.user.check_password("a long and good passphrase")

    with organization_context(organization):
        subscription = OrganizationSubscription.objects.get()
    assert subscription.status == "trialing"
    assert subscription.plan_tier == PlanTier.STARTER
    assert subscription.trial_end == organization.trial_ends_at


@pytest.mark.django_db
def test_an_existing_user_becomes_the_owner_and_keeps_their_primary_organization():
    existing = MembershipFactory(user=UserFactory(email="pat@example.test"), is_primary_org=True)

    organization = organization_create(
        name="Second Company", slug="second", owner_email="PAT@example.test"
    )

    membership = OrganizationUser.objects.get(organization=organization)
    assert membership.user == existing.user
    assert membership.role == Role.OWNER
    assert not membership.is_primary_org
    assert User.objects.filter(email__iexact="pat@example.test").count() == 1


@pytest.mark.django_db
def test_a_new_owner_without_a_password_gets_an_unusable_one():
    organization_create(name="No Password", slug="no-password", owner_email="np@example.test")

    assert not User.objects.get(email="np@example.test").has_usable_password()


@pytest.mark.django_db
def test_a_slug_clash_creates_nothing():
    OrganizationFactory(slug="taken")
    before = everything()

    with pytest.raises(OrganizationCreateError, match="slug 'taken' exists already"):
        organization_create(name="Another", slug="TAKEN", owner_email="new@example.test")

    assert everything() == before


@pytest.mark.django_db
def test_an_email_clash_creates_nothing():
    UserFactory(email="someone@example.test")
    before = everything()

    with pytest.raises(OrganizationCreateError, match="exists already, and --owner-password"):
        organization_create(
            name="Another",
            slug="another",
            owner_email="SOMEONE@example.test",
            owner_password="would replace theirs",
        )

    assert everything() == before


@pytest.mark.django_db
def test_a_failure_half_way_creates_nothing():
    before = everything()

    with pytest.raises(OrganizationCreateError, match="email"):
        organization_create(name="Half Way", slug="half-way", owner_email="not an email")

    assert everything() == before
    assert not Organization.objects.filter(slug="half-way").exists()


# --- the command (it runs as the owner, so outside the test's transaction) ----------------------


@pytest.mark.django_db(transaction=True)
def test_the_command_onboards_an_organization():
    out = StringIO()

    call_command(
        "create_organization",
        "--name=Sunny Pools",
        "--slug=sunny",
        "--owner-email=owner@sunny.example",
        stdout=out,
    )

    assert "Created organization 'Sunny Pools' (slug sunny" in out.getvalue()
    organization = Organization.objects.get(slug="sunny")
    assert OrganizationUser.objects.get(organization=organization).role == Role.OWNER
    with organization_context(organization):
        assert OrganizationSubscription.objects.count() == 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--slug=taken", "--owner-email=x@example.test"], "slug 'taken' exists already"),
        (
            ["--slug=fresh", "--owner-email=Clash@example.test", "--owner-password=pw-123456"],
            "a user with email 'Clash@example.test' exists already",
        ),
    ],
    ids=["slug", "email"],
)
def test_the_command_refuses_a_clash_in_one_line_and_creates_nothing(arguments, message):
    OrganizationFactory(slug="taken")
    UserFactory(email="clash@example.test")
    before = everything()

    with pytest.raises(CommandError) as error:
        call_command("create_organization", "--name=Clash", *arguments, stdout=StringIO())

    assert message in str(error.value)
    assert str(error.value).endswith("nothing was created")
    assert "\n" not in str(error.value)
    assert everything() == before
