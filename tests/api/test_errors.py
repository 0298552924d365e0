"""Bad input gets one line naming the problem and the fix, and changes nothing."""

import pytest

from routing.models import Customer, Driver
from tests.tenancy_data import unscoped

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("post", "/api/v1/customers/"),
        ("patch", "/api/v1/customers/{id}/"),
        ("put", "/api/v1/customers/{id}/"),
        ("post", "/api/v1/auth/token"),
    ],
)
def test_malformed_json_is_400_with_one_line(client_as, acme, method, url):
    client = client_as(acme)
    before = list(unscoped(Customer).order_by("id").values())

    response = getattr(client, method)(
        url.format(id=acme.ids(Customer)[0]),
        data='{"display_name": "Half',
        content_type="application/json",
    )

    assert response.status_code == 400
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"].startswith("malformed JSON: JSON parse error")
    assert body["error"].endswith('send a JSON object with "Content-Type: application/json"')
    assert "\n" not in body["error"]
    assert list(unscoped(Customer).order_by("id").values()) == before


def test_a_body_that_is_not_json_is_415_saying_to_send_json(client_as, acme):
    response = client_as(acme).post(
        "/api/v1/customers/", data="display_name=x", content_type="text/plain"
    )

    assert response.status_code == 415
    assert "Content-Type: application/json" in response.json()["error"]


def test_invalid_fields_are_400_with_one_line_and_the_fields(client_as, acme):
    response = client_as(acme).post("/api/v1/customers/", {"service_day": "someday"}, format="json")

    assert response.status_code == 400
    body = response.json()
    assert body["error"].startswith("invalid input: ")
    assert "service_day: " in body["error"] and "display_name: " in body["error"]
    assert "\n" not in body["error"]
    assert {"service_day", "display_name", "address"} <= set(body["fields"])


def test_an_invalid_filter_value_is_400(client_as, acme):
    response = client_as(acme).get("/api/v1/customers/", {"service_day": "someday"})

    assert response.status_code == 400
    assert "service_day" in response.json()["error"]


def test_deleting_a_driver_customers_still_need_is_409_and_deletes_nothing(client_as, acme):
    driver = acme.rows[Driver][1]

    response = client_as(acme).delete(f"/api/v1/drivers/{driver.pk}/")

    assert response.status_code == 409
    assert response.json()["error"] == (
        "still referenced by customers; reassign or delete those first, then retry"
    )
    assert unscoped(Driver).filter(pk=driver.pk).exists()


def test_an_unknown_organization_header_is_404(client_as, acme):
    response = client_as(acme, HTTP_X_ORGANIZATION="no-such-organization").get("/api/v1/customers/")

    assert response.status_code == 404
    assert response.json()["error"].startswith("unknown organization 'no-such-organization'")


def test_pages_past_the_end_are_404_one_line(client_as, acme):
    response = client_as(acme).get("/api/v1/customers/", {"page": 99})

    assert response.status_code == 404
    assert set(response.json()) == {"error"}


def test_the_openapi_schema_is_served_and_describes_every_resource(client):
    response = client.get("/api/v1/schema/", {"format": "json"})

    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    assert {
        "/api/v1/auth/token",
        "/api/v1/customers/",
        "/api/v1/customers/{id}/",
        "/api/v1/drivers/",
        "/api/v1/drivers/{id}/",
        "/api/v1/routes/",
        "/api/v1/routes/{id}/",
        "/api/v1/route-stops/",
        "/api/v1/route-stops/{id}/",
    } <= set(schema["paths"])
    assert schema["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    customer = schema["components"]["schemas"]["Customer"]
    assert "organization" in customer["properties"]
    assert "organization" in customer.get("required", []) or customer["properties"][
        "organization"
    ].get("readOnly")
    assert "organization" not in schema["components"]["schemas"]["CustomerRequest"]["properties"]
    customer_filters = {
        p["name"] for p in schema["paths"]["/api/v1/customers/"]["get"]["parameters"]
    }
    assert {"service_day", "service_type", "status", "is_active", "assigned_driver", "search"} <= (
        customer_filters
    )


def test_the_schema_generates_without_warnings(tmp_path):
    from django.core.management import call_command

    call_command(
        "spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml")
    )
