"""An independent review's attacks on issue 13's changes (round 2): tenancy_api_token_membership()
(tenants.0012) and bearer authentication in one query, the filter backends skipped on detail
requests and unfiltered list pages (tenants.api), and what they open.

Attackers: one SQL injection on the application connection (an anonymous request's, or inside
organization A's owner's request), a malicious owner/admin of B, an anonymous HTTP caller.
Each test asserts the attacker gets nothing. At review time (both databases) three failed, all
older than issue 13 or low, and are fixed: an invitee's own SQL accepting an expired invitation
(medium; tenants.0013's membership guard), PUBLIC executing the lookups that answer without a
claim (low; tenants.0013), and a huge --batch-rows slicing past a tid's block numbers (low,
robustness; importing._insert_staged). Everything aimed at tenancy_api_token_membership() and
the skipped filter backends held.
"""

from __future__ import annotations

import datetime

import psycopg
import pytest
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import ApiToken, User
from accounts.services import api_token_issue
from accounts.tokens import hash_token
from routing.models import Customer, Driver, Route, RouteStop
from tenants.claims import platform_access
from tenants.context import organization_context
from tenants.models import Organization, OrganizationUser, Role
from tests.isolation.test_hostile_sql import _app_uri, as_request, attempt, lookup, rows
from tests.tenancy_data import PASSWORD, seed_organization

pytestmark = pytest.mark.django_db

LOOKUP = "tenancy_api_token_membership"


# --- fixtures and helpers --------------------------------------------------------------------


@pytest.fixture
def org_a(db):
    return seed_organization("rtwoa", "Round Two A")


@pytest.fixture
def org_b(db):
    return seed_organization("rtwob", "Round Two B")


def issue(data, role=Role.OWNER, **kwargs) -> tuple[str, ApiToken]:
    return api_token_issue(user=data.members[role], organization=data.organization, **kwargs)


def bearer(token: str, **defaults) -> APIClient:
    client = APIClient(raise_request_exception=False, **defaults)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def b_secrets(org_b) -> list[str]:
    """Values of B that must never appear in anything A's side or an anonymous caller gets."""
    values = [org_b.organization.name]
    values += [user.email for user in org_b.members.values()]
    values += [
        str(row.pk) for model in (Customer, Driver, Route, RouteStop) for row in org_b.rows[model]
    ]
    values += [c.display_name for c in org_b.rows[Customer]]
    return values


def leaked(body: bytes | str, org_b) -> list[str]:
    text = body.decode(errors="replace") if isinstance(body, bytes) else body
    return [value for value in b_secrets(org_b) if value in text]


def set_membership(data, member_role, **columns):
    with organization_context(None), platform_access():
        OrganizationUser.objects.filter(
            organization=data.organization, user=data.members[member_role]
        ).update(**columns)


# === 1. tenancy_api_token_membership() as the injection calls it ================================


ODD_INPUTS = {
    "NULL": "NULL",
    "empty": "''",
    "LIKE wildcard": "'%'",
    "regex": "'.*'",
    "star": "'*'",
    "trailing space": "%(h)s || ' '",
    "leading space": "' ' || %(h)s",
    "upper case": "upper(%(h)s)",
    "63 characters": "left(%(h)s, 63)",
    "65 characters": "%(h)s || '0'",
    "as char(80)": "rpad(left(%(h)s, 63), 80)::char(80)",
    "quote injection": "%(h)s || ''' OR ''1''=''1'",
    "integer": "0",
    "boolean": "true",
    "text array": "ARRAY[%(h)s]",
    "jsonb": "to_jsonb(%(h)s)",
    "bytea": "decode(%(h)s, 'hex')",
    "uuid": "gen_random_uuid()",
}


