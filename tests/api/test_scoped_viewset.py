"""The base viewset keeps the organization scope where subclasses cannot lose it."""

import re

import pytest

from routing.models import Customer
from tenants.api import OrganizationScopedViewSet
from tenants.context import current_organization_or_none
from tenants.permissions import Resource


@pytest.mark.parametrize("method", ["get_queryset", "get_object"])
def test_subclasses_may_not_override_the_scoping_methods(method):
    with pytest.raises(TypeError, match=f"overrides {method}\\(\\)"):
        type(
            "LeakyViewSet",
            (OrganizationScopedViewSet,),
            {"model": Customer, "resource": Resource.CUSTOMERS, method: lambda self: None},
        )


def test_an_override_in_a_mixin_is_caught_too():
    class AllCustomers:
        def get_queryset(self):
            return Customer._base_manager.all()

    with pytest.raises(TypeError, match="dangerously_get_queryset"):

        class LeakyViewSet(AllCustomers, OrganizationScopedViewSet):
            model = Customer
            resource = Resource.CUSTOMERS


def test_narrowing_and_the_named_escape_hatch_are_allowed():
    class ActiveCustomers(OrganizationScopedViewSet):
        model = Customer
        resource = Resource.CUSTOMERS

        def safely_get_queryset(self, queryset):
            return queryset.filter(is_active=True)

    class EveryOrganizationsCustomers(OrganizationScopedViewSet):
        model = Customer
        resource = Resource.CUSTOMERS

        def dangerously_get_queryset(self):
            return Customer._base_manager.all()

    assert ActiveCustomers.queryset.model is Customer
    assert EveryOrganizationsCustomers.queryset.model is Customer


@pytest.mark.django_db
def test_the_organization_is_current_during_the_request_and_not_after(client_as, acme):
    response = client_as(acme).get("/api/v1/customers/")

    assert response.status_code == 200
    assert current_organization_or_none() is None


@pytest.mark.django_db
def test_a_detail_request_is_filtered_by_what_its_query_string_says_and_only_then(
    client_as, acme, monkeypatch
):
    from django_filters.rest_framework import DjangoFilterBackend

    customer = acme.rows[Customer][0]
    url = f"/api/v1/customers/{customer.pk}/"
    client = client_as(acme)
    assert customer.service_day == "monday"
    # DRF filters a detail request too: a row the query string's filter or search excludes is 404.
    assert client.get(f"{url}?service_day=monday").status_code == 200
    assert client.get(f"{url}?service_day=tuesday").status_code == 404
    assert client.get(f"{url}?search=nothing-matches-this").status_code == 404

    # Without a query string there is nothing to filter by: no FilterSet is built.
    built = []
    original = DjangoFilterBackend.get_filterset
    monkeypatch.setattr(
        DjangoFilterBackend,
        "get_filterset",
        lambda self, *args: built.append(args) or original(self, *args),
    )
    response = client.get(url)
    assert response.status_code == 200
    assert response.json()["id"] == str(customer.pk)
    assert built == []
    # Nor for a list page whose query string names no filter; one that does is filtered.
    page = client.get("/api/v1/customers/?page_size=2").json()
    assert page["count"] == len(acme.rows[Customer])
    names = [row["display_name"] for row in page["results"]]
    assert names == sorted(c.display_name for c in acme.rows[Customer])[:2]  # still ordered
    assert built == []
    for day in ("monday", "tuesday"):
        found = client.get(f"/api/v1/customers/?service_day={day}&page_size=2").json()
        assert found["count"] == sum(c.service_day == day for c in acme.rows[Customer])
    assert client.get("/api/v1/customers/?service_day=someday").status_code == 400
    assert len(built) == 3


RESOURCES = [
    ("customers", "routing.Customer"),
    ("drivers", "routing.Driver"),
    ("routes", "routing.Route"),
    ("route-stops", "routing.RouteStop"),
]


@pytest.mark.django_db
@pytest.mark.parametrize("path,label", RESOURCES)
def test_a_plain_detail_read_runs_the_orm_statement_compiled_once(
    client_as, acme, blue, monkeypatch, path, label
):
    """get_object's learned statement answers byte for byte as the ORM's way, with the same SQL
    (the scoped manager's organization condition and get_queryset's), for the current
    organization only, and a bad key is DRF's 404."""
    from django.apps import apps
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from tenants import api

    model = apps.get_model(label)
    mine, theirs = acme.first(model), blue.first(model)
    urls = [f"/api/v1/{path}/{mine.pk}/", f"/api/v1/{path}/{theirs.pk}/", f"/api/v1/{path}/x1/"]
    client = client_as(acme)
    client.get(f"/api/v1/{path}/")  # the token's first use writes its last_used_at
    monkeypatch.setattr(api, "_OBJECT_STATEMENTS", {})

    def answers():
        out = []
        for url in urls:
            with CaptureQueriesContext(connection) as queries:
                response = client.get(url)
            # The claim rides on the transaction's first statement, whichever that is.
            reads = [
                re.sub(r"^SELECT set_config\('app.tenancy_claim', '[^']*', true\); ", "", q["sql"])
                for q in queries
                if f'FROM "{model._meta.db_table}"' in q["sql"]
            ]
            out.append((response.status_code, response.content, reads))
        return out

    with monkeypatch.context() as orm_only:
        orm_only.setattr(api.OrganizationScopedViewSet, "_plain_object_read", lambda self: None)
        expected = answers()
    assert api._OBJECT_STATEMENTS == {}
    learned, cached = answers(), answers()
    assert [status for status, *_ in expected] == [200, 404, 404]
    assert learned == expected and cached == expected
    (statement,) = api._OBJECT_STATEMENTS.values()
    assert statement is not None, "the plain read kept the ORM's way"
    sql, roles = statement[:2]
    assert roles.count("organization") == 2 and roles.count("key") == 1
    assert sql.count('"organization_id" =') == 2
    # Another organization's token reads its own row with the same statement, not acme's.
    other = client_as(blue)
    assert other.get(urls[1]).json()["id"] == str(theirs.pk)
    assert other.get(urls[0]).status_code == 404


