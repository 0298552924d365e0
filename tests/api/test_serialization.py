"""The API's faster read path answers exactly what DRF's own did (issue 13).

- OrganizationScopedSerializer.to_representation against DRF's ModelSerializer with the same
  fields (and the organization as DRF's SlugRelatedField over a joined organization), for
  every resource, rendered to the same JSON bytes: NULLs, datetimes, decimals, foreign keys.
- IndexedSearchFilter (one expression per row) against DRF's SearchFilter (one icontains per
  field): the same rows for single terms, several terms, quoted phrases and no match.
- A search page is one query (the count comes with the page) and pages exactly as before:
  the same count, page 2, past the end and a bad page number are 404 with one line.
"""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework import filters, serializers
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory

from routing.api import CustomerViewSet, DriverViewSet
from routing.models import Customer, Driver, Route, RouteStop
from routing.serializers import (
    CustomerSerializer,
    DriverSerializer,
    RouteSerializer,
    RouteStopSerializer,
)
from tenants.api import IndexedSearchFilter
from tenants.context import organization_context
from tests.factories import CustomerFactory


def drf_serializer(ours):
    """DRF's ModelSerializer with `ours`' fields, the organization shown by a joined slug."""

    class Meta(ours.Meta):
        pass

    return type(
        f"DRF{ours.__name__}",
        (serializers.ModelSerializer,),
        {
            "Meta": Meta,
            "organization": serializers.SlugRelatedField(slug_field="slug", read_only=True),
        },
    )


@pytest.mark.parametrize(
    "model, ours",
    [
        (Customer, CustomerSerializer),
        (Driver, DriverSerializer),
        (Route, RouteSerializer),
        (RouteStop, RouteStopSerializer),
    ],
)
def test_the_read_path_renders_what_drf_renders(acme, model, ours):
    with organization_context(acme.organization):
        if model is Customer:
            # Values of every kind, NULLs included.
            CustomerFactory(
                organization=acme.organization,
                latitude=None,
                email=None,
                notes="\u00fc \u2013 \u2713",
                time_window_start=None,
            )
            CustomerFactory(organization=acme.organization, latitude="26.1224386")
        rows = list(model.objects.select_related("organization").order_by("pk"))
        assert rows
        drf = JSONRenderer().render(drf_serializer(ours)(rows, many=True).data)
        mine = JSONRenderer().render(ours(rows, many=True).data)
        single = JSONRenderer().render(ours(rows[0]).data)
    assert mine == drf
    assert single == JSONRenderer().render(drf_serializer(ours)(rows[0]).data)


def test_the_read_path_renders_datetimes_in_the_zone_current_when_it_serializes(acme):
    # The zone is asked once per serializer, when its first datetime is rendered: one active
    # when the page is serialized shows in every row, as DRF's per-field lookup showed it.
    from django.utils import timezone

    with organization_context(acme.organization):
        rows = list(Customer.objects.select_related("organization").order_by("pk"))
        for zone in ("Europe/Paris", "America/New_York", "UTC"):
            with timezone.override(zone):
                drf = JSONRenderer().render(
                    drf_serializer(CustomerSerializer)(rows, many=True).data
                )
                mine = JSONRenderer().render(CustomerSerializer(rows, many=True).data)
            assert mine == drf
            assert bool(re.search(rb':\d\d(\.\d+)?Z"', mine)) == (zone == "UTC")


def _search(backend, view_class, organization, term: str) -> list:
    request = Request(APIRequestFactory().get("/", {"search": term}))
    view = view_class()
    with organization_context(organization):
        queryset = view_class.model.objects.all()
        return sorted(
            str(pk)
            for pk in backend.filter_queryset(request, queryset, view).values_list("pk", flat=True)
        )


@pytest.mark.parametrize(
    "term",
    [
        "palm",
        "PALM",
        "Palm Gardens",
        '"palm gardens"',
        "gardens palm",
        "12",
        "@example",
        "zzz",
        "%",
        "_",
    ],
)
def test_search_finds_what_drf_finds(acme, term):
    with organization_context(acme.organization):
        for n, name in enumerate(["Palm Gardens", "Palm Court", "Oak Gardens", "50% Pools"]):
            CustomerFactory(
                organization=acme.organization,
                display_name=f"{name} {n}",
                name=None if n % 2 else f"Owner {n}",
                email=f"owner{n}@example.com",
                address=f"{n}12 Main St",
            )
    for view in (CustomerViewSet, DriverViewSet):
        drf = _search(filters.SearchFilter(), view, acme.organization, term)
        mine = _search(IndexedSearchFilter(), view, acme.organization, term)
        assert mine == drf, (view.__name__, term)


def test_a_term_does_not_match_across_two_fields(acme):
    with organization_context(acme.organization):
        CustomerFactory(organization=acme.organization, display_name="Palm", name="Gardens")
    assert (
        _search(IndexedSearchFilter(), CustomerViewSet, acme.organization, '"palm gardens"') == []
    )


def test_a_search_page_is_its_keys_with_the_count_then_its_rows_and_pages_as_before(
    acme, client_as
):
    with organization_context(acme.organization):
        for n in range(7):
            CustomerFactory(organization=acme.organization, display_name=f"Willow {n}")
    client = client_as(acme)
    with CaptureQueriesContext(connection) as captured:
        first = client.get("/api/v1/customers/?search=willow&page_size=3")
    assert first.status_code == 200
    body = first.json()
    assert body["count"] == 7
    assert [row["display_name"] for row in body["results"]] == ["Willow 0", "Willow 1", "Willow 2"]
    assert body["next"].endswith("page=2&page_size=3&search=willow")
    # The organization's rows are filtered once (the keys with the count: SearchPaginator),
    # then the page's rows are read by key.
    on_customers = [q["sql"] for q in captured.captured_queries if 'FROM "customers"' in q["sql"]]
    assert len(on_customers) == 2, on_customers
    assert "COUNT(*) OVER ()" in on_customers[0] and "LIKE" in on_customers[0]
    assert '"id" IN (' in on_customers[1] and "LIKE" not in on_customers[1]

    last = client.get("/api/v1/customers/?search=willow&page_size=3&page=3").json()
    assert last["count"] == 7
    assert [row["display_name"] for row in last["results"]] == ["Willow 6"]
    assert last["next"] is None

    for page in ("4", "0", "abc"):
        response = client.get(f"/api/v1/customers/?search=willow&page_size=3&page={page}")
        assert response.status_code == 404, page
        assert list(response.json()) == ["error"]
        assert "\n" not in response.json()["error"]

    nothing = client.get("/api/v1/customers/?search=nomatchatall").json()
    assert nothing == {"count": 0, "next": None, "previous": None, "results": []}


def test_the_schema_still_shows_the_organization_as_a_read_only_slug(client, db):
    schema = client.get("/api/v1/schema/", {"format": "json"}).json()
    for resource in ("Customer", "Driver", "Route", "RouteStop"):
        properties = schema["components"]["schemas"][resource]["properties"]
        assert properties["organization"] == {"type": "string", "readOnly": True}, resource
    parameters = schema["paths"]["/api/v1/customers/"]["get"]["parameters"]
    assert {"search", "page", "page_size", "service_day"} <= {p["name"] for p in parameters}
