"""No request input produces a 500: a corpus of hostile values against every API route.

The routes are read from the URL conf (everything under /api/, and /health), so a new route is
covered without touching this file; the OpenAPI schema is cross-checked against them and gives
each route's query parameters and request fields. Each route gets hostile values in its path
parameters, its query string, the headers the middleware and authentication read (Host,
X-Organization, Authorization, and what django-axes records), and its body (malformed, deep,
huge, wrong types, and each field of a valid body replaced in turn), anonymously and with an
owner's token. Every answer must be below 500 and, under /api/, an error must be one
`{"error": "..."}` line.
"""

from __future__ import annotations

import json
import re
import traceback
from dataclasses import dataclass
from urllib.parse import quote

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.test import APIClient

from accounts.services import api_token_issue
from routing.models import Customer, Driver, Route, RouteStop
from tenants.models import Role

pytestmark = pytest.mark.django_db

# --- the corpus --------------------------------------------------------------------------------

LONG = "x" * 5000
# For paths, query strings and headers: what PostgreSQL refuses (NUL, a lone surrogate), what
# no column holds (5,000 characters, a number past bigint), and what no id is.
HOSTILE_STRINGS = [
    "\x00",
    "a\ud800",
    LONG,
    "99999999999999999999999999",
    "not-a-uuid",
    "' OR '1'='1' --",
    "",
]
# Query values (each parameter the schema lists, in turn).
QUERY_VALUES = ["\x00", "a\ud800", LONG, "not-a-uuid"]
# For each field of a body, in turn, inside an otherwise valid body: what PostgreSQL refuses,
# what no column holds, and a value of the wrong shape.
FIELD_VALUES = ["a\ud800\x00", LONG, 10**30, {"nested": {"deeper": ["\x00"]}}]
# Whole bodies of one value (a body that is no object at all), and every field set to one value.
BODY_VALUES = ["a\ud800\x00", LONG, None, -(10**30), 1.5e308, []]


def _deep(depth: int) -> str:
    return "[" * depth + "]" * depth


RAW_BODIES = [
    ("malformed", '{"display_name": "Half'),
    ("deep array", _deep(100_000)),
    ("deep object", '{"a":' * 50_000 + "1" + "}" * 50_000),
    ("moderately deep", _deep(200)),
    ("huge", json.dumps({"display_name": "x" * 3_000_000})),
    ("a list", json.dumps([{"display_name": "x"}] * 1000)),
    ("a number", "12345678901234567890"),
    ("a string", '"\\u0000\\ud800"'),
    ("null", "null"),
    ("NaN", '{"latitude": NaN}'),
    ("NUL escapes", '{"display_name": "\\u0000", "email": "a\\u0000@b.c"}'),
    ("surrogate escapes", '{"display_name": "\\ud800", "address": "\\udfff"}'),
    ("invalid UTF-8", b'{"display_name": "\xff\xfe"}'),
    ("empty", ""),
]
OTHER_CONTENT_TYPES = [
    ("application/x-www-form-urlencoded", "display_name=%00&address=x"),
    ("multipart/form-data; boundary=x", "--x\r\n\r\n"),
    ("text/plain", "\x00"),
    ("application/json; charset=utf-16", '{"a": 1}'),
    ("application/json; charset=no-such-charset", '{"a": 1}'),
]
HEADERS = {
    "HTTP_X_ORGANIZATION": ["\x00", "a\ud800", LONG, "' OR '1'='1' --", "ACME", "blue"],
    "HTTP_HOST": ["\x00", "\ud800.localhost", LONG, "evil.example", "BLUE.localhost", "[::1"],
    "HTTP_AUTHORIZATION": ["Bearer \x00\ud800", f"Bearer ro_{LONG}", "Bearer r\u00e9", "Basic x"],
    "HTTP_USER_AGENT": ["\x00", "\ud800", LONG],
    "HTTP_ACCEPT": ["\x00", LONG, "*/*;q=abc"],
    "HTTP_X_FORWARDED_FOR": ["\x00", "1.1.1.1, \ud800"],
    "HTTP_COOKIE": ["sessionid=\x00", f"sessionid={LONG}"],
}
# Query parameters every route gets, besides those the schema lists for it.
COMMON_PARAMETERS = ["format", "organization"]


