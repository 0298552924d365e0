"""One SQL injection: arbitrary SQL on the application's connection, inside a request's
transaction (organization A's, as its owner) or with no organization at all (an anonymous
request). Whatever it sets or calls, it sees and changes only A's rows, and nothing without an
organization; accounts, sessions, tokens, memberships, keys and snapshots stay out of reach.

Everything here runs as the application role, as a request does: no platform claim
(tenants.claims), the claim's user the request's.
"""

from __future__ import annotations

import contextlib
import uuid

import psycopg
import pytest
from django.db import DatabaseError, connection, transaction

from accounts.services import api_token_issue
from accounts.sessions import SessionStore
from routing.models import Customer
from tenants.claims import (
    ClaimInputs,
    claim_user,
    platform_access,
    sign,
)
from tenants.context import organization_context
from tenants.models import Role
from tests.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def people(acme, blue):
    """A's owner (the attacker's account), B's owner, and a superuser with a live session."""
    attacker = UserFactory(email="mallory@acme.example")
    victim = UserFactory(email="victor@blue.example")
    superuser = UserFactory(email="root@platform.example", is_staff=True, is_superuser=True)
    MembershipFactory(organization=acme.organization, user=attacker, role=Role.OWNER)
    MembershipFactory(organization=blue.organization, user=victim, role=Role.OWNER)
    victim_token, _ = api_token_issue(user=victim, organization=blue.organization)
    session = SessionStore()
    session["_auth_user_id"] = str(superuser.pk)
    session.create()
    return {
        "attacker": attacker,
        "victim": victim,
        "superuser": superuser,
        "victim_token": victim_token,
        "session_key": session.session_key,
    }


@contextlib.contextmanager
def as_request(organization=None, user=None):
    """What a request's transaction is: no platform, the request's user and organization."""
    with (
        platform_access(False),
        claim_user(getattr(user, "pk", None)),
        organization_context(organization),
        transaction.atomic(),
    ):
        yield


def rows(query, params=None):
    with connection.cursor() as cursor:
        cursor.execute(query, params)
        return cursor.fetchall() if cursor.description else []


def attempt(query, params=None):
    """Run the attacker's statement in a savepoint: an error is a refusal, and the transaction
    goes on (as an injection followed by more SQL would)."""
    try:
        with transaction.atomic():
            return rows(query, params)
    except DatabaseError:
        return None


def blue_rows_seen(blue, people) -> dict:
    """Everything of B that A's transaction might see, counted."""
    b = blue.organization.pk
    return {
        "customers": rows("SELECT count(*) FROM customers WHERE organization_id = %s", [b])[0][0],
        "all tenant rows of B": sum(
            rows(f"SELECT count(*) FROM {table} WHERE organization_id = %s", [b])[0][0]
            for table in ("drivers", "routes", "route_stops", "service_plans", "usage_tracking")
        ),
        "B's owner account": rows(
            "SELECT count(*) FROM users WHERE id = %s", [people["victim"].pk]
        )[0][0],
        "B's memberships": rows(
            "SELECT count(*) FROM organization_users WHERE organization_id = %s", [b]
        )[0][0],
        "B itself": rows("SELECT count(*) FROM organizations WHERE id = %s", [b])[0][0],
        "B's tokens": rows("SELECT count(*) FROM api_tokens WHERE organization_id = %s", [b])[0][0],
    }


NOTHING = {
    "customers": 0,
    "all tenant rows of B": 0,
    "B's owner account": 0,
    "B's memberships": 0,
    "B itself": 0,
    "B's tokens": 0,
}


def current_claim() -> str:
    return rows("SELECT current_setting('app.tenancy_claim', true)")[0][0]


def forged(claim: str, **changes) -> str:
    """`claim` with some of its fields changed and its MAC kept: what an attacker can make."""
    parts = claim.split(".")
    names = ["version", "key", "pid", "started", "platform", "user", "organizations", "mac"]
    for name, value in changes.items():
        parts[names.index(name)] = value
    return ".".join(parts)


