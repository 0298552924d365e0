"""What plans cost a request: the API with the subscription status check, the api_calls meter and
the plan limits (ROUTEOPTIMIZER_PLANS_ENFORCED on) against the same API with them switched off,
side by side in one run.

    .venv/bin/python bench/plan_limits.py                        # embedded PostgreSQL
    .venv/bin/python bench/plan_limits.py --server-url postgresql://postgres@127.0.0.1:5432/postgres
    .venv/bin/python bench/plan_limits.py --customers 5000 --rounds 8 --requests 25

Like bench/api_overhead.py: a scratch database, migrated as the owner, one organization `bench`
(N customers, its owner, a bearer token) on a limit high enough never to refuse (so every check
counts the rows), requests served in process through Django's test client as the application
role. Rounds alternate the modes, so a noisy machine's drift hits all alike:

- on: what is installed (status check and meter on every request, the meter writing every
  ROUTEOPTIMIZER_API_CALLS_FLUSH_SECONDS = 60 s; the limit check on every create: the
  organization's row locked, its customers counted, a customers_created usage row);
- off: ROUTEOPTIMIZER_PLANS_ENFORCED = 0;
- on, flush each: the meter writing after every request (its worst case), for reads only.

Prints the median and p90 milliseconds per request of each mode and the ratios. Exit 0 when the
reads' ratio (status check + meter) is within the goal (1.05), 1 otherwise, 2 without a server.
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402

from bench.api_overhead import app_uri, manage, seed  # noqa: E402
from bench.migrate_at_scale import choose_server, create_database, database_uri, drop_database  # noqa: E402
from routeoptimizer.database import APPLICATION_ROLE, create_login_role  # noqa: E402

GOAL = 1.05
MODES = ("on", "off", "on, flush each")


def set_mode(mode: str) -> None:
    from django.conf import settings

    settings.ROUTEOPTIMIZER_PLANS_ENFORCED = mode != "off"
    settings.ROUTEOPTIMIZER_API_CALLS_FLUSH_SECONDS = 0 if mode == "on, flush each" else 60


def timed(client, method: str, path: str, token: str, count: int, body=None) -> list[float]:
    times = []
    expected = 201 if method == "post" else 200
    for _ in range(count):
        started = time.perf_counter()
        if method == "post":
            response = client.post(
                path, body, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}"
            )
        else:
            response = client.get(path, HTTP_AUTHORIZATION=f"Bearer {token}")
        times.append((time.perf_counter() - started) * 1000)
        if response.status_code != expected:
            raise SystemExit(f"{path} answered {response.status_code}: {response.content[:200]}")
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server-url", help="libpq URI of the server's maintenance database")
    parser.add_argument("--customers", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=8, help="rounds per mode, alternating")
    parser.add_argument("--requests", type=int, default=25, help="requests per endpoint a round")
    args = parser.parse_args()

    try:
        server, where = choose_server(args.server_url)
    except Exception as error:
        print(f"error: no PostgreSQL server to run on ({error})", file=sys.stderr)
        return 2
    name = f"ro_bench_plans_{secrets.token_hex(4)}"
    owner = create_database(server, name)
    with psycopg.connect(database_uri(server, "postgres"), autocommit=True) as connection:
        create_login_role(connection, APPLICATION_ROLE)
    app = app_uri(owner)
    body = (
        '{"display_name": "Bench", "address": "1 Main St", "service_type": "residential", '
        '"difficulty": 1, "service_day": "monday"}'
    )
    try:
        manage(owner, app, "migrate", "--verbosity", "0")
        manage(owner, app, "create_organization", "--name", "Bench", "--slug", "bench",
               "--owner-email", "bench@example.com")  # fmt: skip
        token, ids = seed(owner, args.customers)
        with psycopg.connect(owner, autocommit=True) as connection:
            # Active, and a limit no run reaches: every create pays the whole check.
            connection.execute(
                "UPDATE organizations SET subscription_status = 'active', "
                "max_customers = 1000000000 WHERE slug = 'bench'"
            )
        os.environ.update(
            DATABASE_URL=app,
            MIGRATION_DATABASE_URL=owner,
            SECRET_KEY="bench-api-overhead",  # the key `manage` migrated with (the claim key)
            DEBUG="0",
            ALLOWED_HOSTS="testserver",
            DJANGO_SETTINGS_MODULE="routeoptimizer.settings",
        )
        import django

        django.setup()
        from django.test import Client

        client = Client()
        endpoints = {
            "list (page of 50)": ("get", "/api/v1/customers/?page_size=50"),
            "detail": ("get", f"/api/v1/customers/{ids[0]}/"),
            "create a customer": ("post", "/api/v1/customers/"),
        }
        results = {(endpoint, mode): [] for endpoint in endpoints for mode in MODES}
        for _ in range(args.rounds):
            for mode in MODES:
                set_mode(mode)
                for endpoint, (method, path) in endpoints.items():
                    if method == "post" and mode == "on, flush each":
                        continue
                    timed(client, method, path, token, 3, body)  # warm up
                    results[(endpoint, mode)] += timed(
                        client, method, path, token, args.requests, body
                    )
        set_mode("on")
    finally:
        from django.conf import settings

        if settings.configured:
            from django.db import connections

            from billing import meter

            meter.discard()
            connections.close_all()
        drop_database(server, name)

    print(
        f"API per-request cost, plans enforced vs off ({where}, {args.customers} customers, "
        f"{args.rounds} rounds x {args.requests} requests)"
    )
    print(
        f"{'endpoint':<20} {'on ms':>8} {'off ms':>8} {'on/off':>7} {'flush each':>11} "
        f"{'f.e./off':>8}  p90 on/off"
    )
    met = True
    p90 = lambda xs: statistics.quantiles(xs, n=10)[-1]  # noqa: E731
    for endpoint, (method, _) in endpoints.items():
        on, off = results[(endpoint, "on")], results[(endpoint, "off")]
        ratio = statistics.median(on) / statistics.median(off)
        each = results[(endpoint, "on, flush each")]
        each_text = f"{'-':>11} {'-':>8}"
        if each:
            worst = statistics.median(each)
            each_text = f"{worst:>11.2f} {worst / statistics.median(off):>8.3f}"
        if method == "get":
            met &= ratio <= GOAL
        print(
            f"{endpoint:<20} {statistics.median(on):>8.2f} {statistics.median(off):>8.2f} "
            f"{ratio:>7.3f} {each_text}  {p90(on):.2f}/{p90(off):.2f}"
        )
    print(
        f"goal for reads (status check + meter): on/off <= {GOAL:.2f}: {'met' if met else 'MISSED'}"
    )
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
