"""An independent review's attacks on issue 13's learned statements (round 3): get_object's SQL
compiled once per (view class, role), a plain list page's count and keys statements, the rows
read by their keys, and the rows built without Model.__init__ (tenants.api).

Attackers: a member of organization A in every role, a malicious owner/admin of B, an
anonymous caller, one SQL injection on the application connection. Each test asserts the
attacker gets nothing, and that the learned path answers byte for byte what the ORM's way
answers (the fast paths switched off by monkeypatching, as tests/api/test_scoped_viewset.py
does), whichever request learned first.

At review time (both databases) everything aimed at the tenant boundary held: no organization,
role, odd key, odd page value, HEAD, state change, injection or thread got another
organization's rows or a different answer than the ORM's. Three tests failed, none a leak
between organizations, and are fixed: a first detail read whose key is the caller's
organization id turned the learned path off for that (view, role) for the process's lifetime
(low, availability; now it learns from the next read), and the cache key (view class, role)
ignored what a view instance or its filter backends add: as_view() initkwargs (latent, wrong
answers) and a filter backend that narrows by user without a parameter (latent, medium: one
user's narrowing served to the next user of the role). Statements are now kept per view
class, model and role, and only for views that change nothing that shapes them
(tenants.api._plain_viewset).
"""

from __future__ import annotations

import threading
import uuid

import pytest
from django.db import connections
from rest_framework.test import APIClient

from accounts.services import api_token_issue
from routing.models import Customer, Driver, Route, RouteStop
from tenants import api
from tenants.claims import platform_access
from tenants.context import organization_context
from tenants.models import Organization, OrganizationUser, Role
from tests.isolation.test_hostile_sql import as_request, attempt, rows
from tests.tenancy_data import seed_organization

pytestmark = pytest.mark.django_db

RESOURCES = {"customers": Customer, "drivers": Driver, "routes": Route, "route-stops": RouteStop}
ROLES = list(Role)


# --- fixtures and helpers --------------------------------------------------------------------


@pytest.fixture
def org_a(db):
    return seed_organization("rthreea", "Round Three A")


@pytest.fixture
def org_b(db):
    return seed_organization("rthreeb", "Round Three B")


@pytest.fixture
def fresh(monkeypatch):
    """Empty process caches: the next plain request learns."""
    monkeypatch.setattr(api, "_OBJECT_STATEMENTS", {})
    monkeypatch.setattr(api, "_PAGE_STATEMENTS", {})
    monkeypatch.setattr(api, "_ROWS_BY_KEYS", {})


def client_for(data, role=Role.OWNER) -> APIClient:
    token, _ = api_token_issue(user=data.members[role], organization=data.organization)
    client = APIClient(raise_request_exception=False)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    client.get("/api/v1/customers/?x=1")  # the token's first use writes last_used_at
    return client


def answer(client, url, method="get"):
    response = getattr(client, method)(url)
    headers = tuple(sorted((k.lower(), v) for k, v in response.headers.items()))
    return response.status_code, response.content, headers


def answers(client, urls, method="get"):
    return [answer(client, url, method) for url in urls]


def orm_way(monkeypatch, function):
    """What `function` answers with every learned path off (the ORM's way)."""
    with monkeypatch.context() as orm_only:
        orm_only.setattr(api.OrganizationScopedViewSet, "_plain_object_read", lambda self: None)
        orm_only.setattr(api.Pagination, "_plain_list", lambda self, *args: None)
        orm_only.setattr(
            api,
            "_rows_by_keys",
            lambda model, keys: list(model._base_manager.filter(pk__in=keys).order_by()),
        )
        return function()


def secrets_of(data) -> list[str]:
    values = [data.organization.name, data.organization.slug]
    values += [str(row.pk) for model in RESOURCES.values() for row in data.rows[model]]
    values += [c.display_name for c in data.rows[Customer]] + [c.email for c in data.rows[Customer]]
    return values


def leaked(results, data) -> list[str]:
    text = b"".join(content for _, content, _ in results).decode(errors="replace")
    return [value for value in secrets_of(data) if value in text]