SETTING_ATTACKS = {
    "set_config unscoped": "SELECT set_config('app.unscoped', 'on', true)",
    "set_config unscoped for the session": "SELECT set_config('app.unscoped', 'on', false)",
    "SET unscoped": "SET app.unscoped = on",
    "SET LOCAL unscoped": "SET LOCAL app.unscoped = on",
    "set_config organization": "SELECT set_config('app.current_organization_id', '{b}', true)",
    "SET organization": "SET app.current_organization_id = '{b}'",
    "RESET the claim": "RESET app.tenancy_claim",
    "RESET ALL": "RESET ALL",
    "empty claim": "SELECT set_config('app.tenancy_claim', '', true)",
    "garbage claim": "SELECT set_config('app.tenancy_claim', 'v1.x.1.2.1..{b}.00', true)",
    "SET ROLE to the owner": "SET ROLE postgres",
    "SET SESSION AUTHORIZATION": "SET SESSION AUTHORIZATION postgres",
    "become the table owner": "SELECT set_config('role', 'postgres', true)",
}


@pytest.mark.parametrize("statement", SETTING_ATTACKS.values(), ids=SETTING_ATTACKS.keys())
def test_no_setting_widens_or_switches_the_organization(acme, blue, people, statement):
    with as_request(acme.organization, people["attacker"]):
        attempt(statement.format(b=blue.organization.pk))
        assert blue_rows_seen(blue, people) == NOTHING
        seen = {row[0] for row in rows("SELECT DISTINCT organization_id FROM customers")}
        assert seen <= {acme.organization.pk}


FORGERIES = {
    "B's id in place of A's": lambda claim, a, b: forged(claim, organizations=str(b)),
    "both organizations": lambda claim, a, b: forged(claim, organizations=f"{a},{b}"),
    "the platform flag": lambda claim, a, b: forged(claim, platform="1"),
    "another user": lambda claim, a, b: forged(claim, user=str(uuid.uuid4())),
    "another backend": lambda claim, a, b: forged(claim, pid="1"),
    "a truncated MAC": lambda claim, a, b: claim[:-2],
    "an unknown key": lambda claim, a, b: forged(claim, key="0" * 16),
    "signed with another key": lambda claim, a, b: sign(
        ClaimInputs("", (str(b),), True),
        backend_pid=int(claim.split(".")[2]),
        transaction_start=int(claim.split(".")[3]),
        key=b"another key, not the database's".ljust(32, b"!"),
    ),
}


def what_the_policies_read():
    """Every function a policy calls (tenants.0010: each verifies the claim itself), and the
    membership sets the users and organizations policies compare with."""
    return rows(
        "SELECT tenancy_organizations(), tenancy_user_id(), tenancy_is_platform(), "
        "tenancy_current_organization(), "
        "ARRAY(SELECT tenancy_member_ids()), ARRAY(SELECT tenancy_own_organization_ids())"
    )[0]


NO_CLAIM_READ = ([], None, False, None, [], [])


@pytest.mark.parametrize("make", FORGERIES.values(), ids=FORGERIES.keys())
def test_a_forged_claim_verifies_as_no_claim(acme, blue, people, make):
    a, b = acme.organization.pk, blue.organization.pk
    with as_request(acme.organization, people["attacker"]):
        claim = current_claim()
        assert rows("SELECT count(*) FROM customers")[0][0] == 3
        attacker = people["attacker"].pk
        assert what_the_policies_read() == ([a], attacker, False, a, [attacker], [a])
        attempt("SELECT set_config('app.tenancy_claim', %s, true)", [make(claim, a, b)])
        assert rows("SELECT count(*) FROM customers")[0][0] == 0
        assert rows("SELECT (tenancy_claim()).organization_ids")[0][0] is None
        assert what_the_policies_read() == NO_CLAIM_READ
        assert blue_rows_seen(blue, people) == NOTHING


def test_the_verification_functions_take_no_input_to_forge(acme, blue, people):
    with as_request(acme.organization, people["attacker"]):
        for call in (
            "tenancy_claim('x')",
            "tenancy_organizations(%s)",
            "tenancy_is_platform(true)",
        ):
            assert (
                attempt(f"SELECT {call}", [str(blue.organization.pk)] if "%s" in call else None)
                is None
            )
        assert rows("SELECT tenancy_is_platform()")[0][0] is False
        assert rows("SELECT tenancy_organizations()")[0][0] == [acme.organization.pk]