@pytest.mark.parametrize("expression", ODD_INPUTS.values(), ids=ODD_INPUTS.keys())
@pytest.mark.parametrize("who", ["anonymous", "A's owner"])
def test_no_odd_or_near_miss_input_finds_another_users_token(org_a, org_b, expression, who):
    """NULL, patterns, near misses of B's owner's real hash and other types: an error (refused)
    or no row; never B's token, membership, user or organization."""
    token, _ = issue(org_b)
    victim_hash = hash_token(token)
    user = org_a.members[Role.OWNER] if who != "anonymous" else None
    organization = org_a.organization if who != "anonymous" else None
    call = f"SELECT * FROM {LOOKUP}({expression.replace('%(h)s', '%s')})"
    params = [victim_hash] * expression.count("%(h)s")
    with as_request(organization, user):
        found = attempt(call, params or None)
    assert found in (None, []), found


def test_every_hash_like_value_the_injection_can_read_finds_only_its_own(org_a, org_b):
    """Every text the application role can read that could be a hash (its own tokens' hashes,
    its organization's invitation hashes, reset tokens) fed to the lookup: only A's owner's own
    token comes back, never B's, nor an invitee's of A."""
    owner_b = org_b.members[Role.OWNER]
    issue(org_b)
    attacker = org_a.members[Role.OWNER]
    issue(org_a)
    from tenants.services import organization_invite_member

    # B's owner invited to A (A's pending invitation hash is visible to A's claim).
    organization_invite_member(
        organization=org_a.organization,
        email=owner_b.email,
        role=Role.READONLY,
        invited_by=attacker,
    )
    with as_request(org_a.organization, attacker):
        seen = rows(
            f"SELECT f.user_id, f.organization_id, f.membership_id IS NOT NULL FROM ("
            "  SELECT key_hash AS h FROM api_tokens"
            "  UNION ALL SELECT invitation_token FROM organization_users"
            "  UNION ALL SELECT password_reset_token FROM users"
            "  UNION ALL SELECT email FROM users"
            f") x, LATERAL {LOOKUP}(x.h) f"
        )
    assert set(seen) == {(attacker.pk, org_a.organization.pk, True)}, seen


@pytest.mark.parametrize(
    "setting",
    [
        "SET LOCAL search_path = pg_temp, public, pg_catalog",
        "SET LOCAL search_path = ''",
        "SET LOCAL enable_indexscan = off",
        "SET LOCAL plan_cache_mode = force_generic_plan",
        "SET LOCAL TimeZone = 'Pacific/Kiritimati'",
        "SET LOCAL app.unscoped = on",
        "SELECT set_config('app.tenancy_claim', '', true)",
    ],
)
def test_settings_change_nothing_the_lookup_answers(org_a, org_b, setting):
    """Whatever the injection sets first: a guess finds nothing, an expired or revoked token's
    row still carries no membership, user or organization."""
    token, row = issue(org_b, lifetime=datetime.timedelta(days=1))
    with organization_context(None), platform_access():
        ApiToken.objects.filter(pk=row.pk).update(
            expires_at=timezone.now() - datetime.timedelta(seconds=5)
        )
    schema = rows("SELECT current_schema()")[0][0]
    with as_request():
        attempt(setting)
        function = f'"{schema}".{LOOKUP}'
        assert attempt(f"SELECT * FROM {function}(%s)", ["0" * 64]) in (None, [])
        found = attempt(
            f"SELECT membership_id, user_email, organization_slug FROM {function}(%s)",
            [hash_token(token)],
        )
        assert found in (None, [(None, None, None)]), found


ALTERATIONS = [
    f"ALTER FUNCTION {LOOKUP}(text) SECURITY INVOKER",
    f"ALTER FUNCTION {LOOKUP}(text) SET search_path = public",
    f"ALTER FUNCTION {LOOKUP}(text) RESET search_path",
    f"ALTER FUNCTION {LOOKUP}(text) OWNER TO CURRENT_USER",
    f"ALTER FUNCTION {LOOKUP}(text) RENAME TO x",
    f"GRANT EXECUTE ON FUNCTION {LOOKUP}(text) TO PUBLIC",
    f"REVOKE EXECUTE ON FUNCTION {LOOKUP}(text) FROM CURRENT_USER",
    f"COMMENT ON FUNCTION {LOOKUP}(text) IS 'x'",
    f"DROP FUNCTION {LOOKUP}(text)",
    f"CREATE FUNCTION public.{LOOKUP}(digest varchar) RETURNS int LANGUAGE sql AS 'SELECT 1'",
    f"CREATE FUNCTION pg_temp.{LOOKUP}(digest text) RETURNS int LANGUAGE sql AS 'SELECT 1'",
    "CREATE OPERATOR public.= (LEFTARG = text, RIGHTARG = text, FUNCTION = texteq)",
]