def urls_of(data, other) -> list[str]:
    """Every plain read: each resource's list pages, its own rows and the other's by id."""
    urls = []
    for path, model in RESOURCES.items():
        urls += [f"/api/v1/{path}/", f"/api/v1/{path}/?page_size=1&page=2"]
        urls += [f"/api/v1/{path}/{row.pk}/" for row in data.rows[model]]
        urls += [f"/api/v1/{path}/{other.first(model).pk}/"]
    return urls


def set_membership(data, member_role, **columns):
    with organization_context(None), platform_access():
        OrganizationUser.objects.filter(
            organization=data.organization, user=data.members[member_role]
        ).update(**columns)


def set_organization(data, **columns):
    with organization_context(None), platform_access():
        Organization.objects.filter(pk=data.organization.pk).update(**columns)


def learned_object_statements():
    return {key: value for key, value in api._OBJECT_STATEMENTS.items()}


# === 1. one organization or role learns, another is served ======================================


@pytest.mark.parametrize("role", ROLES)
def test_what_a_learns_in_any_role_serves_b_only_bs_rows(org_a, org_b, fresh, monkeypatch, role):
    """A's member learns every statement (reading A's rows and B's ids); B's member of the same
    role is then served by the cached statements: B's rows only, byte for byte the ORM's, and
    A's answers never hold B's values."""
    a, b = client_for(org_a, role), client_for(org_b, role)
    a_urls, b_urls = urls_of(org_a, org_b), urls_of(org_b, org_a)
    expected_a = orm_way(monkeypatch, lambda: answers(a, a_urls))
    expected_b = orm_way(monkeypatch, lambda: answers(b, b_urls))
    assert api._OBJECT_STATEMENTS == {} and api._PAGE_STATEMENTS == {}

    learned_a = answers(a, a_urls)
    served_b = answers(b, b_urls)
    assert learned_a == expected_a
    assert served_b == expected_b
    assert answers(a, a_urls) == expected_a
    assert leaked(learned_a, org_b) == [] and leaked(served_b, org_a) == []
    # Something was learned (else this test proves nothing about the learned path).
    assert any(value is not None for value in api._OBJECT_STATEMENTS.values())
    assert any(value is not None for value in api._PAGE_STATEMENTS.values())


def test_a_technician_after_an_owner_learned_sees_only_their_own_routes(
    org_a, org_b, fresh, monkeypatch
):
    owner, technician = client_for(org_a), client_for(org_a, Role.TECHNICIAN)
    urls = urls_of(org_a, org_b)
    answers(owner, urls)  # the owner learns every statement of every resource
    expected = orm_way(monkeypatch, lambda: answers(technician, urls))
    assert answers(technician, urls) == expected
    own_route, other_route = org_a.rows[Route]
    assert technician.get(f"/api/v1/routes/{own_route.pk}/").status_code == 200
    assert technician.get(f"/api/v1/routes/{other_route.pk}/").status_code == 404
    listed = technician.get("/api/v1/routes/").json()
    assert [row["id"] for row in listed["results"]] == [str(own_route.pk)]
    stops = technician.get("/api/v1/route-stops/").json()
    assert {row["route"] for row in stops["results"]} == {str(own_route.pk)}
    # The technician's own-row reads kept the ORM's way: nothing learned as a technician there.
    assert not any(
        role == Role.TECHNICIAN and view.resource in ("routes", "route stops")
        for view, _model, role in api._OBJECT_STATEMENTS
    )