@pytest.mark.django_db(transaction=True)
def test_a_claim_replayed_in_another_transaction_verifies_as_none(acme, blue, people):
    # B's claim, as B's own request had it on this very connection (the worst case: the same
    # backend, moments later).
    with as_request(blue.organization, people["victim"]):
        rows("SELECT 1")
        replayed = current_claim()
    with as_request(acme.organization, people["attacker"]):
        attempt("SELECT set_config('app.tenancy_claim', %s, true)", [replayed])
        assert what_the_policies_read() == NO_CLAIM_READ
        assert blue_rows_seen(blue, people) == NOTHING
    # On another backend, too.
    with psycopg.connect(_app_uri(), autocommit=False) as other:
        other.execute("SELECT set_config('app.tenancy_claim', %s, true)", [replayed])
        assert other.execute("SELECT count(*) FROM customers").fetchone()[0] == 0
        assert (
            other.execute(
                "SELECT tenancy_organizations(), tenancy_user_id(), tenancy_is_platform(), "
                "tenancy_current_organization(), ARRAY(SELECT tenancy_member_ids()), "
                "ARRAY(SELECT tenancy_own_organization_ids())"
            ).fetchone()
            == NO_CLAIM_READ
        )


def _app_uri() -> str:
    from routeoptimizer.database import settings_to_uri

    return settings_to_uri(connection.settings_dict)


def test_alter_role_set_reaches_new_sessions_but_means_nothing(acme, blue, people):
    database = connection.settings_dict["NAME"]
    role = connection.settings_dict["USER"]
    with psycopg.connect(_app_uri(), autocommit=True) as attacker:
        try:
            attacker.execute(
                f'ALTER ROLE "{role}" IN DATABASE "{database}" SET app.unscoped = \'on\''
            )
        except psycopg.errors.InsufficientPrivilege:
            return  # refused outright: nothing to check
        try:
            with psycopg.connect(_app_uri()) as fresh:
                assert fresh.execute("SHOW app.unscoped").fetchone()[0] == "on"
                assert fresh.execute("SELECT count(*) FROM customers").fetchone()[0] == 0
                assert fresh.execute("SELECT count(*) FROM users").fetchone()[0] == 0
        finally:
            attacker.execute(f'ALTER ROLE "{role}" IN DATABASE "{database}" RESET ALL')


def test_nothing_is_readable_without_an_organization(acme, blue, people):
    readable_globals = {
        # Django's catalogue of models and permissions: the same for everyone, no tenant data.
        "django_content_type",
        "auth_permission",
        "auth_group",
        "auth_group_permissions",
        "django_migrations",
    }
    tables = [
        name
        for (name,) in rows(
            "SELECT relname FROM pg_class WHERE relnamespace = current_schema()::regnamespace "
            "AND relkind IN ('r', 'p') ORDER BY 1"
        )
    ]
    leaks = {}
    with as_request():
        for table in tables:
            if table in readable_globals:
                continue
            result = attempt(f'SELECT count(*) FROM "{table}"')
            if result is not None and result[0][0]:
                leaks[table] = result[0][0]
    assert leaks == {}


OWNER_ONLY = [
    "tenancy_keys",
    "tenancy_legacy_snapshot",
    "django_session",
    # import_organization's sources, proofs and remapped ids (tenants.0011).
    "tenancy_imports",
    "tenancy_import_id_map",
    "tenancy_migration_journal",
]


@pytest.mark.parametrize("table", OWNER_ONLY)
def test_owner_only_tables_are_refused_outright(acme, people, table):
    with as_request(acme.organization, people["attacker"]):
        for statement in (
            f"SELECT * FROM {table}",
            f"DELETE FROM {table}",
            f"COPY {table} TO STDOUT",
        ):
            assert attempt(statement) is None, statement


def test_no_password_hash_is_readable_not_even_ones_own(acme, people):
    with as_request(acme.organization, people["attacker"]):
        assert attempt("SELECT password_hash FROM users") is None
        assert attempt("SELECT * FROM users") is None
        assert attempt("COPY (SELECT password_hash FROM users) TO STDOUT") is None
        assert rows("SELECT tenancy_password_hash(%s)", [people["victim"].pk]) == [(None,)]
        # The own one, for sign-in only: through the function, as the claim's own user.
        assert rows("SELECT tenancy_password_hash(%s)", [people["attacker"].pk])[0][0]


