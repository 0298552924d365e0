"""/api/customers keeps answering the old clients: the legacy shape, one organization."""

import pytest

from routing.legacy import LEGACY_COLUMNS
from routing.models import Customer
from tenants.context import organization_context
from tenants.models import Organization
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db

LEGACY_FIELDS = [column.name for column in LEGACY_COLUMNS["customers"]]


@pytest.fixture
def cutover(settings):
    """The cutover window of the runbook: anonymous old clients get `demo`."""
    settings.ROUTEOPTIMIZER_LEGACY_API_ORGANIZATION = "demo"


@pytest.fixture
def demo(db):
    """The default organization that adopted the legacy rows (seeded by M005)."""
    organization, _ = Organization.objects.get_or_create(
        slug="demo", defaults={"name": "Demo Organization"}
    )
    with organization_context(organization):
        customers = [
            CustomerFactory(organization=organization, display_name=f"Demo {n}") for n in range(3)
        ]
    return organization, customers


def test_without_a_token_the_list_is_the_default_organizations_in_the_legacy_shape(
    client, cutover, demo, acme
):
    _, customers = demo

    response = client.get("/api/customers")

    assert response.status_code == 200
    rows = response.json()
    assert isinstance(rows, list)
    assert {row["id"] for row in rows} == {str(c.pk) for c in customers}
    for row in rows:
        assert list(row) == LEGACY_FIELDS
    first = next(row for row in rows if row["id"] == str(customers[0].pk))
    assert first["display_name"] == "Demo 0"
    assert first["assigned_driver_id"] is None
    # `timestamp without time zone` as the old application sent it: no offset.
    assert "+" not in first["created_at"] and not first["created_at"].endswith("Z")
    assert response["Deprecation"] == "true"
    assert response["Link"] == '</api/v1/customers/>; rel="successor-version"'


def test_one_customer_by_id(client, cutover, demo):
    _, customers = demo

    response = client.get(f"/api/customers/{customers[1].pk}")

    assert response.status_code == 200
    assert response.json()["id"] == str(customers[1].pk)
    assert list(response.json()) == LEGACY_FIELDS


@pytest.mark.parametrize("which", ["other organization", "unknown", "malformed"])
def test_customers_outside_the_default_organization_are_not_found(
    client, cutover, demo, acme, which
):
    customer_id = {
        "other organization": acme.ids(Customer)[0],
        "unknown": "00000000-0000-0000-0000-000000000000",
        "malformed": "not-a-uuid",
    }[which]

    response = client.get(f"/api/customers/{customer_id}")

    assert response.status_code == 404
    # FastAPI's error key, which the old clients read, next to the API's.
    assert response.json() == {"detail": "Customer not found", "error": "Customer not found"}


def test_anonymous_callers_cannot_pick_another_organization(client, cutover, demo, acme):
    response = client.get("/api/customers", HTTP_X_ORGANIZATION="acme")

    assert response.status_code == 404


def test_with_the_default_organization_unset_a_token_is_required(client, demo, settings):
    settings.ROUTEOPTIMIZER_LEGACY_API_ORGANIZATION = ""

    response = client.get("/api/customers")

    assert response.status_code == 401


def test_off_by_default_anonymous_callers_get_nothing(client, demo):
    from routeoptimizer import settings as project_settings

    assert project_settings.ROUTEOPTIMIZER_LEGACY_API_ORGANIZATION == ""

    listed = client.get("/api/customers")
    one = client.get(f"/api/customers/{demo[1][0].pk}")

    assert listed.status_code == one.status_code == 401
    assert "Authorization: Bearer" in listed.json()["error"]
    assert "Demo 0" not in listed.content.decode()


def test_a_token_works_whatever_the_setting(client_as, acme):
    response = client_as(acme).get("/api/customers")

    assert response.status_code == 200
    assert {row["id"] for row in response.json()} == set(acme.ids(Customer))


def test_a_deactivated_organization_is_never_served_anonymously(client, cutover, demo):
    organization, customers = demo
    Organization.objects.filter(pk=organization.pk).update(is_active=False)

    listed = client.get("/api/customers")
    one = client.get(f"/api/customers/{customers[0].pk}")

    assert listed.status_code == one.status_code == 404
    assert set(listed.json()) == {"error", "detail"}
    assert "Demo" not in listed.content.decode() + one.content.decode()


def test_anonymous_callers_are_throttled_per_client_address(client, cutover, demo, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {
            **settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"],
            "legacy_customers": "5/min",
        },
    }
    responses = [
        client.get("/api/customers", HTTP_X_FORWARDED_FOR=f"203.0.113.{n}") for n in range(6)
    ]
    elsewhere = client.get("/api/customers", REMOTE_ADDR="192.0.2.50")

    assert [r.status_code for r in responses] == [200] * 5 + [429]
    assert responses[-1].json()["error"].startswith("too many requests: retry in ")
    assert elsewhere.status_code == 200
