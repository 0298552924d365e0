"""The organization page: members inline and counts of customers, drivers, routes and stops."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from routing.models import Customer, Route, RouteStop
from tenants.models import Organization
from tests.tenancy_data import seed_organization, unscoped

pytestmark = pytest.mark.django_db


def change_url(organization):
    return reverse("admin:tenants_organization_change", args=[organization.pk])


def test_the_organization_page_shows_its_counts_and_members(client, acme, acme_staff):
    client.force_login(acme_staff)

    response = client.get(change_url(acme.organization))

    assert response.status_code == 200
    original = response.context["original"]
    assert (
        original.customers_count,
        original.drivers_count,
        original.routes_count,
        original.route_stops_count,
    ) == (3, 2, 2, 3)
    members = response.context["inline_admin_formsets"][0].formset.queryset
    assert {m.user.email for m in members} == {u.email for u in acme.members.values()}


def test_the_changelist_counts_every_organization_in_a_fixed_number_of_queries(
    client, acme, blue, superuser
):
    client.force_login(superuser)
    url = reverse("admin:tenants_organization_changelist")

    with CaptureQueriesContext(connection) as two:
        first = client.get(url)
    for n in range(4):
        seed_organization(f"more-{n}", f"More Pools {n}")
    with CaptureQueriesContext(connection) as six:
        second = client.get(url)

    assert len(first.context["cl"].result_list) + 4 == len(second.context["cl"].result_list)
    assert len(six) == len(two)
    counts = {o.slug: o.customers_count for o in second.context["cl"].result_list}
    assert counts["acme"] == counts["blue"] == counts["more-3"] == 3


def test_a_superuser_edits_and_deletes_in_any_organization(client, blue, superuser):
    client.force_login(superuser)
    route = blue.rows[Route][1]

    page = client.get(reverse("admin:routing_route_delete", args=[route.pk]))
    deleted = client.post(reverse("admin:routing_route_delete", args=[route.pk]), {"post": "yes"})

    assert page.status_code == 200
    # The confirmation lists the stops that go with the route: collected in its organization.
    assert str(blue.rows[RouteStop][1]) in page.content.decode()
    assert deleted.status_code == 302
    assert not unscoped(Route).filter(pk=route.pk).exists()
    assert not unscoped(RouteStop).filter(route_id=route.pk).exists()


def test_a_superuser_saves_another_organizations_customer(client, blue, superuser):
    client.force_login(superuser)
    customer = blue.rows[Customer][0]
    url = reverse("admin:routing_customer_change", args=[customer.pk])
    form = client.get(url).context["adminform"].form
    body = {
        name: value
        for name, value in form.initial.items()
        if value is not None and name in form.fields
    }
    body |= {"display_name": "Renamed by the operator", "is_active": "on"}
    body.pop("locked", None)

    response = client.post(url, body)

    assert response.status_code == 302, response.context["adminform"].form.errors
    assert unscoped(Customer).get(pk=customer.pk).display_name == "Renamed by the operator"


def test_only_superusers_add_organizations(client, acme_staff, superuser):
    url = reverse("admin:tenants_organization_add")

    client.force_login(acme_staff)
    assert client.get(url).status_code == 403
    client.force_login(superuser)
    assert client.get(url).status_code == 200
    assert Organization.objects.count() >= 2