# --- the routes, from the URL conf -------------------------------------------------------------


@dataclass(frozen=True)
class ApiRoute:
    template: str  # "/api/v1/customers/{pk}/"
    methods: tuple[str, ...]
    parameters: tuple[str, ...]

    def path(self, **values) -> str:
        return self.template.format(**{name: quote_path(value) for name, value in values.items()})

    def __str__(self):
        return self.template


def quote_path(value: str) -> str:
    return quote(value.encode("utf-8", "surrogatepass"), safe="")


def _template(regex: str) -> str:
    # An optional trailing slash ("/?", the legacy routes): the form without it.
    regex = regex.replace("^", "").replace("\\Z", "").replace("$", "").replace("/?", "")
    regex = re.sub(r"\(\?P<(\w+)>[^)]*\)", r"{\1}", regex)
    regex = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", regex)  # path() converters
    return "/" + regex


def _methods(callback) -> tuple[str, ...]:
    actions = getattr(callback, "actions", None)
    if actions:
        return (*actions, "options")
    view = getattr(callback, "cls", None) or getattr(callback, "view_class", None)
    if view is None:  # a function view
        return ("get", "post", "delete")
    handlers = ("get", "post", "put", "patch", "delete")
    return (*(method for method in handlers if hasattr(view, method)), "options")


def api_routes() -> list[ApiRoute]:
    routes = []

    def walk(patterns, prefix: str):
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, prefix + str(pattern.pattern))
            elif isinstance(pattern, URLPattern):
                template = _template(prefix + str(pattern.pattern))
                if template.startswith("/api/") or template == "/health":
                    parameters = tuple(re.findall(r"{(\w+)}", template))
                    routes.append(ApiRoute(template, _methods(pattern.callback), parameters))

    walk(get_resolver().url_patterns, "")
    return routes


ROUTES = api_routes()


@pytest.fixture(scope="module")
def schema():
    from drf_spectacular.generators import SchemaGenerator

    return SchemaGenerator().get_schema(request=None, public=True)


def _schema_path(route: ApiRoute) -> str:
    return re.sub(r"{pk}", "{id}", route.template)


def test_every_route_of_the_api_is_in_the_corpus(schema):
    templates = {_schema_path(route) for route in ROUTES}

    assert set(schema["paths"]) <= templates, "a schema path the URL walk missed"
    assert {
        "/health",
        "/api/customers",
        "/api/customers/{customer_id}",
        "/api/v1/auth/token",
        "/api/v1/schema/",
        "/api/v1/customers/",
        "/api/v1/route-stops/{id}/",
    } <= templates


# --- asking ------------------------------------------------------------------------------------


@pytest.fixture
def world(organizations, settings):
    """Two organizations, an owner's token for acme, and limits out of the corpus' way (the
    lockouts and throttles are tested elsewhere; here every request must reach its view)."""
    settings.AXES_FAILURE_LIMIT = 1_000_000
    settings.ROUTEOPTIMIZER_LEGACY_API_ORGANIZATION = "acme"  # the cutover window: deepest path
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"auth_token": "1000000/min", "legacy_customers": "1000000/min"},
    }
    acme, _ = organizations
    token, _ = api_token_issue(user=acme.members[Role.OWNER], organization=acme.organization)
    return acme, token