def test_sessions_cannot_be_listed_or_replayed_from_sql(acme, people):
    key = people["session_key"]
    with as_request(acme.organization, people["attacker"]):
        assert attempt("SELECT session_key FROM django_session") is None
        # Only the key's holder reaches a session, and the table keeps no key to steal.
        assert rows("SELECT tenancy_session_load(%s)", [key]) == [(None,)]
    assert SessionStore(session_key=key).load()["_auth_user_id"] == str(people["superuser"].pk)


def test_the_geocoding_cache_is_reached_by_address_only(acme, people):
    from geocoding.services import address_hash, cache_lookup, cache_store

    cache_store(address="1 Blue Lagoon Way", latitude=1.0, longitude=2.0, provider="openstreetmap")
    with as_request(acme.organization, people["attacker"]):
        assert rows("SELECT count(*) FROM geocoding_cache") == [(0,)]
        assert attempt("UPDATE geocoding_cache SET latitude = 0 RETURNING id") == []
        assert cache_lookup("1 Blue Lagoon Way").latitude == 1.0  # who knows the address
        assert rows("SELECT count(*) FROM tenancy_geocode_lookup(%s, '1 day')", ["0" * 64]) == [
            (0,)
        ]
        assert address_hash("1 blue lagoon way") == address_hash("1 Blue Lagoon Way")


def test_tokens_are_found_by_hash_only(acme, blue, people):
    from accounts.tokens import hash_token

    with as_request(acme.organization, people["attacker"]):
        assert rows(
            "SELECT count(*) FROM api_tokens WHERE user_id = %s", [people["victim"].pk]
        ) == [(0,)]
        assert rows("SELECT count(*) FROM tenancy_api_token(%s)", ["0" * 64]) == [(0,)]
        found = rows(
            "SELECT user_id FROM tenancy_api_token(%s)", [hash_token(people["victim_token"])]
        )
        assert found == [(people["victim"].pk,)], "the holder of the token itself finds it"


LOOKUP = "tenancy_api_token_membership(%s)"