@pytest.mark.parametrize("statement", ALTERATIONS)
def test_the_injection_cannot_alter_regrant_or_shadow_the_lookup(org_a, statement):
    attacker = org_a.members[Role.OWNER]
    with as_request(org_a.organization, attacker):
        result = attempt(statement)
        # GRANT and REVOKE by a non-owner only warn ("no privileges were granted"): their effect
        # is what is checked below.
        assert result is None or statement.startswith(("GRANT", "REVOKE")), statement
        assert rows(
            "SELECT prosecdef, proconfig FROM pg_proc WHERE oid = %s::regprocedure",
            [f"{LOOKUP}(text)"],
        ) == [(True, ["search_path=pg_catalog, pg_temp"])]
        assert rows(
            "SELECT has_function_privilege('public', %s, 'EXECUTE')", [f"{LOOKUP}(text)"]
        ) == [(False,)]
        assert rows(
            "SELECT has_function_privilege(current_user, %s, 'EXECUTE')", [f"{LOOKUP}(text)"]
        ) == [(True,)]


def test_another_requests_token_hash_is_not_readable_from_the_activity_views(org_a, org_b):
    """psycopg binds parameters client side, so a request's lookup carries its token's hash in
    the query text while it runs (and while its transaction is idle). With that hash the lookup
    would name B's owner, role and organization: another session's query text must be out of
    the application role's reach (tenants.0009)."""
    token, _ = issue(org_b)
    victim_hash = hash_token(token)
    attacker = org_a.members[Role.OWNER]
    with psycopg.connect(_app_uri()) as other:  # B's owner's request, in its transaction
        other.execute(f"SELECT * FROM {LOOKUP}('{victim_hash}')").fetchall()
        with as_request(org_a.organization, attacker):
            for statement in (
                "SELECT string_agg(query, ' ') FROM pg_stat_activity",
                "SELECT string_agg(query, ' ') FROM pg_stat_get_activity(NULL)",
                "SELECT string_agg(query, ' ') FROM pg_stat_statements",
                "SELECT string_agg(statement, ' ') FROM pg_prepared_statements",
            ):
                seen = attempt(statement)
                assert seen is None or victim_hash not in str(seen), statement


def test_a_pl_pgsql_plan_kept_for_the_session_serves_no_stale_answer(org_a, org_b):
    """The function's plan is kept per session; its answer is not: on one pooled connection a
    token revoked, or a membership removed, between two requests is refused on the next."""
    for change in ("revoke", "remove"):
        data = seed_organization(f"rtwo{change}", f"Round Two {change}")
        token, row = issue(data, Role.ADMIN)
        client = bearer(token)
        assert client.get("/api/v1/customers/").status_code == 200
        with organization_context(None), platform_access():
            if change == "revoke":
                ApiToken.objects.filter(pk=row.pk).update(revoked_at=timezone.now())
            else:
                OrganizationUser.objects.filter(
                    organization=data.organization, user=data.members[Role.ADMIN]
                ).delete()
        response = client.get("/api/v1/customers/")
        assert response.status_code == 401, (change, response.status_code)
        assert not leaked(response.content, data)


# === 2. Unusable tokens and accounts over HTTP =================================================