def test_a_demoted_owners_token_is_narrowed_at_once_after_learning(
    org_a, org_b, fresh, monkeypatch
):
    """The owner's token learns; the owner is demoted to technician, then removed: the same
    token at once reads as a technician (own routes), then nothing."""
    user = org_a.members[Role.OWNER]
    with organization_context(None), platform_access():
        user.email = org_a.members[Role.TECHNICIAN].email.replace("technician@", "t2@")
        user.save(update_fields=["email"])
    client = client_for(org_a)
    urls = urls_of(org_a, org_b)
    answers(client, urls)
    set_membership(org_a, Role.OWNER, role=Role.TECHNICIAN)
    expected = orm_way(monkeypatch, lambda: answers(client, urls))
    assert answers(client, urls) == expected
    # No driver has the demoted owner's email: no route, no stop.
    assert client.get("/api/v1/routes/").json()["count"] == 0
    assert client.get(f"/api/v1/routes/{org_a.first(Route).pk}/").status_code == 404
    # Demoted to readonly then removed: writes refused, then the token is worthless.
    set_membership(org_a, Role.OWNER, role=Role.READONLY)
    customer = org_a.first(Customer)
    assert client.patch(f"/api/v1/customers/{customer.pk}/", {"notes": "x"}).status_code == 403
    with organization_context(None), platform_access():
        OrganizationUser.objects.filter(organization=org_a.organization, user=user).delete()
    for url in urls:
        response = client.get(url)
        assert response.status_code == 401, url
        # The 401 names the token's organization's slug (its holder knew it), nothing else.
        assert leaked([(0, response.content, ())], org_a) in ([], [org_a.slug]), url


def test_a_malicious_admin_of_b_gets_nothing_of_a_from_warm_statements(
    org_a, org_b, fresh, monkeypatch
):
    """A's owner and admin warm every statement; B's admin asks for A's ids, A's organization
    id and slug by every plain way: 404s, B's own lists, nothing of A."""
    for role in (Role.OWNER, Role.ADMIN):
        answers(client_for(org_a, role), urls_of(org_a, org_b))
    attacker = client_for(org_b, Role.ADMIN)
    urls = []
    for path, model in RESOURCES.items():
        urls += [f"/api/v1/{path}/{row.pk}/" for row in org_a.rows[model]]
        urls += [f"/api/v1/{path}/{org_a.organization.pk}/", f"/api/v1/{path}/{org_a.slug}/"]
        urls += [f"/api/v1/{path}/?page_size=500", f"/api/v1/{path}/?page=last&page_size=1"]
    got = answers(attacker, urls)
    assert got == orm_way(monkeypatch, lambda: answers(attacker, urls))
    assert leaked(got, org_a) == []
    assert all(status == 404 for status, content, _ in got if b'"results"' not in content)


def test_an_anonymous_caller_gets_401_from_warm_statements(org_a, org_b, fresh, monkeypatch):
    answers(client_for(org_a), urls_of(org_a, org_b))
    anonymous = APIClient(raise_request_exception=False)
    forged = APIClient(raise_request_exception=False, HTTP_X_ORGANIZATION=org_a.slug)
    forged.credentials(HTTP_AUTHORIZATION="Bearer " + "0" * 43)
    urls = urls_of(org_a, org_b)
    for client in (anonymous, forged):
        got = answers(client, urls)
        assert {status for status, *_ in got} == {401}
        assert got == orm_way(monkeypatch, lambda: answers(client, urls))  # noqa: B023
        assert leaked(got, org_a) == []


def test_a_token_naming_another_organization_is_404_on_warm_statements(
    org_a, org_b, fresh, monkeypatch
):
    """B's owner and A's owner warm everything; A's token then names B (header, subdomain):
    404 for every plain read, nothing of B."""
    answers(client_for(org_b), urls_of(org_b, org_a))
    answers(client_for(org_a), urls_of(org_a, org_b))
    token, _ = api_token_issue(user=org_a.members[Role.OWNER], organization=org_a.organization)
    urls = urls_of(org_b, org_a)
    for headers in ({"HTTP_X_ORGANIZATION": org_b.slug}, {"HTTP_HOST": f"{org_b.slug}.localhost"}):
        client = APIClient(raise_request_exception=False, **headers)
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        got = answers(client, urls)
        assert got == orm_way(monkeypatch, lambda: answers(client, urls))  # noqa: B023
        assert {status for status, *_ in got} <= {400, 404}, {status for status, *_ in got}
        assert [v for v in leaked(got, org_b) if v != org_b.slug] == []


# === 2. the first learning request with odd keys ===============================================


