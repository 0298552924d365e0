"""The role matrix of PRODUCT.md, each role against each action on each resource, over HTTP.

EXPECTED is written out from PRODUCT.md ("Roles"), not derived from tenants.permissions, so a
change to either shows up here. Drivers and route stops are planned like routes.
"""

import pytest

from routing.models import Customer, Driver, Route, RouteStop
from tenants.context import organization_context
from tenants.models import Role
from tenants.permissions import ROLE_MATRIX, Action, Resource, role_can
from tests.api.test_isolation import new_row_body
from tests.tenancy_data import DriverFactory, unscoped

pytestmark = pytest.mark.django_db

OWNER, ADMIN, MANAGER = Role.OWNER, Role.ADMIN, Role.MANAGER
ADMINS = {OWNER, ADMIN}
EVERYONE = set(Role)
PLANNERS = {OWNER, ADMIN, MANAGER}

EXPECTED = {
    "customers": {"view": EVERYONE, "create": PLANNERS, "change": PLANNERS, "delete": ADMINS},
    "drivers": {"view": EVERYONE, "create": PLANNERS, "change": PLANNERS, "delete": PLANNERS},
    "routes": {"view": EVERYONE, "create": PLANNERS, "change": PLANNERS, "delete": PLANNERS},
    "route-stops": {"view": EVERYONE, "create": PLANNERS, "change": PLANNERS, "delete": PLANNERS},
}
MODELS = {"customers": Customer, "drivers": Driver, "routes": Route, "route-stops": RouteStop}
RESOURCES = {
    "customers": Resource.CUSTOMERS,
    "drivers": Resource.DRIVERS,
    "routes": Resource.ROUTES,
    "route-stops": Resource.ROUTE_STOPS,
}
SUCCESS = {"view": 200, "create": 201, "change": 200, "delete": 204}


def test_the_permission_table_is_the_products():
    for path, actions in EXPECTED.items():
        for action, roles in actions.items():
            for role in Role:
                assert role_can(role, RESOURCES[path], Action(action)) == (role in roles), (
                    f"{role} {action} {path}"
                )
    assert set(ROLE_MATRIX) == set(Resource)


def target_row(path, data):
    """A row the action may use up: deleting a driver needs one no customer is assigned to."""
    if path == "drivers":
        return DriverFactory(organization=data.organization)
    return data.rows[MODELS[path]][1]


def perform(client, path, action, data):
    if action == "view":
        # The first route and stop are the technician's own (tests.tenancy_data).
        return [
            client.get(f"/api/v1/{path}/"),
            client.get(f"/api/v1/{path}/{data.rows[MODELS[path]][0].pk}/"),
        ]
    if action == "create":
        return [client.post(f"/api/v1/{path}/", new_row_body(path, data), format="json")]
    if action == "change":
        row = data.rows[MODELS[path]][1]
        return [
            client.put(f"/api/v1/{path}/{row.pk}/", new_row_body(path, data), format="json"),
            client.patch(f"/api/v1/{path}/{row.pk}/", {}, format="json"),
        ]
    with organization_context(data.organization):
        row = target_row(path, data)
    return [client.delete(f"/api/v1/{path}/{row.pk}/")]


@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize("path", EXPECTED)
@pytest.mark.parametrize("action", ["view", "create", "change", "delete"])
def test_each_role_against_each_action(client_as, acme, role, path, action):
    client = client_as(acme, role)
    allowed = role in EXPECTED[path][action]
    count_before = unscoped(MODELS[path]).count()

    responses = perform(client, path, action, acme)

    for response in responses:
        if allowed:
            assert response.status_code == SUCCESS[action], response.content
        else:
            assert response.status_code == 403, response.content
            assert f"your role '{role}'" in response.json()["error"]
    if not allowed and action in ("create", "delete"):
        expected = count_before + (1 if action == "delete" and path == "drivers" else 0)
        assert unscoped(MODELS[path]).count() == expected


def test_technicians_see_their_own_routes_and_stops_only(client_as, acme):
    """The technician's driver row has the technician's email (in another case)."""
    client = client_as(acme, Role.TECHNICIAN)
    own_route, other_route = acme.rows[Route]
    own_stop, *other_stops = acme.rows[RouteStop]

    routes = client.get("/api/v1/routes/").json()
    stops = client.get("/api/v1/route-stops/").json()

    assert [row["id"] for row in routes["results"]] == [str(own_route.pk)]
    assert [row["id"] for row in stops["results"]] == [str(own_stop.pk)]
    assert client.get(f"/api/v1/routes/{own_route.pk}/").status_code == 200
    assert client.get(f"/api/v1/routes/{other_route.pk}/").status_code == 404
    for stop in other_stops:
        assert client.get(f"/api/v1/route-stops/{stop.pk}/").status_code == 404
    assert client.get("/api/v1/routes/", {"driver": other_route.driver_id}).json()["count"] == 0


def test_a_technician_without_a_driver_row_sees_no_routes(client_as, acme):
    technician = acme.members[Role.TECHNICIAN]
    unscoped(Driver).filter(email__iexact=technician.email).update(email="someone@else.test")

    response = client_as(acme, Role.TECHNICIAN).get("/api/v1/routes/")

    assert response.json()["count"] == 0


@pytest.mark.parametrize("role", [r for r in Role if r != Role.TECHNICIAN])
def test_other_roles_see_every_route_of_the_organization(client_as, acme, role):
    response = client_as(acme, role).get("/api/v1/routes/")

    assert response.json()["count"] == len(acme.rows[Route])