@pytest.mark.parametrize(
    "state",
    [
        "user inactive",
        "organization inactive",
        "membership pending again",
        "token of a deleted user",
    ],
)
def test_a_token_whose_account_or_organization_is_gone_reads_nothing(org_a, org_b, state):
    token, row = issue(org_b, Role.ADMIN)
    admin = org_b.members[Role.ADMIN]
    with organization_context(None), platform_access():
        if state == "user inactive":
            User.objects.filter(pk=admin.pk).update(is_active=False)
        elif state == "organization inactive":
            Organization.objects.filter(pk=org_b.organization.pk).update(is_active=False)
        elif state == "membership pending again":
            set_membership(
                org_b, Role.ADMIN, invitation_token="x" * 64, invitation_accepted_at=None
            )
        else:
            ApiToken.objects.filter(pk=row.pk).delete()
    client = bearer(token)
    for path in ("/api/v1/customers/", f"/api/v1/customers/{org_b.rows[Customer][0].pk}/"):
        response = client.get(path)
        assert response.status_code == 401, (state, path, response.status_code)
        body = response.content.decode()
        assert org_b.rows[Customer][0].display_name not in body
        assert admin.email not in body


def test_a_demoted_members_token_carries_the_new_role_at_once(org_b):
    """The role comes from the lookup's membership on every request: an owner demoted to
    read-only, token kept, writes nothing on the next request."""
    token, _ = issue(org_b, Role.OWNER)
    client = bearer(token)
    assert client.get("/api/v1/customers/").status_code == 200
    set_membership(org_b, Role.OWNER, role=Role.READONLY)
    customer = org_b.rows[Customer][0]
    response = client.patch(f"/api/v1/customers/{customer.pk}/", {"notes": "pwned"}, format="json")
    assert response.status_code == 403, response.status_code
    assert client.delete(f"/api/v1/customers/{customer.pk}/").status_code == 403
    with organization_context(org_b.organization):
        assert Customer.objects.get(pk=customer.pk).notes != "pwned"


# === 3. Header and subdomain mixing ============================================================


def test_a_token_cannot_be_pointed_at_another_organization(org_a, org_b):
    """A's owner's token, with B named every way (header, subdomain, both, case, blanks), also
    when A's owner is a pending invitee of B, and a member of both organizations' A token: B is
    404 like an organization that does not exist, and no response shows any of B's data."""
    from tenants.services import organization_invite_member

    attacker = org_a.members[Role.OWNER]
    organization_invite_member(
        organization=org_b.organization,
        email=attacker.email,
        role=Role.ADMIN,
        invited_by=org_b.members[Role.OWNER],
    )
    shared = User.objects.create_user("shared@both.test", PASSWORD)
    for data in (org_a, org_b):
        OrganizationUser.objects.create(
            organization=data.organization, user=shared, role=Role.OWNER
        )
    attacker_token, _ = issue(org_a)
    shared_token, _ = api_token_issue(user=shared, organization=org_a.organization)

    b, a = org_b.slug, org_a.slug
    attempts = [
        {"HTTP_X_ORGANIZATION": b},
        {"HTTP_X_ORGANIZATION": f"  {b.upper()} "},
        {"HTTP_X_ORGANIZATION": f"{a},{b}"},
        {"HTTP_X_ORGANIZATION": str(org_b.organization.pk)},
        {"HTTP_HOST": f"{b}.localhost"},
        {"HTTP_HOST": f"{b.upper()}.localhost:8000"},
        {"HTTP_HOST": f"{a}.localhost", "HTTP_X_ORGANIZATION": b},
        {"HTTP_HOST": f"{b}.localhost", "HTTP_X_ORGANIZATION": a},
    ]
    paths = [
        "/api/v1/customers/",
        f"/api/v1/customers/{org_b.rows[Customer][0].pk}/",
        "/api/v1/usage",
    ]
    for token in (attacker_token, shared_token):
        for headers in attempts:
            for path in paths:
                response = bearer(token).get(path, **headers)
                # 401 where the subdomain names the token's own organization and the header
                # another: resolve_request_organization refuses the pair before any lookup and
                # authentication calls it "no longer an active member" (a misleading message,
                # no oracle: see the comparison below).
                assert response.status_code in (400, 401, 404), (
                    headers,
                    path,
                    response.status_code,
                )
                assert not leaked(response.content, org_b), (headers, path)
    # No oracle in the pair either: B (where A's owner is invited) and an organization that
    # does not exist answer alike.
    answers = [
        bearer(attacker_token).get(
            "/api/v1/customers/", HTTP_HOST=f"{a}.localhost", HTTP_X_ORGANIZATION=named
        )
        for named in (b, "rtwozzz")
    ]
    assert answers[0].status_code == answers[1].status_code
    assert answers[0].json()["error"].replace(b, "X") == answers[1].json()["error"].replace(
        "rtwozzz", "X"
    )
    # The pending invitation answers exactly as an organization that does not exist.
    pending = bearer(attacker_token).get("/api/v1/customers/", HTTP_X_ORGANIZATION=b)
    unknown = bearer(attacker_token).get("/api/v1/customers/", HTTP_X_ORGANIZATION="rtwozzz")
    assert pending.status_code == unknown.status_code == 404
    assert pending.json()["error"].replace(b, "X") == unknown.json()["error"].replace(
        "rtwozzz", "X"
    )