def _odd_keys(org_a, org_b) -> dict[str, str]:
    customer = org_a.first(Customer)
    return {
        "B's row": str(org_b.first(Customer).pk),
        "A's organization id": str(org_a.organization.pk),
        "B's organization id": str(org_b.organization.pk),
        "A's driver (another model)": str(org_a.first(Driver).pk),
        "upper case": str(customer.pk).upper(),
        "no dashes": customer.pk.hex,
        "braces": "{" + str(customer.pk) + "}",
        "urn": f"urn:uuid:{customer.pk}",
        "nil uuid": str(uuid.UUID(int=0)),
        "malformed": "not-a-key",
        "integer": "1",
        "NUL": "%00",
        "long": "a" * 2000,
        "unicode": "%C3%A9%E2%80%AE",
        "sql": "1%27%20OR%20%271%27%3D%271",
    }


ODD_KEY_NAMES = [
    "B's row",
    "A's organization id",
    "B's organization id",
    "A's driver (another model)",
    "upper case",
    "urn",
    "malformed",
    "NUL",
    "long",
    "sql",
]


@pytest.mark.parametrize("name", ODD_KEY_NAMES)
def test_a_first_read_with_an_odd_key_teaches_nothing_wrong(org_a, org_b, fresh, monkeypatch, name):
    """The process's first detail read of customers has an odd key; whatever it learns (or not),
    every later read of A and B answers as the ORM's, and the odd key itself answers as the
    ORM's (a 404 unless it is A's own row spelled otherwise)."""
    key = _odd_keys(org_a, org_b)[name]
    a, b = client_for(org_a), client_for(org_b)
    first = f"/api/v1/customers/{key}/"
    later_a = [first, *urls_of(org_a, org_b)]
    later_b = [first, *urls_of(org_b, org_a)]
    expected_a = orm_way(monkeypatch, lambda: answers(a, later_a))
    expected_b = orm_way(monkeypatch, lambda: answers(b, later_b))
    assert answer(a, first) == expected_a[0]
    assert answers(a, later_a) == expected_a
    assert answers(b, later_b) == expected_b
    assert leaked(answers(a, later_a), org_b) == []
    for statement in api._OBJECT_STATEMENTS.values():
        if statement is not None:
            roles = statement[1]
            assert sorted(roles) == ["key", "organization", "organization"], roles
    from routing.api import CustomerViewSet

    learned_as = (CustomerViewSet, CustomerViewSet.model, Role.OWNER)
    if name != "A's organization id":  # that one learns from the next read: see below
        assert api._OBJECT_STATEMENTS.get(learned_as) is not None


@pytest.mark.parametrize("name", ["A's organization id"])
def test_a_crafted_first_read_does_not_turn_the_learned_path_off_for_everyone(
    org_a, org_b, fresh, name
):
    """Availability, not confidentiality (was a finding, fixed): the first detail read of a
    (view, role) in a process decided for the process's lifetime. A key equal to the caller's
    organization id stored None (the ORM's way, ~50% more Python CPU per detail read) for every
    organization's members of that role, until the worker restarted; now the next read learns."""
    key = _odd_keys(org_a, org_b)[name]
    a = client_for(org_a)
    a.get(f"/api/v1/customers/{key}/")
    a.get(f"/api/v1/customers/{org_a.first(Customer).pk}/")
    client_for(org_b).get(f"/api/v1/customers/{org_b.first(Customer).pk}/")
    statements = learned_object_statements()
    assert statements, "nothing learned"
    assert all(value is not None for value in statements.values()), statements


# === 3. list pages: odd page and page_size values, learning first ===============================

ODD_QUERIES = [
    "?&",
    "?page=",
    "?page=0",
    "?page=-1",
    "?page=abc",
    "?page=%EF%BC%92&page_size=1",  # a full-width 2
    "?page=last&page_size=1",
    "?page=99999999999999999999&page_size=1",
    "?page=4&page_size=1",
    "?page_size=0",
    "?page_size=-5",
    "?page_size=1000000",
    "?page_size=1&page_size=2&page=2&page=1",
]