class Corpus:
    """Sends requests and collects every answer that breaks the rules, so one run lists all."""

    def __init__(self, token: str | None):
        self.token = token
        self.failures: list[str] = []

    def client(self) -> APIClient:
        client = APIClient()
        if self.token:
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {self.token}")
        return client

    def send(self, method: str, path: str, *, body=None, content_type=None, **headers):
        label = f"{method.upper()} {path[:120]!r} body={str(body)[:60]!r} headers={headers!r:.80}"
        kwargs = dict(headers)
        if body is not None:
            kwargs["data"] = body
            kwargs["content_type"] = content_type or "application/json"
        try:
            response = getattr(self.client(), method)(path, **kwargs)
        except Exception as error:  # the test client re-raises a view's exception: a 500
            where = traceback.extract_tb(error.__traceback__)[-3:]
            trail = " <- ".join(
                f"{frame.name} ({frame.filename.rsplit('/', 2)[-1]})" for frame in where
            )
            self.failures.append(f"{label}: raised {type(error).__name__}: {error} at {trail}")
            return None
        self.check(label, path, response)
        return response

    def check(self, label, path, response):
        if response.status_code >= 500:
            self.failures.append(f"{label}: {response.status_code} {response.content[:200]!r}")
            return
        if not path.startswith("/api/") or response.status_code < 400:
            return
        try:
            body = json.loads(response.content)
        except ValueError:
            self.failures.append(
                f"{label}: {response.status_code} not JSON {response.content[:80]!r}"
            )
            return
        error = body.get("error") if isinstance(body, dict) else None
        if not isinstance(error, str) or "\n" in error or not error:
            self.failures.append(
                f"{label}: {response.status_code} not one error line: {body!r:.200}"
            )

    def assert_clean(self):
        assert not self.failures, f"{len(self.failures)} bad answers:\n" + "\n".join(
            self.failures[:40]
        )


def valid_values(route: ApiRoute, acme) -> dict[str, str]:
    """A real id for each path parameter (the one route parameter of this API is an id)."""
    model = {
        "customers": Customer,
        "drivers": Driver,
        "routes": Route,
        "route-stops": RouteStop,
    }
    for prefix, cls in model.items():
        if f"/{prefix}/" in route.template:
            return {name: acme.ids(cls)[0] for name in route.parameters}
    return {name: acme.ids(Customer)[0] for name in route.parameters}


def query_parameters(route: ApiRoute, schema) -> list[str]:
    operations = schema["paths"].get(_schema_path(route), {})
    names = {
        parameter["name"]
        for operation in operations.values()
        for parameter in operation.get("parameters", [])
        if parameter.get("in") == "query"
    }
    return sorted(names | set(COMMON_PARAMETERS))


def request_fields(route: ApiRoute, method: str, schema) -> list[str]:
    operation = schema["paths"].get(_schema_path(route), {}).get(method, {})
    content = operation.get("requestBody", {}).get("content", {}).get("application/json", {})
    reference = content.get("schema", {}).get("$ref", "")
    component = schema["components"]["schemas"].get(reference.rsplit("/", 1)[-1], {})
    return sorted(component.get("properties", {}))


def valid_body(corpus: Corpus, route: ApiRoute, values: dict, fields: list[str]) -> dict:
    """A body the route accepts as it is: the row's own representation (detail routes), or a
    copy of the first row (list routes); only the writable fields."""
    detail_template = route.template if route.parameters else route.template + "{pk}/"
    if "{pk}" not in detail_template or not route.template.startswith("/api/v1/"):
        return {}
    pk = values.get("pk")
    if pk is None:
        listed = corpus.client().get(route.template)
        results = listed.json().get("results", []) if listed.status_code == 200 else []
        row = results[0] if results else {}
    else:
        response = corpus.client().get(route.path(**values))
        row = response.json() if response.status_code == 200 else {}
    return {name: row[name] for name in fields if name in row}


# --- the corpus, route by route ----------------------------------------------------------------