# === 4. Detail requests without filter backends ==============================================


DETAIL_MODELS = {
    "customers": Customer,
    "drivers": Driver,
    "routes": Route,
    "route-stops": RouteStop,
}
SUFFIXES = [
    "",
    "?",
    "?=",
    "?&",
    "?search=",
    "?status=",
    "?page=1",
    "?ordering=-created_at",
    "?format=json",
    "?search=%00",
]


@pytest.mark.parametrize("suffix", SUFFIXES, ids=[s or "none" for s in SUFFIXES])
@pytest.mark.parametrize("resource", DETAIL_MODELS)
def test_another_organizations_row_by_id_is_404_every_way(org_a, org_b, resource, suffix):
    token, _ = issue(org_a)
    client = bearer(token)
    model = DETAIL_MODELS[resource]
    target = org_b.rows[model][0]
    url = f"/api/v1/{resource}/{target.pk}/{suffix}"
    for method in ("get", "head", "patch", "put", "delete"):
        call = getattr(client, method)
        response = (
            call(url, {"notes": "pwned", "name": "pwned"}, format="json")
            if method in ("patch", "put")
            else call(url)
        )
        # A NUL byte is refused as bad input (400) before any lookup, for A's own rows too.
        expected = (400, 404) if "%00" in suffix else (404,)
        assert response.status_code in expected, (method, url, response.status_code)
        assert not leaked(response.content, org_b), (method, url)
    response = client.options(url)
    assert response.status_code in ((200, 400, 404) if "%00" in suffix else (200, 404)), (
        response.status_code
    )
    assert not leaked(response.content, org_b)
    assert "PUT" not in (response.json().get("actions") or {}), "B's row was found for PUT"
    with organization_context(org_b.organization):
        assert model.objects.filter(pk=target.pk).exists()
        assert "pwned" not in str(model.objects.filter(pk=target.pk).values().first())


@pytest.mark.parametrize("suffix", ["", "?", "?=", "?ordering=sequence"])
@pytest.mark.parametrize("resource", ["routes", "route-stops"])
def test_a_technician_gets_no_route_but_their_own_by_id(org_a, resource, suffix):
    """limit_to_own_rows is the queryset's, not a filter backend's: skipping the backends on a
    bare detail request shows a technician no other driver's route or stop."""
    token, _ = issue(org_a, Role.TECHNICIAN)
    client = bearer(token)
    model = DETAIL_MODELS[resource]
    # seed_organization: the first route (and stop) is the technician's, the second not.
    own, other = org_a.rows[model][0], org_a.rows[model][1]
    assert client.get(f"/api/v1/{resource}/{own.pk}/{suffix}").status_code == 200
    for method in ("get", "head", "patch", "delete"):
        response = getattr(client, method)(f"/api/v1/{resource}/{other.pk}/{suffix}")
        assert response.status_code in ((404,) if method in ("get", "head") else (403, 404)), (
            method,
            response.status_code,
        )
    with organization_context(org_a.organization):
        assert model.objects.filter(pk=other.pk).exists()


