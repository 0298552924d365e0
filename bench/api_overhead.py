"""What the verified organization costs a request: the API with tenants.0007's signed claim
against the same API with tenants.0005's plain settings, side by side in one run.

    .venv/bin/python bench/api_overhead.py                       # embedded PostgreSQL
    .venv/bin/python bench/api_overhead.py --server-url postgresql://postgres@127.0.0.1:5432/postgres
    .venv/bin/python bench/api_overhead.py --customers 5000 --rounds 12 --requests 40

It creates a scratch database, migrates it as the owner, seeds one organization with N
customers, an owner and a bearer token, and nine more organizations with N customers each (a
multi-tenant database: with every row in one organization, the planner would choose between
the table and the organization index on the policies' per-row cost, not on the organization
(`--other-organizations`)), and serves requests in process through Django's test client, as
the application role (row level security binds it), exactly as `gunicorn` workers would run
the view code (no HTTP parsing, which is the same in both modes). Rounds alternate
the two modes, so drift of a noisy machine hits both alike:

- verified: what is installed: the claim (`app.tenancy_claim`, HMAC-signed, bound to the
  backend and the transaction) sent by tenants.connection (the transaction's start read with
  its BEGIN, the claim in the message of its query), verified by each policy function once per
  statement (tenants.0010); the account tables behind row level security;
- settings: tenants.0005's policies put back on the tenant tables (plain
  `app.current_organization_id` / `app.unscoped` settings), row level security off on the
  account tables, and the old execute wrapper (the settings in the same message as the query).

Prints the median and p90 milliseconds per request of each mode and their ratio, per endpoint.
Exit 0 when every ratio is within the goal (1.10), 1 otherwise, 2 when no server is at hand.
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import subprocess
import sys
import time
from importlib import import_module
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
from psycopg import sql  # noqa: E402

from bench.migrate_at_scale import choose_server, create_database, database_uri, drop_database  # noqa: E402
from routeoptimizer.database import APPLICATION_ROLE, create_login_role  # noqa: E402

GOAL = 1.10
ACCOUNT_TABLES = ("users", "organization_users", "api_tokens", "organizations", "django_admin_log")


def app_uri(owner_uri: str) -> str:
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(owner_uri)
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit(parts._replace(netloc=f"{APPLICATION_ROLE}@{host}"))


def manage(owner: str, app: str, *arguments: str) -> None:
    env = {
        **os.environ,
        "DATABASE_URL": app,
        "MIGRATION_DATABASE_URL": owner,
        "SECRET_KEY": "bench-api-overhead",
        "DEBUG": "0",
    }
    subprocess.run(
        [sys.executable, "manage.py", *arguments],
        cwd=ROOT,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )


def seed(owner: str, customers: int, others: int = 0) -> tuple[str, list[str]]:
    """`customers` customers and a token of its owner for the organization `bench`, and as many
    customers for each of `others` further organizations (the rows a multi-tenant database holds
    beside the requests' own); returns the token and some of `bench`'s customer ids."""
    from accounts.tokens import hash_token

    token = "ro_" + secrets.token_urlsafe(32)
    with psycopg.connect(owner, autocommit=True) as connection:
        connection.execute("SET app.unscoped = on")
        organization, user = connection.execute(
            "SELECT organization_id, user_id FROM organization_users m "
            "JOIN organizations o ON o.id = m.organization_id WHERE o.slug = 'bench'"
        ).fetchone()
        connection.execute(
            "INSERT INTO api_tokens (id, user_id, organization_id, key_hash, name) "
            "VALUES (gen_random_uuid(), %s, %s, %s, 'bench')",
            [user, organization, hash_token(token)],
        )
        connection.execute(
            "INSERT INTO customers (id, organization_id, display_name, address, service_type, "
            "difficulty, service_day, status, is_active, locked, service_days_per_week, "
            "created_at, updated_at) "
            "SELECT gen_random_uuid(), %s, 'Customer ' || n, n || ' Main St', 'residential', 2, "
            "'monday', 'active', true, false, 1, now(), now() FROM generate_series(1, %s) n",
            [organization, customers],
        )
        connection.execute(
            "INSERT INTO organizations SELECT (jsonb_populate_record(o, jsonb_build_object("
            "'id', gen_random_uuid(), 'slug', 'other-' || n, 'name', 'Other ' || n, "
            "'subdomain', NULL))).* FROM organizations o, generate_series(1, %s) n "
            "WHERE o.slug = 'bench'",
            [others],
        )
        connection.execute(
            "INSERT INTO customers (id, organization_id, display_name, address, service_type, "
            "difficulty, service_day, status, is_active, locked, service_days_per_week, "
            "created_at, updated_at) "
            "SELECT gen_random_uuid(), o.id, 'Customer ' || n, n || ' Main St', 'residential', "
            "2, 'monday', 'active', true, false, 1, now(), now() "
            "FROM organizations o, generate_series(1, %s) n WHERE o.slug LIKE 'other-%%'",
            [customers],
        )
        connection.execute("VACUUM ANALYZE")
        ids = [
            str(row[0])
            for row in connection.execute(
                "SELECT id FROM customers WHERE organization_id = %s ORDER BY id LIMIT 50",
                [organization],
            )
        ]
    return token, ids


def set_mode(owner: str, mode: str) -> None:
    """Put the policies of `mode` in place (owner connection, catalog-only DDL)."""
    from tenants.migrations._setting_policies import create_setting_policies
    from tenants.rls import _create_policies, _drop_policies

    tables = import_module("tenants.migrations.0007_verified_organization").TENANT_TABLES
    create = create_setting_policies if mode == "settings" else _create_policies
    with psycopg.connect(owner, autocommit=True) as connection:
        for table, templates in tables.items():
            for statement in [*_drop_policies(table), *create(table, global_templates=templates)]:
                connection.execute(statement)
        verb = "DISABLE" if mode == "settings" else "ENABLE"
        for table in ACCOUNT_TABLES:
            connection.execute(
                sql.SQL("ALTER TABLE {} {} ROW LEVEL SECURITY").format(
                    sql.Identifier(table), sql.SQL(verb)
                )
            )


def use_wrapper(mode: str) -> None:
    from django.db import connection

    from bench._setting_wrapper import setting_on_transaction
    from tenants.connection import organization_on_transaction

    connection.close()  # the next connection gets the wrappers of connection_created
    wanted = setting_on_transaction if mode == "settings" else organization_on_transaction
    connection.ensure_connection()
    connection.execute_wrappers[:] = [wanted]


def timed(client, path: str, token: str, count: int) -> list[float]:
    times = []
    for _ in range(count):
        started = time.perf_counter()
        response = client.get(path, HTTP_AUTHORIZATION=f"Bearer {token}")
        times.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            raise SystemExit(f"{path} answered {response.status_code}: {response.content[:200]}")
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server-url", help="libpq URI of the server's maintenance database")
    parser.add_argument("--customers", type=int, default=5000, help="customers per organization")
    parser.add_argument(
        "--other-organizations",
        type=int,
        default=9,
        help="organizations beside the requests' own, each with as many customers",
    )
    parser.add_argument("--rounds", type=int, default=10, help="rounds per mode, alternating")
    parser.add_argument("--requests", type=int, default=30, help="requests per endpoint a round")
    args = parser.parse_args()

    try:
        server, where = choose_server(args.server_url)
    except Exception as error:
        print(f"error: no PostgreSQL server to run on ({error})", file=sys.stderr)
        return 2
    name = f"ro_bench_api_{secrets.token_hex(4)}"
    owner = create_database(server, name)
    with psycopg.connect(database_uri(server, "postgres"), autocommit=True) as connection:
        create_login_role(connection, APPLICATION_ROLE)
    app = app_uri(owner)
    try:
        manage(owner, app, "migrate", "--verbosity", "0")
        manage(
            owner,
            app,
            "create_organization",
            "--name",
            "Bench",
            "--slug",
            "bench",
            "--owner-email",
            "bench@example.com",
        )
        token, ids = seed(owner, args.customers, args.other_organizations)
        os.environ.update(
            DATABASE_URL=app,
            MIGRATION_DATABASE_URL=owner,
            SECRET_KEY="bench-api-overhead",
            DEBUG="0",
            ALLOWED_HOSTS="testserver",
            DJANGO_SETTINGS_MODULE="routeoptimizer.settings",
        )
        import django

        django.setup()
        from django.test import Client

        client = Client()
        endpoints = {
            "list (page of 50)": "/api/v1/customers/?page_size=50",
            "detail": f"/api/v1/customers/{ids[0]}/",
        }
        modes = ("verified", "settings")
        results = {(endpoint, mode): [] for endpoint in endpoints for mode in modes}
        for _ in range(args.rounds):
            for mode in modes:
                set_mode(owner, mode)
                use_wrapper(mode)
                for endpoint, path in endpoints.items():
                    timed(client, path, token, 3)  # warm the connection and the caches
                    results[(endpoint, mode)] += timed(client, path, token, args.requests)
        set_mode(owner, "verified")
    finally:
        from django.conf import settings

        if settings.configured:
            from django.db import connections

            connections.close_all()
        drop_database(server, name)

    print(
        f"API per-request cost, verified claim vs plain settings ({where}, "
        f"{args.customers} customers in each of {args.other_organizations + 1} organizations, "
        f"{args.rounds} rounds x {args.requests} requests)"
    )
    print(f"{'endpoint':<20} {'verified ms':>12} {'settings ms':>12} {'ratio':>7}  p90 v/s")
    met = True
    for endpoint in endpoints:
        verified = results[(endpoint, "verified")]
        plain = results[(endpoint, "settings")]
        ratio = statistics.median(verified) / statistics.median(plain)
        met &= ratio <= GOAL
        p90 = lambda xs: statistics.quantiles(xs, n=10)[-1]  # noqa: E731
        print(
            f"{endpoint:<20} {statistics.median(verified):>12.2f} {statistics.median(plain):>12.2f}"
            f" {ratio:>7.3f}  {p90(verified):.2f}/{p90(plain):.2f}"
        )
    print(f"goal: ratio <= {GOAL:.2f}: {'met' if met else 'MISSED'}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