@pytest.mark.parametrize("query", ODD_QUERIES)
def test_a_first_list_page_with_odd_values_teaches_nothing_wrong(
    org_a, org_b, fresh, monkeypatch, query
):
    a, b = client_for(org_a), client_for(org_b)
    paths = list(RESOURCES)
    first = [f"/api/v1/{path}/{query}" for path in paths]
    later = [f"/api/v1/{path}/{q}" for path in paths for q in (query, "", "?page=2&page_size=1")]
    expected_a = orm_way(monkeypatch, lambda: answers(a, first + later))
    expected_b = orm_way(monkeypatch, lambda: answers(b, later))
    assert answers(a, first + later) == expected_a
    assert answers(b, later) == expected_b
    assert leaked(expected_a, org_b) == []
    for key, statement in api._PAGE_STATEMENTS.items():
        if statement is not None:
            sql, parameters = statement
            assert parameters == 2 and "LIMIT" not in sql and "OFFSET" not in sql, (key, sql)
    learned = {(cls[0], kind) for (cls, _, kind), s in api._PAGE_STATEMENTS.items() if s}
    assert len(learned) == 8, learned  # count and keys of every resource: the learned path ran


@pytest.mark.parametrize("path", list(RESOURCES))
def test_head_learns_and_answers_as_get_and_the_orm(org_a, org_b, fresh, monkeypatch, path):
    a = client_for(org_a)
    model = RESOURCES[path]
    urls = [
        f"/api/v1/{path}/{org_a.first(model).pk}/",
        f"/api/v1/{path}/{org_b.first(model).pk}/",
        f"/api/v1/{path}/",
        f"/api/v1/{path}/?page_size=1&page=2",
    ]
    expected_head = orm_way(monkeypatch, lambda: answers(a, urls, "head"))
    expected_get = orm_way(monkeypatch, lambda: answers(a, urls))
    assert answers(a, urls, "head") == expected_head  # HEAD learns
    assert answers(a, urls) == expected_get  # GET is served what HEAD learned
    assert [s for s, *_ in expected_head] == [s for s, *_ in expected_get]
    assert all(content == b"" for _, content, _ in expected_head)


# === 4. the organization's state changes after learning ========================================


@pytest.mark.parametrize(
    "columns,status",
    [
        ({"subscription_status": "canceled"}, 402),
        ({"subscription_status": "suspended"}, 403),
        ({"subscription_status": "past_due"}, 200),
        ({"is_active": False}, 401),
        ({"slug": "rthreea-renamed"}, 200),
    ],
    ids=["canceled", "suspended", "past due", "deactivated", "renamed"],
)
def test_402_403_401_still_come_before_a_warm_statement(
    org_a, org_b, fresh, monkeypatch, columns, status
):
    a = client_for(org_a)
    urls = urls_of(org_a, org_b)
    answers(a, urls)  # warm
    set_organization(org_a, **columns)
    expected = orm_way(monkeypatch, lambda: answers(a, urls))
    got = answers(a, urls)
    assert got == expected
    if status != 200:
        assert {code for code, *_ in got} == {status}
        assert leaked(got, org_a)[:1] in ([], [org_a.slug])  # the error may name the slug only
        assert not any(str(row.pk).encode() in c for _, c, _ in got for row in org_a.rows[Customer])


def test_deleted_and_created_rows_show_at_once_on_warm_statements(org_a, org_b, fresh, monkeypatch):
    a = client_for(org_a)
    urls = urls_of(org_a, org_b)
    answers(a, urls)
    victim = org_a.rows[Customer][1]
    assert a.delete(f"/api/v1/customers/{victim.pk}/").status_code == 204
    created = a.post(
        "/api/v1/customers/",
        {
            "display_name": "Round three new",
            "address": "3 Review Rd",
            "service_type": "residential",
            "difficulty": 1,
            "service_day": "friday",
        },
        format="json",
    )
    assert created.status_code == 201, created.content
    urls += [f"/api/v1/customers/{created.json()['id']}/"]
    got = answers(a, urls)
    assert got == orm_way(monkeypatch, lambda: answers(a, urls))
    assert a.get(f"/api/v1/customers/{victim.pk}/").status_code == 404
    assert a.get("/api/v1/customers/").json()["count"] == len(org_a.rows[Customer])


# === 5. rows built without Model.__init__, and writes after them ===============================


