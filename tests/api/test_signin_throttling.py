"""Password guessing is throttled per account and per client address, on the token endpoint and
the admin login alike; the client address is the socket's unless trusted proxies say otherwise,
and tokens are issued only where they would authenticate."""

import pytest
from django.test import Client

from accounts.models import ApiToken
from accounts.signin import lockout_message
from routeoptimizer.client_address import client_address
from tenants.models import Organization, OrganizationUser, Role
from tests.tenancy_data import PASSWORD

pytestmark = pytest.mark.django_db

TOKEN_URL = "/api/v1/auth/token"
LIMIT = 3


@pytest.fixture(autouse=True)
def _small_limit(settings):
    settings.AXES_FAILURE_LIMIT = LIMIT


def issue(client, email, password, **extra):
    return client.post(
        TOKEN_URL, {"email": email, "password": password}, content_type="application/json", **extra
    )


def admin_login(client, email, password, **extra):
    return client.post(
        "/admin/login/?next=/admin/", {"username": email, "password": password}, **extra
    )


def test_a_new_x_forwarded_for_per_attempt_does_not_reset_the_count(client, acme):
    responses = [
        issue(client, "owner@acme.test", "guess", HTTP_X_FORWARDED_FOR=f"203.0.113.{n}")
        for n in range(LIMIT + 2)
    ]

    assert [r.status_code for r in responses[: LIMIT - 1]] == [401] * (LIMIT - 1)
    assert responses[-1].status_code == 429
    assert responses[-1].json() == {"error": lockout_message()}
    assert int(responses[-1]["Retry-After"]) > 0
    # Locked out: the right password does not get in either, whatever the header says.
    right = issue(client, "owner@acme.test", PASSWORD, HTTP_X_FORWARDED_FOR="198.51.100.7")
    assert right.status_code == 429
    assert not ApiToken.objects.exists()


def test_an_account_is_locked_out_across_client_addresses(acme):
    for n in range(LIMIT):
        issue(Client(REMOTE_ADDR=f"192.0.2.{n}"), "OWNER@acme.test", "guess")

    elsewhere = issue(Client(REMOTE_ADDR="192.0.2.200"), "owner@acme.test", PASSWORD)
    other_account = issue(Client(REMOTE_ADDR="192.0.2.200"), "manager@acme.test", PASSWORD)

    assert elsewhere.status_code == 429
    assert elsewhere.json() == {"error": lockout_message()}
    assert other_account.status_code == 201


def test_a_client_address_is_locked_out_across_accounts(acme):
    guesser = Client(REMOTE_ADDR="192.0.2.66")
    for role in list(Role)[:LIMIT]:
        issue(guesser, f"{role}@acme.test", "guess")

    from_guesser = issue(guesser, "readonly@acme.test", PASSWORD)
    from_elsewhere = issue(Client(REMOTE_ADDR="192.0.2.67"), "readonly@acme.test", PASSWORD)

    assert from_guesser.status_code == 429
    assert from_elsewhere.status_code == 201


def test_the_admin_login_is_locked_out_with_a_clear_page(acme):
    staff = acme.members[Role.OWNER]
    type(staff).objects.filter(pk=staff.pk).update(is_staff=True)
    client = Client()
    for n in range(LIMIT):
        response = admin_login(
            client, staff.email, f"guess {n}", HTTP_X_FORWARDED_FOR=f"10.0.0.{n}"
        )
        assert response.status_code in (200, 429)

    locked = admin_login(client, staff.email, PASSWORD)

    assert locked.status_code == 429
    page = locked.content.decode()
    assert "Too many failed sign-ins" in page
    assert lockout_message() in page
    assert "_auth_user_id" not in client.session


def test_admin_and_api_failures_count_together_for_an_account(acme):
    for n in range(LIMIT - 1):
        admin_login(Client(REMOTE_ADDR=f"192.0.2.{n}"), "owner@acme.test", "guess")
    issue(Client(REMOTE_ADDR="192.0.2.99"), "owner@acme.test", "guess")

    assert issue(Client(REMOTE_ADDR="192.0.2.98"), "owner@acme.test", PASSWORD).status_code == 429