def run_corpus(route: ApiRoute, corpus: Corpus, acme, schema):
    values = valid_values(route, acme)
    valid_path = route.path(**values)
    methods = [m for m in route.methods if m != "options"]
    writes = [m for m in methods if m in ("post", "put", "patch")]
    # One write per route gets the bodies (PATCH of a row, else POST, else PUT): the others run
    # the same parser and serializer.
    write = next((m for m in ("patch", "post", "put") if m in writes), None)
    # A route that refuses this caller (401/403) answers before it reads a query or a body: for
    # it the path and the headers are what can still reach code.
    probe = corpus.send(methods[0], valid_path)
    open_to_caller = probe is not None and probe.status_code not in (401, 403, 405)
    open_to_caller = open_to_caller or route.template.endswith("/auth/token")

    # Path parameters: reading, writing and deleting.
    for name in route.parameters:
        for value in HOSTILE_STRINGS:
            for method in {"get", "delete", write} & set(methods):
                corpus.send(method, route.path(**{**values, name: value}))

    # Headers, and query strings no parameter makes sense of.
    for header, header_values in HEADERS.items():
        for value in header_values:
            corpus.send(methods[0], valid_path, **{header: value})
    corpus.send("get", valid_path + "?" + "&".join(f"f{n}=1" for n in range(1500)))
    corpus.send("get", valid_path + "?%ED%A0%80=%ED%A0%80&%00=%00&a=%FF%FE")
    if not open_to_caller:
        return

    # Query strings: every parameter the schema lists (on lists: the filters), and common ones.
    if not route.parameters:
        for parameter in query_parameters(route, schema):
            for value in QUERY_VALUES:
                corpus.send("get", f"{valid_path}?{parameter}={quote_path(value)}")
    if write is None:
        return

    # Malformed, deep, huge bodies, other content types, bodies that are one hostile value or
    # set every field to one.
    for _name, raw in RAW_BODIES:
        corpus.send(write, valid_path, body=raw)
    for content_type, raw in OTHER_CONTENT_TYPES:
        corpus.send(write, valid_path, body=raw, content_type=content_type)
    fields = request_fields(route, write, schema)
    for value in BODY_VALUES:
        corpus.send(write, valid_path, body=json.dumps(value))
        corpus.send(write, valid_path, body=json.dumps(dict.fromkeys(fields or ["email"], value)))

    # Field by field inside a valid body (once per serializer: a list's POST is left to the
    # PATCH of its detail route).
    if write == "post" and any(r.template == route.template + "{pk}/" for r in ROUTES):
        return
    base = valid_body(corpus, route, values, fields)
    if not base and "email" in fields:
        base = {"email": "owner@acme.test", "password": "wrong password"}
    for name in fields:
        for value in FIELD_VALUES:
            corpus.send(write, valid_path, body=json.dumps({**base, name: value}))


@pytest.mark.parametrize("route", ROUTES, ids=str)
def test_anonymous_hostile_input_never_gets_a_500(route, world, schema):
    acme, _ = world
    corpus = Corpus(token=None)

    run_corpus(route, corpus, acme, schema)

    corpus.assert_clean()


@pytest.mark.parametrize("route", ROUTES, ids=str)
def test_authenticated_hostile_input_never_gets_a_500(route, world, schema):
    acme, token = world
    corpus = Corpus(token=token)

    run_corpus(route, corpus, acme, schema)

    corpus.assert_clean()


@pytest.mark.parametrize(
    ("header", "value", "status"),
    [
        ("HTTP_X_ORGANIZATION", "acme\x00", 400),
        ("HTTP_X_ORGANIZATION", "a" * 101, 404),
        ("HTTP_X_ORGANIZATION", "acme'--", 404),
        ("HTTP_HOST", "evil.example", 400),
        ("HTTP_USER_AGENT", "\x00", 400),
    ],
)
def test_hostile_headers_get_one_line_4xx(world, header, value, status):
    _, token = world
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")

    response = client.get("/api/v1/customers/", **{header: value})

    assert response.status_code == status
    assert set(response.json()) == {"error"}


def test_deeply_nested_json_on_the_token_endpoint_is_400_anonymously(client, world):
    response = client.post("/api/v1/auth/token", _deep(100_000), content_type="application/json")

    assert response.status_code == 400
    assert response.json()["error"].startswith("malformed JSON: JSON nested deeper than 32 levels")


def test_a_huge_body_is_413_one_line(client, world):
    response = client.post(
        "/api/v1/auth/token",
        json.dumps({"email": "a@b.c", "password": "x" * 3_000_000}),
        content_type="application/json",
    )

    assert response.status_code == 413
    assert response.json()["error"].startswith("request body too large")


def test_an_unknown_api_url_is_404_one_line(client, world):
    response = client.get("/api/v2/nothing-here")

    assert response.status_code == 404
    assert set(response.json()) == {"error"}