def _objects_of(monkeypatch, client, url):
    """The instances get_object returned and the rows a page was built from, during one GET."""
    seen = []
    original = api.OrganizationScopedViewSet.check_object_permissions

    def spy(self, request, obj):
        seen.append(obj)
        return original(self, request, obj)

    original_page = api.PageByKeysPaginator._get_page

    def page_spy(self, object_list, *args, **kwargs):
        seen.extend(object_list)
        return original_page(self, object_list, *args, **kwargs)

    with monkeypatch.context() as patched:
        patched.setattr(api.OrganizationScopedViewSet, "check_object_permissions", spy)
        patched.setattr(api.PageByKeysPaginator, "_get_page", page_spy)
        assert client.get(url).status_code == 200
    return seen


def _state(instance):
    return (
        type(instance),
        {k: v for k, v in vars(instance).items() if k != "_state"},
        instance._state.adding,
        instance._state.db,
        instance._state.fields_cache,
        instance.get_deferred_fields(),
    )


@pytest.mark.parametrize("path", list(RESOURCES))
def test_instances_of_the_learned_path_are_the_orms(org_a, fresh, monkeypatch, path):
    a = client_for(org_a)
    model = RESOURCES[path]
    for url in (f"/api/v1/{path}/{org_a.first(model).pk}/", f"/api/v1/{path}/"):
        expected = orm_way(monkeypatch, lambda: _objects_of(monkeypatch, a, url))  # noqa: B023
        _objects_of(monkeypatch, a, url)  # learns
        mine = _objects_of(monkeypatch, a, url)
        assert [_state(o) for o in mine] == [_state(o) for o in expected]
        assert all(o.organization_id == org_a.organization.pk for o in mine)
        assert not any(o.loaded_unscoped for o in mine)


def test_a_post_init_receiver_still_sees_every_row(org_a, fresh, monkeypatch):
    from django.db.models.signals import post_init

    a = client_for(org_a)
    urls = [f"/api/v1/customers/{org_a.first(Customer).pk}/", "/api/v1/customers/"]
    answers(a, urls)  # learned without receivers
    seen = []

    def receiver(sender, instance, **kwargs):
        seen.append(instance.pk)

    post_init.connect(receiver, sender=Customer)
    try:
        answers(a, urls)
    finally:
        post_init.disconnect(receiver, sender=Customer)
    assert seen.count(org_a.first(Customer).pk) >= 2
    assert set(seen) >= {row.pk for row in org_a.rows[Customer]}


@pytest.mark.parametrize("method", ["patch", "put", "delete"])
def test_writes_after_warm_reads_answer_and_change_as_the_orms(
    org_a, org_b, fresh, monkeypatch, method
):
    """A write right after the learned path read the row (and B's row by id): the same status,
    bytes and database state as with the ORM's way."""
    a = client_for(org_a)
    customer, theirs = org_a.rows[Customer][2], org_b.first(Customer)
    body = {
        "display_name": "Written",
        "address": "1 Write Way",
        "service_type": "residential",
        "difficulty": 2,
        "service_day": "monday",
        "organization": org_b.slug,
        "id": str(theirs.pk),
    }

    def run():
        out = []
        for target in (theirs, customer):
            url = f"/api/v1/customers/{target.pk}/"
            a.get(url)
            a.get("/api/v1/customers/")
            response = getattr(a, method)(url, body if method != "delete" else None, format="json")
            content = response.content
            if response.status_code == 200:
                content = {k: v for k, v in response.json().items() if k != "updated_at"}
            out.append((response.status_code, content))
        with organization_context(None), platform_access():
            state = sorted(
                (str(c.pk), c.organization_id, c.display_name)
                for c in Customer.unscoped.filter(pk__in=[customer.pk, theirs.pk])
            )
        return out, state

    from django.db import transaction

    sid = transaction.savepoint()
    expected = orm_way(monkeypatch, run)
    transaction.savepoint_rollback(sid)
    got = run()
    assert got == expected
    assert got[0][0][0] == 404  # B's row: 404 whatever the method
    assert (str(theirs.pk), org_b.organization.pk, theirs.display_name) in got[1]


# === 6. one SQL injection, and the learned statements' own SQL ================================


def _warm_statements(org_a, org_b):
    answers(client_for(org_a), urls_of(org_a, org_b))
    objects = {model: s for (_, model, _), s in api._OBJECT_STATEMENTS.items() if s is not None}
    pages = {(cls[1], kind): s for (cls, _, kind), s in api._PAGE_STATEMENTS.items() if s}
    return objects, pages


