"""POST /api/v1/auth/token: issue, use and revoke a token bound to one user and organization."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import ApiToken
from accounts.tokens import hash_token
from routing.models import Customer
from tenants.models import OrganizationUser, Role
from tests.api.conftest import client_with_token
from tests.tenancy_data import PASSWORD

pytestmark = pytest.mark.django_db

TOKEN_URL = "/api/v1/auth/token"


def issue(client, **body):
    return client.post(TOKEN_URL, body, content_type="application/json")


def test_issue_use_and_revoke_a_token(client, acme):
    response = issue(client, email="manager@acme.test", password=PASSWORD, name="dispatch board")

    assert response.status_code == 201
    body = response.json()
    assert body["organization"] == "acme"
    assert body["role"] == "manager"
    assert body["token_type"] == "Bearer"
    assert body["expires_at"]
    token = body["token"]
    # Only the hash is stored.
    stored = ApiToken.objects.get(key_hash=hash_token(token))
    assert stored.name == "dispatch board"
    assert token not in {stored.key_hash, stored.name}

    api = client_with_token(token)
    listed = api.get("/api/v1/customers/")
    assert listed.status_code == 200
    assert listed.json()["count"] == len(acme.rows[Customer])
    stored.refresh_from_db()
    assert stored.last_used_at is not None

    assert api.delete(TOKEN_URL).status_code == 204
    after = api.get("/api/v1/customers/")
    assert after.status_code == 401
    assert "revoked" in after.json()["error"]
    assert after["WWW-Authenticate"].startswith("Bearer")


def test_email_is_case_insensitive_and_the_default_is_the_primary_organization(client, acme):
    response = issue(client, email="OWNER@Acme.TEST", password=PASSWORD)

    assert response.status_code == 201
    assert response.json()["organization"] == "acme"


def test_a_member_of_two_organizations_picks_one_by_slug(client, acme, blue):
    owner = acme.members[Role.OWNER]
    OrganizationUser.objects.create(organization=blue.organization, user=owner, role="readonly")

    default = issue(client, email=owner.email, password=PASSWORD)
    chosen = issue(client, email=owner.email, password=PASSWORD, organization="blue")

    assert default.json()["organization"] == "acme"
    assert (chosen.json()["organization"], chosen.json()["role"]) == ("blue", "readonly")
    listed = client_with_token(chosen.json()["token"]).get("/api/v1/customers/")
    assert {row["organization"] for row in listed.json()["results"]} == {"blue"}


@pytest.mark.parametrize(
    "body",
    [
        {"email": "owner@acme.test", "password": "wrong password"},
        {"email": "nobody@acme.test", "password": PASSWORD},
    ],
)
def test_wrong_credentials_are_401_with_one_line(client, acme, body):
    response = issue(client, **body)

    assert response.status_code == 401
    assert response.json() == {
        "error": "wrong email or password; check both, or reset the password"
    }
    assert not ApiToken.objects.exists()


@pytest.mark.parametrize("slug", ["blue", "no-such-organization"])
def test_an_organization_the_user_is_not_a_member_of_is_404_like_an_unknown_one(
    client, acme, blue, slug
):
    response = issue(client, email="owner@acme.test", password=PASSWORD, organization=slug)

    assert response.status_code == 404
    assert response.json() == {
        "error": f"unknown organization '{slug}' (or you are not a member); check the slug, "
        f"or leave organization out to use your primary organization"
    }
    assert not ApiToken.objects.exists()


def test_a_token_for_one_organization_with_x_organization_of_another_is_404(client_as, acme, blue):
    # The token's user is a member of both: the token still opens acme only.
    OrganizationUser.objects.create(
        organization=blue.organization, user=acme.members[Role.OWNER], role="owner"
    )
    client = client_as(acme, Role.OWNER, HTTP_X_ORGANIZATION="blue")

    for url in [
        "/api/v1/customers/",
        f"/api/v1/customers/{acme.ids(Customer)[0]}/",
        f"/api/v1/customers/{blue.ids(Customer)[0]}/",
        "/api/customers",
    ]:
        response = client.get(url)
        assert response.status_code == 404, url
        assert "this token is for 'acme'" in response.json()["error"]

    same = client_as(acme, Role.OWNER, HTTP_X_ORGANIZATION="acme").get("/api/v1/customers/")
    assert same.status_code == 200


def _reads(captured) -> list[str]:
    """The statements of a request that read or write something: not the transaction's own
    (its savepoints, with the claim that rides along)."""
    control = ("SAVEPOINT", "RELEASE SAVEPOINT", "ROLLBACK TO SAVEPOINT")
    statements = [query["sql"] for query in captured.captured_queries]
    return [
        statement for statement in statements if not statement.split("; ")[-1].startswith(control)
    ]


def test_an_authenticated_detail_request_is_authenticated_in_one_query(client_as, acme):
    customer = acme.rows[Customer][0]
    client = client_as(acme)
    assert client.get(f"/api/v1/customers/{customer.pk}/").status_code == 200  # last_used_at set

    with CaptureQueriesContext(connection) as captured:
        response = client.get(f"/api/v1/customers/{customer.pk}/")

    assert response.status_code == 200
    assert response.json()["id"] == str(customer.pk)
    # The token, its membership, its user and its organization in one query; then the customer.
    authentication, read = _reads(captured)
    assert "tenancy_api_token_membership(" in authentication
    assert 'FROM "customers"' in read


def test_a_token_stops_working_when_the_membership_ends(client_as, acme):
    client = client_as(acme, Role.MANAGER)
    OrganizationUser.objects.filter(user=acme.members[Role.MANAGER]).delete()

    response = client.get("/api/v1/customers/")

    assert response.status_code == 401
    assert "no longer an active member of organization 'acme'" in response.json()["error"]


def test_a_token_stops_working_when_the_user_is_deactivated(client_as, acme):
    client = client_as(acme, Role.MANAGER)
    acme.members[Role.MANAGER].__class__.objects.filter(pk=acme.members[Role.MANAGER].pk).update(
        is_active=False
    )

    assert client.get("/api/v1/customers/").status_code == 401


def test_a_token_stops_working_when_its_organization_is_deactivated(client_as, acme):
    client = client_as(acme, Role.OWNER)
    type(acme.organization).objects.filter(pk=acme.organization.pk).update(is_active=False)

    response = client.get("/api/v1/customers/")

    assert response.status_code == 401
    assert "organization 'acme' is deactivated" in response.json()["error"]


def test_an_expired_token_is_refused(client_as, acme):
    client = client_as(acme)
    ApiToken.objects.update(expires_at=timezone.now() - timedelta(seconds=1))

    response = client.get("/api/v1/customers/")

    assert response.status_code == 401
    assert "expired" in response.json()["error"]


@pytest.mark.parametrize(
    "header",
    ["Bearer", "Bearer a b", "Bearer ro_not-a-real-token"],
)
def test_bad_authorization_headers_are_401_one_line(client, acme, header):
    response = client.get("/api/v1/customers/", HTTP_AUTHORIZATION=header)

    assert response.status_code == 401
    assert set(response.json()) == {"error"}
    assert "\n" not in response.json()["error"]


def test_no_token_is_401_saying_how_to_get_one(client, acme):
    response = client.get("/api/v1/customers/")

    assert response.status_code == 401
    assert "POST /api/v1/auth/token" in response.json()["error"]


def test_revoking_needs_the_token_being_revoked(client):
    assert client.delete(TOKEN_URL).status_code == 401


def test_issuing_ignores_a_stale_authorization_header(client, acme):
    response = client.post(
        TOKEN_URL,
        {"email": "owner@acme.test", "password": PASSWORD},
        content_type="application/json",
        HTTP_AUTHORIZATION="Bearer ro_revoked-long-ago",
    )

    assert response.status_code == 201


def test_password_guessing_is_throttled(client, acme):
    responses = [issue(client, email="owner@acme.test", password=f"guess {n}") for n in range(40)]

    # Ten failures lock the account out (django-axes); past 30 a minute the address is throttled.
    assert [r.status_code for r in responses[:9]] == [401] * 9
    assert responses[9].status_code == 429
    assert responses[9].json()["error"].startswith("too many failed sign-ins")
    assert responses[-1].status_code == 429
    assert responses[-1].json()["error"].startswith("too many requests")


def test_a_subdomain_naming_another_organization_is_404_and_its_own_is_fine(client_as, acme, blue):
    client = client_as(acme)

    other = client.get("/api/v1/customers/", HTTP_HOST="blue.localhost")
    own = client.get("/api/v1/customers/", HTTP_HOST="acme.localhost")

    assert other.status_code == 404
    assert "this token is for 'acme'" in other.json()["error"]
    assert own.status_code == 200
    assert own.json()["count"] == len(acme.rows[Customer])


def test_the_organization_header_is_case_insensitive(client_as, acme):
    response = client_as(acme, HTTP_X_ORGANIZATION="ACME").get("/api/v1/customers/")

    assert response.status_code == 200


def test_a_membership_whose_invitation_is_pending_does_not_authenticate(client_as, acme):
    client = client_as(acme, Role.MANAGER)
    OrganizationUser.objects.filter(user=acme.members[Role.MANAGER]).update(
        invitation_token="0" * 64, invitation_accepted_at=None
    )

    response = client.get("/api/v1/customers/")

    assert response.status_code == 401
    assert "no longer an active member" in response.json()["error"]