def test_the_request_rate_throttle_ignores_a_spoofed_x_forwarded_for(client, acme, settings):
    settings.AXES_FAILURE_LIMIT = 1000
    responses = [
        issue(client, "owner@acme.test", "guess", HTTP_X_FORWARDED_FOR=f"203.0.113.{n}")
        for n in range(35)
    ]

    assert responses[-1].status_code == 429
    assert responses[-1].json()["error"].startswith("too many requests: retry in ")


@pytest.mark.parametrize(
    ("proxies", "forwarded_for", "expected"),
    [
        (0, "203.0.113.9", "192.0.2.1"),
        (1, "203.0.113.9", "203.0.113.9"),
        (1, "6.6.6.6, 203.0.113.9", "203.0.113.9"),
        (2, "6.6.6.6, 203.0.113.9, 10.0.0.2", "203.0.113.9"),
        (2, "203.0.113.9", "192.0.2.1"),
        (1, "not-an-address", "192.0.2.1"),
        (1, "", "192.0.2.1"),
    ],
)
def test_the_client_address_comes_from_the_trusted_proxies_only(
    rf, settings, proxies, forwarded_for, expected
):
    settings.ROUTEOPTIMIZER_TRUSTED_PROXIES = proxies
    request = rf.get("/", REMOTE_ADDR="192.0.2.1", HTTP_X_FORWARDED_FOR=forwarded_for)

    assert client_address(request) == expected


def test_behind_one_trusted_proxy_its_address_is_the_one_locked_out(acme, settings):
    settings.ROUTEOPTIMIZER_TRUSTED_PROXIES = 1
    proxy = Client(REMOTE_ADDR="10.0.0.1")
    for role in list(Role)[:LIMIT]:
        issue(proxy, f"{role}@acme.test", "guess", HTTP_X_FORWARDED_FOR="1.1.1.1, 203.0.113.5")

    same_client = issue(proxy, "readonly@acme.test", PASSWORD, HTTP_X_FORWARDED_FOR="203.0.113.5")
    other_client = issue(proxy, "readonly@acme.test", PASSWORD, HTTP_X_FORWARDED_FOR="203.0.113.6")

    assert same_client.status_code == 429
    assert other_client.status_code == 201


# --- tokens only where they would authenticate -----------------------------------------------


def test_no_token_for_a_pending_invitation_and_the_password_is_not_confirmed(client, acme):
    OrganizationUser.objects.filter(user=acme.members[Role.MANAGER]).update(
        invitation_token="0" * 64, invitation_accepted_at=None
    )

    right = issue(client, "manager@acme.test", PASSWORD)
    wrong = issue(client, "manager@acme.test", "wrong password")

    assert right.status_code == wrong.status_code == 401
    assert right.json() == wrong.json()
    assert not ApiToken.objects.exists()


def test_no_token_for_a_deactivated_organization(client, acme, settings):
    settings.AXES_FAILURE_LIMIT = 10
    Organization.objects.filter(pk=acme.organization.pk).update(is_active=False)

    right = issue(client, "owner@acme.test", PASSWORD)
    named = client.post(
        TOKEN_URL,
        {"email": "owner@acme.test", "password": PASSWORD, "organization": "acme"},
        content_type="application/json",
    )

    assert right.status_code == 401
    assert right.json() == issue(client, "owner@acme.test", "wrong").json()
    assert named.status_code == 401
    assert not ApiToken.objects.exists()


def test_a_pending_invitation_to_another_organization_is_not_a_way_in(client, acme, blue):
    owner = acme.members[Role.OWNER]
    OrganizationUser.objects.create(
        organization=blue.organization,
        user=owner,
        role=Role.OWNER,
        invitation_token="1" * 64,
        invitation_accepted_at=None,
    )

    response = client.post(
        TOKEN_URL,
        {"email": owner.email, "password": PASSWORD, "organization": "blue"},
        content_type="application/json",
    )

    assert response.status_code == 404
    assert not ApiToken.objects.exists()


def test_the_primary_organization_deactivated_falls_back_to_the_only_usable_one(client, acme, blue):
    owner = acme.members[Role.OWNER]
    OrganizationUser.objects.create(organization=blue.organization, user=owner, role="readonly")
    Organization.objects.filter(pk=acme.organization.pk).update(is_active=False)

    response = issue(client, owner.email, PASSWORD)

    assert response.status_code == 201
    assert response.json()["organization"] == "blue"