@pytest.mark.django_db
def test_learned_statements_are_kept_per_role(client_as, acme, monkeypatch):
    """One role's learned statement is never another's: a get_queryset narrowing by role
    without a parameter would otherwise hand the first role's rows to the next."""
    from routing.models import Customer
    from tenants import api
    from tenants.models import Role

    monkeypatch.setattr(api, "_OBJECT_STATEMENTS", {})
    monkeypatch.setattr(api, "_PAGE_STATEMENTS", {})
    customer = acme.first(Customer)
    for role in (Role.OWNER, Role.READONLY):
        client = client_as(acme, role)
        assert client.get(f"/api/v1/customers/{customer.pk}/").status_code == 200
        assert client.get("/api/v1/customers/?page_size=5").status_code == 200
    assert {role for _view, _model, role in api._OBJECT_STATEMENTS} == {Role.OWNER, Role.READONLY}
    assert {key[0][2] for key in api._PAGE_STATEMENTS} == {Role.OWNER, Role.READONLY}


@pytest.mark.django_db
def test_a_detail_read_narrowed_by_role_or_query_string_keeps_the_orm_way(
    client_as, acme, monkeypatch
):
    from routing.models import Route
    from tenants import api
    from tenants.models import Role

    monkeypatch.setattr(api, "_OBJECT_STATEMENTS", {})
    route = acme.first(Route)
    technician = client_as(acme, Role.TECHNICIAN)
    assert technician.get(f"/api/v1/routes/{route.pk}/").status_code in (200, 404)
    assert client_as(acme).get(f"/api/v1/routes/{route.pk}/?service_day=x").status_code in (
        200,
        400,
        404,
    )
    assert api._OBJECT_STATEMENTS == {}


@pytest.mark.django_db
@pytest.mark.parametrize("path,label", RESOURCES)
def test_a_page_reads_its_rows_by_keys_with_the_orm_statement_compiled_once(
    client_as, acme, blue, monkeypatch, path, label
):
    """The page's rows by their keys: the same bytes and the same SQL as the ORM's
    `_base_manager.filter(pk__in=keys)`, for full and shorter pages, learned once per size."""
    from django.apps import apps
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from tenants import api

    model = apps.get_model(label)
    count = len(acme.rows[model])
    urls = [f"/api/v1/{path}/?page_size=2", f"/api/v1/{path}/?page_size={count}"]
    if count > 2:
        urls += [f"/api/v1/{path}/?page_size=2&page=2"]
    client = client_as(acme)
    client.get(f"/api/v1/{path}/")  # the token's first use writes its last_used_at
    monkeypatch.setattr(api, "_ROWS_BY_KEYS", {})

    def answers(who=client):
        out = []
        for url in urls:
            with CaptureQueriesContext(connection) as queries:
                response = who.get(url)
            reads = [
                re.sub(r"^SELECT set_config\('app.tenancy_claim', '[^']*', true\); ", "", q["sql"])
                for q in queries
                if " IN (" in q["sql"]
            ]
            out.append((response.status_code, response.content, reads))
        return out

    with monkeypatch.context() as orm_only:
        orm_only.setattr(
            api,
            "_rows_by_keys",
            lambda model, keys: list(model._base_manager.filter(pk__in=keys).order_by()),
        )
        expected = answers()
        expected_blue = answers(client_as(blue))
    assert api._ROWS_BY_KEYS == {}
    assert all(status == 200 and len(reads) == 1 for status, _, reads in expected)
    learned, cached = answers(), answers()
    assert learned == expected and cached == expected
    assert answers(client_as(blue)) == expected_blue != expected
    sizes = {size for (learned_model, size, _) in api._ROWS_BY_KEYS if learned_model is model}
    import json

    assert sizes == {len(json.loads(content)["results"]) for _, content, _ in expected}
    assert all(statement is not None for statement in api._ROWS_BY_KEYS.values())