def lookup(digest) -> list[dict]:
    """What tenancy_api_token_membership() answers for `digest`, by column name."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {LOOKUP}", [digest])
        names = [column.name for column in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def test_the_token_membership_lookup_answers_a_guessed_hash_with_nothing(acme, people):
    from accounts.tokens import hash_token

    victim_hash = hash_token(people["victim_token"])
    guesses = [
        "0" * 64,
        "",
        "%",
        "_" * 64,
        victim_hash[:63],
        victim_hash.upper(),
        None,
        f"{victim_hash}' OR '1'='1",
        hash_token("ro_guessed"),
    ]
    for organization, user in ((None, None), (acme.organization, people["attacker"])):
        with as_request(organization, user):
            for guess in guesses:
                assert lookup(guess) == [], guess


def test_the_token_membership_lookup_shows_the_holder_its_own_rows_only(acme, blue, people):
    from accounts.tokens import hash_token

    _, own = api_token_issue(user=people["attacker"], organization=acme.organization)
    with as_request():  # an anonymous request presenting B's owner's token: that token's own
        [found] = lookup(hash_token(people["victim_token"]))
    assert (found["user_id"], found["organization_id"]) == (
        people["victim"].pk,
        blue.organization.pk,
    )
    assert (found["user_email"], found["organization_slug"]) == ("victor@blue.example", "blue")
    assert found["membership_role"] == Role.OWNER
    # Nothing a token's holder does not need: no hash, no password, no other account's column.
    assert not {"key_hash", "password_hash", "user_password_hash"} & set(found)
    with as_request(acme.organization, people["attacker"]):
        # Every hash A's owner can read is A's owner's own: the lookup over them shows nothing
        # more than that account, its membership and its organization.
        seen = rows(
            f"SELECT f.user_id, f.organization_id, f.membership_id FROM api_tokens t, "
            f"LATERAL {LOOKUP.replace('%s', 't.key_hash')} f"
        )
        assert seen == [(people["attacker"].pk, acme.organization.pk, found_membership(own))]
        assert attempt(f"SELECT * FROM {LOOKUP.replace('%s', 'NULL::text[]')}") is None
        assert blue_rows_seen(blue, people) == NOTHING


def found_membership(api_token):
    from tenants.models import OrganizationUser

    with platform_access():
        return OrganizationUser.objects.get(
            user_id=api_token.user_id, organization_id=api_token.organization_id
        ).pk


MEMBERSHIP_COLUMNS = (
    "membership_id",
    "membership_role",
    "user_email",
    "user_is_active",
    "organization_name",
    "organization_slug",
    "organization_is_active",
)


@pytest.mark.parametrize("state", ["revoked", "expired", "membership gone", "invitation pending"])
def test_an_unusable_token_gets_its_own_row_and_nothing_about_its_account(
    acme, blue, people, state
):
    from datetime import timedelta

    from django.utils import timezone

    from accounts.models import ApiToken
    from accounts.tokens import hash_token
    from tenants.models import OrganizationUser

    token = people["victim_token"]
    with platform_access():
        api_token = ApiToken.objects.get(key_hash=hash_token(token))
        memberships = OrganizationUser.objects.filter(user=people["victim"])
        if state == "revoked":
            ApiToken.objects.filter(pk=api_token.pk).update(revoked_at=timezone.now())
        elif state == "expired":
            ApiToken.objects.filter(pk=api_token.pk).update(
                expires_at=timezone.now() - timedelta(seconds=1)
            )
        elif state == "membership gone":
            memberships.delete()
        else:
            memberships.update(invitation_token="pending", invitation_accepted_at=None)
    with as_request():
        [found] = lookup(hash_token(token))
    assert found["id"] == api_token.pk  # the token row: authentication names why it refuses
    assert {name: found[name] for name in MEMBERSHIP_COLUMNS} == dict.fromkeys(MEMBERSHIP_COLUMNS)

    from django.test import Client

    response = Client().get("/api/v1/customers/", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 401
    expected = {
        "revoked": "invalid, expired or revoked token",
        "expired": "invalid, expired or revoked token",
        "membership gone": "no longer an active member of organization 'blue'",
        "invitation pending": "no longer an active member of organization 'blue'",
    }[state]
    assert expected in response.json()["error"]


def test_nobody_but_the_application_role_executes_the_token_membership_lookup():
    function = "tenancy_api_token_membership(text)"
    assert rows("SELECT has_function_privilege('public', %s, 'EXECUTE')", [function]) == [(False,)]
    assert rows("SELECT has_function_privilege(current_user, %s, 'EXECUTE')", [function]) == [
        (True,)
    ]
    # Who may run it: the owner (it is the owner's) and the application role, nobody else.
    grantees = rows(
        "SELECT DISTINCT a.grantee::regrole::text FROM pg_proc p, aclexplode(p.proacl) a "
        "WHERE p.oid = %s::regprocedure",
        [function],
    )
    assert {grantee for (grantee,) in grantees} == {
        rows("SELECT current_user")[0][0],
        rows(
            "SELECT proowner::regrole::text FROM pg_proc WHERE oid = %s::regprocedure", [function]
        )[0][0],
    }
    # The owner's rights, with a search_path of the catalog only: nothing the application role
    # could create resolves in it.
    assert rows(
        "SELECT prosecdef, proconfig FROM pg_proc WHERE oid = %s::regprocedure", [function]
    ) == [(True, ["search_path=pg_catalog, pg_temp"])]
    # It cannot be redefined by the application role, nor shadowed (no CREATE, no TEMPORARY).
    assert (
        attempt(
            f"CREATE OR REPLACE FUNCTION {function.replace('(text)', '(digest text)')} "
            "RETURNS int LANGUAGE sql AS 'SELECT 1'"
        )
        is None
    )


PRIVILEGE_ATTACKS = {
    "make oneself superuser": "UPDATE users SET is_superuser = true WHERE id = '{me}'",
    "make oneself staff": "UPDATE users SET is_staff = true WHERE id = '{me}'",
    "a new superuser": "INSERT INTO users (id, email, is_superuser, is_staff) "
    "VALUES (gen_random_uuid(), 'evil@example.com', true, true)",
    "B's owner's password": "UPDATE users SET password_hash = 'x' WHERE id = '{victim}'",
    "B's owner's password, by function": "SELECT tenancy_set_password_hash('{victim}', 'x')",
    "B's owner's email": "UPDATE users SET email = 'evil@example.com' WHERE id = '{victim}'",
    "join B as its owner": "INSERT INTO organization_users (id, organization_id, user_id, role) "
    "VALUES (gen_random_uuid(), '{b}', '{me}', 'owner')",
    "move one's membership to B": "UPDATE organization_users SET organization_id = '{b}' "
    "WHERE user_id = '{me}'",
    "raise one's plan": "UPDATE organizations SET plan_tier = 'enterprise', max_users = 100000 "
    "WHERE id = '{a}'",
    "reactivate, resubscribe": "UPDATE organizations SET subscription_status = 'active', "
    "trial_ends_at = '2099-01-01' WHERE id = '{a}'",
    "rename B": "UPDATE organizations SET name = 'pwned' WHERE id = '{b}'",
    "create an organization": "INSERT INTO organizations (id, name, slug) "
    "VALUES (gen_random_uuid(), 'x', 'x')",
    "a token for B's owner": "INSERT INTO api_tokens (id, user_id, organization_id, key_hash) "
    "VALUES (gen_random_uuid(), '{victim}', '{b}', 'h')",
    "a token for oneself in B": "INSERT INTO api_tokens (id, user_id, organization_id, key_hash) "
    "VALUES (gen_random_uuid(), '{me}', '{b}', 'h')",
    "join a group": "INSERT INTO users_groups (user_id, group_id) "
    "SELECT '{me}', id FROM auth_group",
    "grant oneself a permission": "INSERT INTO users_user_permissions (user_id, permission_id) "
    "SELECT '{me}', id FROM auth_permission LIMIT 1",
    "forge the admin log": "INSERT INTO django_admin_log (action_time, user_id, object_repr, "
    "action_flag, change_message) VALUES (now(), '{victim}', 'x', 1, '')",
    "drop a migration record": "DELETE FROM django_migrations",
    "create a function to shadow ours": "CREATE FUNCTION public.tenancy_x() RETURNS int "
    "LANGUAGE sql AS 'SELECT 1'",
    "a temporary table to shadow customers": "CREATE TEMP TABLE customers (id uuid)",
    "a temporary view to shadow users": "CREATE TEMP VIEW users AS SELECT 1 AS id",
    "a temporary function": "CREATE FUNCTION pg_temp.steal() RETURNS int LANGUAGE sql "
    "AS 'SELECT 1'",
    "write into B's admin log": "INSERT INTO django_admin_log (action_time, user_id, "
    "object_repr, action_flag, change_message, organization_id) "
    "VALUES (now(), '{me}', 'x', 1, '', '{b}')",
    "add B's owner to A without an invitation": "INSERT INTO organization_users "
    "(id, organization_id, user_id, role) VALUES (gen_random_uuid(), '{a}', "
    "tenancy_account_id('victor@blue.example'), 'admin')",
    "create an account directly": "INSERT INTO users (id, email) "
    "VALUES (gen_random_uuid(), 'squatter@example.com')",
    "read the billing move's markers": "SELECT * FROM legacy_customer_billing",
    "ask who holds which role": "SELECT tenancy_member_role('{b}', '{victim}')",
}


@pytest.mark.parametrize("statement", PRIVILEGE_ATTACKS.values(), ids=PRIVILEGE_ATTACKS.keys())
def test_privilege_and_cross_organization_writes_are_refused(acme, blue, people, statement):
    names = {
        "me": people["attacker"].pk,
        "victim": people["victim"].pk,
        "a": acme.organization.pk,
        "b": blue.organization.pk,
    }
    with as_request(acme.organization, people["attacker"]):
        result = attempt(statement.format(**names))
        changed = result is not None and result != [] and result != [(False,)]
        assert not changed, result
        # Nothing moved, whether refused or matching no row.
        assert blue_rows_seen(blue, people) == NOTHING
    with platform_access():
        victim = rows("SELECT email, is_superuser FROM users WHERE id = %s", [names["victim"]])
        me = rows("SELECT is_superuser, is_staff FROM users WHERE id = %s", [names["me"]])
        plan = rows("SELECT plan_tier, max_users FROM organizations WHERE id = %s", [names["a"]])
        assert victim == [("victor@blue.example", False)]
        assert me == [(False, False)]
        assert plan == [(acme.organization.plan_tier, acme.organization.max_users)]
        assert rows("SELECT name FROM organizations WHERE id = %s", [names["b"]]) == [
            (blue.organization.name,)
        ]


def test_members_below_admin_change_no_account_but_their_own_and_no_settings(acme, people):
    reader = UserFactory(email="rita@acme.example")
    MembershipFactory(organization=acme.organization, user=reader, role=Role.READONLY)
    with as_request(acme.organization, reader):
        for statement in (
            "UPDATE users SET first_name = 'Hacked' WHERE id = %s",
            "UPDATE users SET password_reset_token = 'known', "
            "password_reset_expires_at = now() + interval '1 day' WHERE id = %s",
        ):
            assert attempt(statement, [people["attacker"].pk]) is None, statement
        assert attempt("UPDATE organizations SET name = 'pwned', billing_email = 'x@evil'") is None
        assert rows("UPDATE users SET first_name = 'R' WHERE id = %s RETURNING id", [reader.pk])
    with as_request(acme.organization, people["attacker"]):
        # Not even an owner sets another account's reset token.
        statement = "UPDATE users SET password_reset_token = 'known' WHERE id = %s"
        assert attempt(statement, [reader.pk]) is None


def test_rows_of_the_own_organization_are_still_writable(acme, people):
    # The boundary is not a wall around everything: A's own work goes on.
    with as_request(acme.organization, people["attacker"]):
        assert len(rows("UPDATE customers SET notes = 'ok' RETURNING id")) == 3
        assert rows("UPDATE organizations SET name = 'Acme Pools Ltd' RETURNING id") == [
            (acme.organization.pk,)
        ]
        assert rows(
            "UPDATE users SET first_name = 'M' WHERE id = %s RETURNING id", [people["attacker"].pk]
        ) == [(people["attacker"].pk,)]


def test_copy_out_honours_the_organization(acme, blue, people):
    with as_request(acme.organization, people["attacker"]):
        rows("SELECT 1")  # the request's first query puts its claim on the transaction
        cursor = connection.cursor().cursor  # the psycopg cursor behind Django's
        with cursor.copy("COPY (SELECT organization_id FROM customers) TO STDOUT") as copy:
            seen = {bytes(row).strip() for row in copy}
    assert seen == {str(acme.organization.pk).encode()}


def test_copy_in_cannot_write_into_another_organization(acme, blue, people):
    with as_request(acme.organization, people["attacker"]):
        rows("SELECT 1")
        with pytest.raises(psycopg.Error), transaction.atomic():
            cursor = connection.cursor().cursor
            with cursor.copy(
                "COPY usage_tracking (id, organization_id, metric, quantity) FROM STDIN"
            ) as copy:
                copy.write_row([str(uuid.uuid4()), str(blue.organization.pk), "api_calls", 1])


def test_the_admin_log_shows_an_organization_its_own_entries_only(acme, blue, people):
    from django.contrib.admin.models import ADDITION, LogEntry
    from django.contrib.contenttypes.models import ContentType

    content_type = ContentType.objects.get_for_model(Customer)
    for seeded, user in ((blue, people["victim"]), (acme, people["attacker"])):
        with as_request(seeded.organization, user):
            LogEntry.objects.create(
                user=user,
                content_type=content_type,
                object_id=str(seeded.rows[Customer][0].pk),
                object_repr="a customer",
                action_flag=ADDITION,
            )
    with as_request(acme.organization, people["attacker"]):
        logged = rows("SELECT organization_id FROM django_admin_log")
    assert logged == [(acme.organization.pk,)]


def test_a_key_the_database_does_not_know_sees_nothing_and_check_says_so(acme):
    from django.test import override_settings

    from tenants.checks import check_tenancy_key
    from tenants.verification import claim_verifies

    assert claim_verifies(connection) is True
    assert check_tenancy_key(databases=["default"]) == []
    with override_settings(ROUTEOPTIMIZER_TENANCY_KEY="a key nobody installed"):
        assert claim_verifies(connection) is False
        with platform_access(False), organization_context(acme.organization):
            assert Customer.objects.count() == 0
        [error] = check_tenancy_key(databases=["default"])
    assert error.id == "tenants.E002"
    assert "tenancy_key install" in error.hint