def test_list_pages_without_a_named_filter_show_the_organizations_rows_only(org_a, org_b):
    token, _ = issue(org_a)
    client = bearer(token)
    b_route = org_b.rows[Route][0].pk
    for query in (
        "",
        "?",
        "?page=1",
        "?page_size=100",
        "?=",
        "?route_=x",
        f"?route_id={b_route}",
        f"?routex={b_route}",
        f"?ROUTE={b_route}",
    ):
        response = client.get(f"/api/v1/route-stops/{query}")
        assert response.status_code in (200, 400), (query, response.status_code)
        assert not leaked(response.content, org_b), query
        if response.status_code == 200:
            ids = {row["id"] for row in response.json()["results"]}
            assert ids <= {str(stop.pk) for stop in org_a.rows[RouteStop]}, query
    # B's route as a filter: nothing (a filter is never a way into B).
    response = client.get(f"/api/v1/route-stops/?route={b_route}")
    assert response.status_code == 200 and response.json()["count"] == 0
    # A technician's list, page parameters only: their own routes.
    technician = bearer(issue(org_a, Role.TECHNICIAN)[0])
    page = technician.get("/api/v1/routes/?page=1&page_size=100").json()
    assert {row["id"] for row in page["results"]} == {str(org_a.rows[Route][0].pk)}


# === 5. Pending invitations ==================================================================


@pytest.mark.parametrize("how", ["accepted_at", "token cleared"])
def test_sqli_cannot_accept_an_expired_invitation_and_then_authenticate_in_b(org_a, org_b, how):
    """Was a hole (medium, older than issue 13; fixed by tenants.0013's membership guard). B's
    owner invited A's owner weeks ago; the invitation expired
    (INVITATION_LIFETIME) and invitation_accept() refuses it. One injection in A's owner's own
    request updates their own membership row in B: tenancy_guard_memberships lets a member
    change invitation_token / invitation_accepted_at on their own row without the invitation
    token, whatever its age and whether B is active. From then on tenancy_api_token_membership()
    and accepted_membership() count it as accepted: a token for B, and B's data."""
    from tenants.services import organization_invite_member

    attacker = org_a.members[Role.OWNER]
    organization_invite_member(
        organization=org_b.organization,
        email=attacker.email,
        role=Role.ADMIN,
        invited_by=org_b.members[Role.OWNER],
    )
    with organization_context(None), platform_access():
        OrganizationUser.objects.filter(organization=org_b.organization, user=attacker).update(
            created_at=timezone.now() - datetime.timedelta(days=30)
        )
    change = "invitation_accepted_at = now()" if how == "accepted_at" else "invitation_token = NULL"
    with as_request(org_a.organization, attacker):
        attempt(
            f"UPDATE organization_users SET {change} "
            "WHERE user_id = %s AND organization_id = %s RETURNING id",
            [attacker.pk, org_b.organization.pk],
        )
    with organization_context(None), platform_access():
        membership = OrganizationUser.objects.get(organization=org_b.organization, user=attacker)
    accepted = membership.invitation_token is None or membership.invitation_accepted_at is not None
    response = APIClient(raise_request_exception=False).post(
        "/api/v1/auth/token",
        {"email": attacker.email, "password": PASSWORD, "organization": org_b.slug},
        format="json",
    )
    issued = response.status_code == 201
    seen = []
    if issued:
        page = bearer(response.json()["token"]).get("/api/v1/customers/?page_size=100")
        seen = leaked(page.content, org_b)
    assert (accepted, issued, seen) == (False, False, []), (
        "an expired invitation was accepted by the invitee's own SQL"
        + (", POST /api/v1/auth/token issued a token for B" if issued else "")
        + (f", which reads B's customers: {seen}" if seen else "")
    )