@pytest.mark.django_db
@pytest.mark.parametrize("path,label", RESOURCES)
def test_the_rows_read_by_key_are_the_instances_the_orm_builds(acme, path, label):
    """_read_rows builds without Model.__init__ what from_db builds with it: the same values,
    state and loaded values (billing.limits.PlanLimited), the same relations on first access."""
    from django.apps import apps

    from tenants import api
    from tenants.context import organization_context

    model = apps.get_model(label)
    assert api._instance_builder(model) is not None, f"{label} is built the slow way"
    keys = [row.pk for row in acme.rows[model]]
    with organization_context(acme.organization):
        orm = {row.pk: row for row in model._base_manager.filter(pk__in=keys)}
        ours = {row.pk: row for row in api._rows_by_keys(model, keys)}
        ours_again = {row.pk: row for row in api._rows_by_keys(model, keys)}
        assert orm.keys() == ours.keys() == ours_again.keys() == set(keys)
        for key, expected in orm.items():
            for mine in (ours[key], ours_again[key]):
                state = {k: v for k, v in vars(mine).items() if k != "_state"}
                assert state == {k: v for k, v in vars(expected).items() if k != "_state"}
                assert (mine._state.adding, mine._state.db) == (False, expected._state.db)
                assert mine._state.fields_cache == {}
                assert mine.organization == expected.organization
                assert mine == expected and type(mine) is type(expected)


def test_a_model_with_its_own_construction_is_built_by_django(monkeypatch):
    from django.db import models

    from routing.models import Customer, Driver
    from tenants import api

    learn = api._instance_builder.__wrapped__  # not the per-model cache
    assert learn(Customer) is not None and learn(Driver) is not None
    with monkeypatch.context() as patched:
        patched.setattr(
            Customer, "__init__", lambda self, *args: models.Model.__init__(self, *args)
        )
        assert learn(Customer) is None
    with monkeypatch.context() as patched:
        patched.setattr(Driver, "from_db", classmethod(lambda cls, db, names, values: None))
        assert learn(Driver) is None
    with monkeypatch.context() as patched:
        patched.setattr(Customer, "email", property(lambda self: None))
        assert learn(Customer) is None


@pytest.mark.django_db
@pytest.mark.parametrize("path,label", RESOURCES)
def test_a_plain_list_counts_and_reads_keys_with_the_orm_statements_compiled_once(
    client_as, acme, blue, monkeypatch, path, label
):
    """A list whose query string names only the page: the same bytes and SQL as the ORM's count
    and keys, every page (LIMIT and OFFSET put back), either organization; other lists and
    restricted roles keep the ORM's way."""
    import json

    from django.apps import apps
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from tenants import api
    from tenants.models import Role

    model = apps.get_model(label)
    count = len(acme.rows[model])
    urls = [
        f"/api/v1/{path}/",
        f"/api/v1/{path}/?page_size=1",
        f"/api/v1/{path}/?page_size=1&page=2",
    ]
    urls += [f"/api/v1/{path}/?page={count + 5}&page_size=1"]  # past the end: 404
    clients = [client_as(acme), client_as(blue)]
    for client in clients:
        client.get(f"/api/v1/{path}/?page_size=1&x=1")  # the token's first use: last_used_at
    monkeypatch.setattr(api, "_PAGE_STATEMENTS", {})

    def answers():
        out = []
        for client in clients:
            for url in urls:
                with CaptureQueriesContext(connection) as queries:
                    response = client.get(url)
                reads = [
                    re.sub(r"^SELECT set_config\('app.tenancy_claim', '[^']*', true\); ", "", sql)
                    for sql in (q["sql"] for q in queries)
                    if f'FROM "{model._meta.db_table}"' in sql
                ]
                out.append((response.status_code, response.content, reads))
        return out

    with monkeypatch.context() as orm_only:
        orm_only.setattr(api.Pagination, "_plain_list", lambda self, *args: None)
        expected = answers()
    assert api._PAGE_STATEMENTS == {}
    assert [status for status, *_ in expected] == [200, 200, 200 if count > 1 else 404, 404] * 2
    assert json.loads(expected[0][1])["count"] == count
    learned, cached = answers(), answers()
    # Learning runs no query of its own: the same statements, learning or not.
    assert learned == expected and cached == expected
    kinds = {kind: statement for (cls, _, kind), statement in api._PAGE_STATEMENTS.items()}
    assert set(kinds) == {"count", "keys"} and None not in kinds.values()
    assert all(sql.count('"organization_id" =') == 2 for sql, _ in kinds.values())

    # A filter, a search, an ordering or a technician's own rows: not learned.
    monkeypatch.setattr(api, "_PAGE_STATEMENTS", {})
    for query in ("?ordering=-created_at", "?search=x", "?page_size=1&created_at__gte=2000-01-01"):
        client_as(acme).get(f"/api/v1/{path}/{query}")
    if path in ("routes", "route-stops"):
        client_as(acme, Role.TECHNICIAN).get(f"/api/v1/{path}/")
    assert api._PAGE_STATEMENTS == {}