def test_a_learned_statement_run_with_bs_ids_under_as_claim_finds_nothing(org_a, org_b, fresh):
    """Defence in depth: were the cache ever to substitute B's organization id (or key), PostgreSQL
    still shows A's claim nothing of B: row level security is under the learned statements."""
    objects, pages = _warm_statements(org_a, org_b)
    assert set(objects) == set(RESOURCES.values()) and len(pages) == 8
    owner = org_a.members[Role.OWNER]
    b_org = org_b.organization.pk
    with as_request(org_a.organization, owner):
        for model, (sql, roles, *_rest) in objects.items():
            for row in org_b.rows[model]:
                params = [b_org if role == "organization" else row.pk for role in roles]
                assert attempt(sql, params) == [], model
        for (model, kind), (sql, parameters) in pages.items():
            found = attempt(sql + (" LIMIT 500" if kind == "keys" else ""), [b_org] * parameters)
            assert found in ([(0,)], []), (model, kind, found)
        for (model, _size, _using), statement in api._ROWS_BY_KEYS.items():
            if statement is None:
                continue
            keys = [row.pk for row in org_b.rows[model]][:_size] * _size
            assert attempt(statement[0], keys[:_size]) == [], model


@pytest.mark.parametrize(
    "injection",
    [
        "SET LOCAL search_path = pg_catalog",
        "SELECT set_config('app.tenancy_claim', '', true)",
        "SET LOCAL app.unscoped = on",
        "SET LOCAL row_security = off",
    ],
)
def test_an_injection_before_a_learned_statement_shows_no_b_row(org_a, org_b, fresh, injection):
    """The injection runs in A's request's transaction just before a learned read of B's keys
    with B's organization id: nothing of B, whatever it set (an error is a refusal)."""
    objects, _ = _warm_statements(org_a, org_b)
    assert len(objects) == len(RESOURCES)
    with as_request(org_a.organization, org_a.members[Role.OWNER]):
        attempt(injection)
        for model, (sql, roles, *_rest) in objects.items():
            for org, data in ((org_b.organization.pk, org_b), (org_a.organization.pk, org_b)):
                for row in data.rows[model]:
                    params = [org if role == "organization" else row.pk for role in roles]
                    assert attempt(sql, params) in (None, []), (injection, model)
        counts = attempt(
            "SELECT count(*) FROM customers WHERE organization_id = %s", [org_b.organization.pk]
        )
        assert counts in (None, [(0,)])
    assert rows("SELECT 1") == [(1,)]


# === 7. concurrency: threads learning at the same time =========================================


