"""Neither organization can see, count, filter into, change or delete the other's rows."""

import pytest

from routing.models import Customer, Driver, Route, RouteStop
from tests.tenancy_data import unscoped

pytestmark = pytest.mark.django_db

RESOURCES = {
    "customers": Customer,
    "drivers": Driver,
    "routes": Route,
    "route-stops": RouteStop,
}


def new_row_body(path: str, data) -> dict:
    """A valid body for POST/PUT on `path`, referencing only `data`'s organization's rows."""
    return {
        "customers": {
            "display_name": "New customer",
            "address": "9 Elm St",
            "service_type": "residential",
            "difficulty": 1,
            "service_day": "friday",
            "assigned_driver": data.ids(Driver)[1],
        },
        "drivers": {
            "name": "New driver",
            "start_location_address": "1 Depot Rd",
            "end_location_address": "1 Depot Rd",
            "working_hours_start": "08:00",
            "working_hours_end": "17:00",
            "max_customers_per_day": 10,
        },
        "routes": {"driver": data.ids(Driver)[1], "service_day": "friday"},
        "route-stops": {
            "route": data.ids(Route)[1],
            "customer": data.ids(Customer)[2],
            "sequence": 9,
        },
    }[path]


def all_pages(client, url: str) -> list[dict]:
    rows = []
    while url:
        response = client.get(url)
        assert response.status_code == 200, response.json()
        rows += response.json()["results"]
        url = response.json()["next"]
    return rows


@pytest.mark.parametrize("path", RESOURCES)
def test_lists_and_counts_hold_only_the_callers_organization(client_as, acme, blue, path):
    model = RESOURCES[path]
    for own, other in ((acme, blue), (blue, acme)):
        client = client_as(own)

        response = client.get(f"/api/v1/{path}/", {"page_size": 1})
        rows = all_pages(client, f"/api/v1/{path}/?page_size=1")

        assert response.json()["count"] == len(own.rows[model])
        assert {row["id"] for row in rows} == set(own.ids(model))
        assert not {row["id"] for row in rows} & set(other.ids(model))
        assert {row["organization"] for row in rows} == {own.slug}


@pytest.mark.parametrize("path", RESOURCES)
@pytest.mark.parametrize("method", ["get", "put", "patch", "delete"])
def test_other_organizations_ids_are_not_found(client_as, acme, blue, path, method):
    model = RESOURCES[path]
    client = client_as(acme)
    for other_id in blue.ids(model):
        response = getattr(client, method)(
            f"/api/v1/{path}/{other_id}/", new_row_body(path, acme), format="json"
        )

        assert response.status_code == 404, response.json()
        assert set(response.json()) == {"error"}
        assert "acme" in response.json()["error"]
    # Nothing of the other organization changed or went away.
    assert unscoped(model).filter(organization=blue.organization).count() == len(blue.rows[model])
    for row in blue.rows[model]:
        fresh = unscoped(model).get(pk=row.pk)
        assert fresh.organization_id == blue.organization.id
        assert fresh.__dict__.get("updated_at") == row.__dict__.get("updated_at")


def test_a_malformed_id_is_not_found_too(client_as, acme):
    response = client_as(acme).get("/api/v1/customers/not-a-uuid/")

    assert response.status_code == 404


@pytest.mark.parametrize(
    ("path", "parameter", "model"),
    [
        ("customers", "assigned_driver", Driver),
        ("routes", "driver", Driver),
        ("route-stops", "route", Route),
        ("route-stops", "customer", Customer),
    ],
)
def test_filtering_by_the_other_organizations_ids_finds_nothing(
    client_as, acme, blue, path, parameter, model
):
    client = client_as(acme)
    for other_id in blue.ids(model):
        response = client.get(f"/api/v1/{path}/", {parameter: other_id})

        assert response.status_code == 200
        assert response.json()["count"] == 0
    own_id = acme.ids(model)[1]
    assert client.get(f"/api/v1/{path}/", {parameter: own_id}).json()["count"] >= 1


@pytest.mark.parametrize(
    ("path", "query"),
    [
        ("customers", {"search": "Blue Lagoon"}),
        ("customers", {"search": "blue.test"}),
        ("customers", {"service_day": "monday"}),
        ("customers", {"is_active": "true", "status": "active", "service_type": "residential"}),
        ("drivers", {"is_active": "true"}),
        ("drivers", {"search": "Blue Lagoon"}),
        ("routes", {"service_day": "tuesday"}),
    ],
)
def test_filters_and_search_stay_inside_the_organization(client_as, acme, blue, path, query):
    url = f"/api/v1/{path}/?" + "&".join(f"{key}={value}" for key, value in query.items())
    rows = all_pages(client_as(acme), url)

    assert {row["organization"] for row in rows} <= {"acme"}
    assert not {row["id"] for row in rows} & set(blue.ids(RESOURCES[path]))


@pytest.mark.parametrize("path", RESOURCES)
def test_create_puts_the_row_in_the_callers_organization_whatever_the_body_says(
    client_as, acme, blue, path
):
    body = {**new_row_body(path, acme), "organization": blue.slug}

    response = client_as(acme).post(f"/api/v1/{path}/", body, format="json")

    assert response.status_code == 201, response.json()
    assert response.json()["organization"] == "acme"
    row = unscoped(RESOURCES[path]).get(pk=response.json()["id"])
    assert row.organization_id == acme.organization.id


@pytest.mark.parametrize("path", RESOURCES)
def test_update_cannot_move_a_row_to_another_organization(client_as, acme, blue, path):
    row = acme.rows[RESOURCES[path]][1]

    response = client_as(acme).patch(
        f"/api/v1/{path}/{row.pk}/", {"organization": blue.slug}, format="json"
    )

    assert response.status_code == 200
    assert response.json()["organization"] == "acme"
    assert unscoped(RESOURCES[path]).get(pk=row.pk).organization_id == acme.organization.id


@pytest.mark.parametrize(
    ("path", "reference", "model"),
    [
        ("customers", "assigned_driver", Driver),
        ("routes", "driver", Driver),
        ("route-stops", "route", Route),
        ("route-stops", "customer", Customer),
    ],
)
def test_a_body_referencing_the_other_organizations_row_is_refused(
    client_as, acme, blue, path, reference, model
):
    body = {**new_row_body(path, acme), reference: blue.ids(model)[0]}
    client = client_as(acme)

    created = client.post(f"/api/v1/{path}/", body, format="json")
    updated = client.patch(
        f"/api/v1/{path}/{acme.ids(RESOURCES[path])[1]}/",
        {reference: blue.ids(model)[0]},
        format="json",
    )

    for response in (created, updated):
        assert response.status_code == 400
        assert reference in response.json()["fields"]
        assert "does not exist" in response.json()["error"]
        assert "\n" not in response.json()["error"]


def test_legacy_customers_with_a_token_serve_that_organization_only(client_as, acme, blue):
    client = client_as(blue)

    listed = client.get("/api/customers")
    other = client.get(f"/api/customers/{acme.ids(Customer)[0]}")

    assert {row["id"] for row in listed.json()} == set(blue.ids(Customer))
    assert other.status_code == 404
