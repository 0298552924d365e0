"""CurrentOrganizationMiddleware: subdomain, then X-Organization, then the primary organization;
membership checked every time; unknown or foreign organizations are 404."""

import json

import pytest
from django.contrib.auth.models import AnonymousUser
from django.http import Http404, HttpResponse
from django.test import RequestFactory, override_settings

from tenants.context import current_organization_or_none
from tenants.middleware import CurrentOrganizationMiddleware
from tenants.models import Role
from tests.factories import MembershipFactory, OrganizationFactory, UserFactory

pytestmark = pytest.mark.django_db


class Seen:
    """The view behind the middleware: records what it saw."""

    def __call__(self, request):
        self.organization = request.organization
        self.membership = request.membership
        self.current = current_organization_or_none()
        return HttpResponse("ok")


@pytest.fixture
def acme():
    return OrganizationFactory(slug="acme")


@pytest.fixture
def blue():
    return OrganizationFactory(slug="blue")


@pytest.fixture
def member(acme, blue):
    """A member of acme (primary) and blue (technician), not of anything else."""
    user = UserFactory()
    MembershipFactory(user=user, organization=acme, is_primary_org=True)
    MembershipFactory(user=user, organization=blue, role=Role.TECHNICIAN, is_primary_org=False)
    return user


def run(user, path="/", host="localhost", **headers):
    request = RequestFactory().get(path, HTTP_HOST=host, **headers)
    request.user = user
    view = Seen()
    response = CurrentOrganizationMiddleware(view)(request)
    return response, view


def test_the_subdomain_comes_first(member, blue):
    _, seen = run(member, host="blue.localhost:7007", HTTP_X_ORGANIZATION="blue")
    assert seen.organization == blue
    assert seen.current == blue
    assert seen.membership.role == Role.TECHNICIAN


def test_then_the_header(member, blue):
    _, seen = run(member, HTTP_X_ORGANIZATION="blue")
    assert seen.organization == blue


def test_then_the_primary_organization(member, acme):
    _, seen = run(member)
    assert seen.organization == acme
    assert seen.membership.role == Role.OWNER
    assert seen.current == acme


@override_settings(
    ROUTEOPTIMIZER_BASE_DOMAIN="routeoptimizer.example",
    ALLOWED_HOSTS=[".routeoptimizer.example", ".localhost"],
)
def test_the_base_domain_is_a_setting(member, blue):
    _, on_base = run(member, host="blue.routeoptimizer.example")
    _, elsewhere = run(member, host="blue.localhost")
    assert on_base.organization == blue
    assert elsewhere.organization != blue  # not a subdomain of ours: the primary one


def test_the_organization_is_current_for_the_request_only(member, acme):
    _, seen = run(member)
    assert seen.current == acme
    assert current_organization_or_none() is None


@pytest.mark.parametrize(
    ("host", "headers"),
    [
        ("stranger.localhost", {}),
        ("localhost", {"HTTP_X_ORGANIZATION": "stranger"}),
        ("nosuch.localhost", {}),
        ("localhost", {"HTTP_X_ORGANIZATION": "nosuch"}),
        ("acme.localhost", {"HTTP_X_ORGANIZATION": "blue"}),
    ],
    ids=[
        "subdomain-not-member",
        "header-not-member",
        "unknown-subdomain",
        "unknown-header",
        "conflicting",
    ],
)
def test_an_organization_the_user_does_not_belong_to_is_404(member, host, headers):
    OrganizationFactory(slug="stranger")
    with pytest.raises(Http404):
        run(member, host=host, **headers)


def test_under_api_the_404_is_json(member):
    OrganizationFactory(slug="stranger")
    response, _ = run(member, path="/api/v1/customers/", HTTP_X_ORGANIZATION="stranger")

    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert "unknown organization 'stranger'" in json.loads(response.content)["error"]


def test_unknown_and_foreign_organizations_get_the_same_answer(member):
    OrganizationFactory(slug="stranger")
    foreign, _ = run(member, path="/api/x", HTTP_X_ORGANIZATION="stranger")
    unknown, _ = run(member, path="/api/x", HTTP_X_ORGANIZATION="nosuch")
    assert json.loads(foreign.content)["error"].replace("stranger", "?") == json.loads(
        unknown.content
    )["error"].replace("nosuch", "?")


def test_membership_is_checked_every_time(member, blue):
    _, seen = run(member, HTTP_X_ORGANIZATION="blue")
    assert seen.organization == blue

    member.memberships.filter(organization=blue).delete()

    with pytest.raises(Http404):
        run(member, HTTP_X_ORGANIZATION="blue")


def test_an_invitation_not_accepted_yet_is_not_membership(acme):
    invited = UserFactory()
    MembershipFactory(user=invited, organization=acme, invitation_token="0" * 64)
    with pytest.raises(Http404):
        run(invited, HTTP_X_ORGANIZATION="acme")


def test_an_inactive_organization_is_unknown(member, blue):
    blue.is_active = False
    blue.save()
    with pytest.raises(Http404):
        run(member, HTTP_X_ORGANIZATION="blue")


def test_a_user_without_a_primary_organization_gets_none(acme):
    user = UserFactory()
    MembershipFactory(user=user, organization=acme, is_primary_org=False)
    _, seen = run(user)
    assert seen.organization is None and seen.membership is None and seen.current is None


def test_anonymous_requests_get_no_organization_and_no_404(acme):
    # The API's bearer tokens are checked inside the view, by the same resolver.
    _, seen = run(AnonymousUser(), HTTP_X_ORGANIZATION="acme")
    assert seen.organization is None and seen.current is None


def test_the_middleware_is_installed_after_authentication():
    from django.conf import settings

    middleware = settings.MIDDLEWARE
    assert middleware.index("tenants.middleware.CurrentOrganizationMiddleware") > middleware.index(
        "django.contrib.auth.middleware.AuthenticationMiddleware"
    )