def test_b_owners_pending_invitation_of_a_member_of_a_reveals_nothing_of_a(org_a, org_b):
    """A malicious owner of B invites A's owner: the invitation makes A's owner visible to B
    (by design, once invited) but nothing of A: not A's organization, memberships or tokens,
    not through the lookup."""
    from tenants.services import organization_invite_member

    victim = org_a.members[Role.OWNER]
    issue(org_a)
    owner_b = org_b.members[Role.OWNER]
    organization_invite_member(
        organization=org_b.organization, email=victim.email, role=Role.ADMIN, invited_by=owner_b
    )
    with as_request(org_b.organization, owner_b):
        assert rows(
            "SELECT count(*) FROM organizations WHERE id = %s", [org_a.organization.pk]
        ) == [(0,)]
        assert rows(
            "SELECT count(*) FROM organization_users WHERE organization_id = %s",
            [org_a.organization.pk],
        ) == [(0,)]
        assert rows("SELECT count(*) FROM api_tokens WHERE user_id = %s", [victim.pk]) == [(0,)]
        assert rows(
            f"SELECT count(*) FROM api_tokens t, LATERAL {LOOKUP}(t.key_hash) f "
            "WHERE f.organization_id = %s",
            [org_a.organization.pk],
        ) == [(0,)]
        assert lookup(None) == []


def test_connection_is_the_application_roles():
    """Sanity: this file runs as the application role, not the owner."""
    assert rows("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user") == [
        (False, False)
    ]
    assert connection.settings_dict["USER"] == rows("SELECT current_user")[0][0]


# === 6. Revoked and expired tokens cannot be brought back from SQL ==============================


@pytest.mark.parametrize("who", ["anonymous", "A's owner"])
def test_the_injection_cannot_unrevoke_or_extend_another_users_token(org_a, org_b, who):
    """B's owner's revoked token and B's admin's expired one stay refused whatever an anonymous
    request's or A's owner's injection updates."""
    revoked, revoked_row = issue(org_b)
    expired, expired_row = issue(org_b, Role.ADMIN, lifetime=datetime.timedelta(days=1))
    with organization_context(None), platform_access():
        ApiToken.objects.filter(pk=revoked_row.pk).update(revoked_at=timezone.now())
        ApiToken.objects.filter(pk=expired_row.pk).update(
            expires_at=timezone.now() - datetime.timedelta(minutes=1)
        )
    user = org_a.members[Role.OWNER] if who != "anonymous" else None
    organization = org_a.organization if who != "anonymous" else None
    with as_request(organization, user):
        for statement in (
            "UPDATE api_tokens SET revoked_at = NULL, expires_at = NULL RETURNING id",
            "UPDATE api_tokens SET user_id = user_id RETURNING id",
            "DELETE FROM api_tokens RETURNING id",
        ):
            assert attempt(statement) in (None, []), statement
    for token in (revoked, expired):
        assert bearer(token).get("/api/v1/customers/").status_code == 401


# === 7. Who else may call the account boundary's lookups ========================================


CLAIMLESS_LOOKUPS = [
    # These answer without any claim (by a hash or an email), as the owner: the reason given for
    # keeping tenancy_api_token_membership from PUBLIC ("any other role that may connect to the
    # database has no business authenticating tokens") is theirs too.
    "tenancy_api_token(text)",
    "tenancy_account_id(text)",
    "tenancy_session_load(text)",
    "tenancy_session_exists(text)",
    "tenancy_session_save(text, text, timestamptz, boolean)",
    "tenancy_session_delete(text)",
]