@pytest.mark.django_db(transaction=True)
def test_threads_of_two_organizations_learning_at_once_see_only_their_own(monkeypatch):
    """Six threads (A's and B's members in three roles) start together on empty caches, each
    on its own connection, and read every plain URL twice: each gets its own organization's
    rows only, and the answers equal the ORM's."""
    with organization_context(None), platform_access():
        org_a = seed_organization("rthreeta", "Round Three Thread A")
        org_b = seed_organization("rthreetb", "Round Three Thread B")
    monkeypatch.setattr(api, "_OBJECT_STATEMENTS", {})
    monkeypatch.setattr(api, "_PAGE_STATEMENTS", {})
    monkeypatch.setattr(api, "_ROWS_BY_KEYS", {})
    roles = (Role.OWNER, Role.READONLY, Role.MANAGER)
    work = []
    for data, other in ((org_a, org_b), (org_b, org_a)):
        for role in roles:
            work.append((data, other, client_for(data, role), urls_of(data, other)))
    expected = [orm_way(monkeypatch, lambda c=c, u=u: answers(c, u)) for _, _, c, u in work]
    connections.close_all()
    barrier = threading.Barrier(len(work))
    results: dict[int, object] = {}

    def run(n, client, urls):
        try:
            barrier.wait(10)
            results[n] = (answers(client, urls), answers(client, urls))
        except BaseException as error:
            results[n] = error
        finally:
            connections.close_all()

    threads = [
        threading.Thread(target=run, args=(n, client, urls))
        for n, (_, _, client, urls) in enumerate(work)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    for n, (_data, other, _, _) in enumerate(work):
        assert not isinstance(results.get(n), BaseException), results.get(n)
        first, second = results[n]
        assert first == expected[n] and second == expected[n], n
        assert leaked(first + second, other) == []
    assert any(value is not None for value in api._OBJECT_STATEMENTS.values())


# === 8. the cache key: view class and role, not what the view reads ===========================


def _bearer_request(data, role, path):
    from rest_framework.test import APIRequestFactory

    token, _ = api_token_issue(user=data.members[role], organization=data.organization)
    return APIRequestFactory().get(path, HTTP_AUTHORIZATION=f"Bearer {token}")


def _rendered(view, request, **kwargs):
    response = view(request, **kwargs)
    response.render()
    return response.status_code, response.content


def test_one_view_class_configured_for_another_model_is_not_served_the_first_ones_sql(
    org_a, fresh, monkeypatch
):
    """Was latent (fixed: kept per view class, model and role, and never for an instance given
    what shapes the SQL): the learned statements were keyed by type(view) and role, not by what
    the view instance reads. A view class routed twice with as_view() initkwargs (DRF accepts
    any class attribute: model, resource, serializer_class, even safely_get_queryset) is handed
    the other
    configuration's SQL: here the drivers' configuration of CustomerViewSet reads the customers
    table and answers 404 for an existing driver. No URL does this today (the router registers
    each class once)."""
    from routing.api import CustomerViewSet
    from routing.serializers import DriverSerializer
    from tenants.permissions import Resource

    drivers_view = CustomerViewSet.as_view(
        {"get": "retrieve"},
        model=Driver,
        resource=Resource.DRIVERS,
        serializer_class=DriverSerializer,
        filterset_class=None,
    )
    driver = org_a.first(Driver)

    def read():
        request = _bearer_request(org_a, Role.OWNER, f"/x/{driver.pk}/")
        return _rendered(drivers_view, request, pk=str(driver.pk))

    expected = orm_way(monkeypatch, read)
    assert expected[0] == 200
    client_for(org_a).get(f"/api/v1/customers/{org_a.first(Customer).pk}/")  # customers learned
    assert read() == expected


def test_a_filter_backend_narrowing_by_user_is_not_shared_between_users_of_a_role(
    org_a, fresh, monkeypatch
):
    """Was latent (fixed: a view with filter backends or filter_queryset of its own keeps the
    ORM's way): a plain list was learned per (view class, role), but a view's filter backends
    run on the learning request only. A backend that narrows by user with a condition without a
    parameter (IS NULL, a constant join) is compiled into the learned count and keys: the next
    user of the same role is served the first user's narrowing. Here a second owner whom the
    backend shows nothing is served the first owner's every customer. No view has such a backend
    today."""
    from rest_framework.filters import BaseFilterBackend

    from accounts.models import User
    from routing.api import CustomerViewSet

    class OnlyTheFirstOwnerSeesCustomers(BaseFilterBackend):
        def filter_queryset(self, request, queryset, view):
            if request.user.email.startswith("owner@"):
                return queryset
            return queryset.filter(pk__isnull=True)  # nothing, and no parameter

    class NarrowedCustomers(CustomerViewSet):
        filter_backends = [*CustomerViewSet.filter_backends, OnlyTheFirstOwnerSeesCustomers]

    with organization_context(None), platform_access():
        second = User.objects.create_user("boss@rthreea.test", "x-Long-Passw0rd!")
        OrganizationUser.objects.create(
            organization=org_a.organization, user=second, role=Role.OWNER, is_primary_org=False
        )
    org_a.members["second owner"] = second
    view = NarrowedCustomers.as_view({"get": "list"})

    def read(who):
        return _rendered(view, _bearer_request(org_a, who, "/x/?page_size=2"))

    expected = orm_way(monkeypatch, lambda: [read(Role.OWNER), read("second owner")])
    assert b'"count":0' in expected[1][1] and b'"count":3' in expected[0][1]
    assert [read(Role.OWNER), read("second owner")] == expected
