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
    client, demo, acme
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


def test_one_customer_by_id(client, demo):
    _, customers = demo

    response = client.get(f"/api/customers/{customers[1].pk}")

    assert response.status_code == 200
    assert response.json()["id"] == str(customers[1].pk)
    assert list(response.json()) == LEGACY_FIELDS


@pytest.mark.parametrize("which", ["other organization", "unknown", "malformed"])
def test_customers_outside_the_default_organization_are_not_found(client, demo, acme, which):
    customer_id = {
        "other organization": acme.ids(Customer)[0],
        "unknown": "00000000-0000-0000-0000-000000000000",
        "malformed": "not-a-uuid",
    }[which]

    response = client.get(f"/api/customers/{customer_id}")

    assert response.status_code == 404
    # FastAPI's error key, which the old clients read, next to the API's.
    assert response.json() == {"detail": "Customer not found", "error": "Customer not found"}


def test_anonymous_callers_cannot_pick_another_organization(client, demo, acme):
    response = client.get("/api/customers", HTTP_X_ORGANIZATION="acme")

    assert response.status_code == 404


def test_with_the_default_organization_unset_a_token_is_required(client, demo, settings):
    settings.ROUTEOPTIMIZER_LEGACY_API_ORGANIZATION = ""

    response = client.get("/api/customers")

    assert response.status_code == 401