@pytest.mark.parametrize("function", CLAIMLESS_LOOKUPS)
def test_public_executes_no_lookup_that_answers_without_a_claim(function):
    """Was a hole (low, defence in depth; fixed by tenants.0013). Only
    tenancy_api_token_membership() was
    taken from PUBLIC: every other role that can log in to the cluster has CONNECT on this
    database and USAGE on its schema by default, and may still call its siblings, which run as
    the owner and need no claim: tenancy_account_id(email) tells any such role which emails have
    accounts, tenancy_api_token(hash) returns a token row (its user and organization) where the
    new function was restricted so as not to, tenancy_session_save/delete write and delete
    session rows by hash. Checked by hand with a fresh LOGIN role granted nothing (created and
    dropped on the CI server): tenancy_account_id('owner@...') returned the account's id and
    tenancy_api_token(hash) its user and organization, where tenancy_api_token_membership()
    was "permission denied"."""
    assert rows("SELECT has_function_privilege('public', %s, 'EXECUTE')", [function]) == [
        (False,)
    ], f"PUBLIC executes {function}"
    assert rows("SELECT has_function_privilege(current_user, %s, 'EXECUTE')", [function]) == [
        (True,)
    ]


# === 8. import_organization --batch-rows ========================================================


class _RecordingCursor:
    """What _insert_staged sends, for a staged table of `pages` pages and `tuples` rows."""

    def __init__(self, pages, tuples):
        self.answer = (pages, tuples)
        self.calls = []
        self.rowcount = 0

    def execute(self, statement, params=None):
        self.calls.append(params)

    def fetchone(self):
        return self.answer


@pytest.mark.parametrize("batch_rows", [1, 7, 20_000, 10**7, 10**12])
@pytest.mark.parametrize("pages,tuples", [(0, 0.0), (1, 1.0), (3, 250.0), (1000, 10.0)])
def test_every_staged_page_is_in_exactly_one_valid_tid_slice(batch_rows, pages, tuples):
    """The slices cover pages 0..pages-1 once each, and every bound is a block number a tid can
    hold (0..2^32-1): a large --batch-rows (or a table with few rows on many pages, where
    per_slice = batch_rows * pages / rows) must not make PostgreSQL refuse
    '(<bound>,0)'::tid after the whole source was staged ("invalid input syntax for type tid",
    turned into ImportRefused: nothing written, but the import refused for a valid-looking
    option). Was a robustness bug (low: the operator's own input): a slice is now at most the
    whole table."""
    from tenants.conversion.importing import _insert_staged

    cursor = _RecordingCursor(pages, tuples)
    _insert_staged(
        cursor,
        "customers",
        "00000000-0000-0000-0000-000000000001",
        batch_rows=batch_rows,
        progress=lambda line: None,
    )
    slices = [params for params in cursor.calls[1:]]
    covered = [page for first, end in slices for page in range(first, min(end, pages))]
    assert covered == list(range(pages))
    assert all(0 <= bound <= 2**32 - 1 for params in slices for bound in params), slices


# === 9. Anonymous callers' bearer headers ========================================================


def test_odd_bearer_headers_are_401_and_a_hash_is_not_a_token(org_b):
    """Presenting the stored hash instead of the secret, a near miss of the secret, or malformed
    headers: 401 (never 500, never B's data), one message for all the invalid ones."""
    token, _ = issue(org_b)
    headers = [
        f"Bearer {hash_token(token)}",
        f"Bearer {token[:-1]}",
        f"Bearer {token.upper() if token.upper() != token else token.lower()}",
        f"Bearer {token}\x00",
        "Bearer " + "a" * 100_000,
        "Bearer %",
        "Bearer ''",
    ]
    invalid_messages = set()
    for header in headers:
        response = APIClient(raise_request_exception=False).get(
            "/api/v1/customers/", HTTP_AUTHORIZATION=header
        )
        assert not leaked(response.content, org_b)
        if "\x00" in header:  # refused as hostile input before authentication
            assert response.status_code == 400, response.status_code
            continue
        assert response.status_code == 401, (header[:40], response.status_code)
        invalid_messages.add(response.json()["error"])
    assert len(invalid_messages) == 1, invalid_messages
    for raw in (b"Bearer \xe9t\xe9", f"Bearer {token} extra".encode(), b"Bearer"):
        response = APIClient(raise_request_exception=False).get(
            "/api/v1/customers/", HTTP_AUTHORIZATION=raw.decode("latin-1")
        )
        assert response.status_code == 401, (raw[:20], response.status_code)
