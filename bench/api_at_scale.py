"""The API at SaaS scale: many organizations sharing the tables against one alone, side by side.

    .venv/bin/python bench/api_at_scale.py                                   # 200 x 5,000
    .venv/bin/python bench/api_at_scale.py --organizations 40 --customers 5000 --seconds 8
    .venv/bin/python bench/api_at_scale.py --baseline-ref main               # also the old code
    .venv/bin/python bench/api_at_scale.py --server-url postgresql://postgres@127.0.0.1:5432/postgres

Builds two databases as an operator would (`manage.py migrate` once into a template, then
`CREATE DATABASE ... TEMPLATE`): **shared**, `--organizations` organizations of `--customers`
customers each, their rows interleaved in the heap as years of signing up leave them, and
**alone**, one organization of the same size. The measured organization is `bench` in both,
with an owner and a bearer token. Then it serves each database with gunicorn as production
would (`--workers` sync workers, DEBUG off, the application role, so row level security and the
verified claim are on), and loads each endpoint from loopback for `--seconds` with `--clients`
threads of http.client (wrk is not needed), shared then alone, endpoint by endpoint.

Per endpoint and database it prints req/s, p50 and p99 latency, and CPU milliseconds per request
split into Python (the gunicorn workers' utime+stime from /proc) and PostgreSQL (the backends
serving those workers, from /proc as well), then shared/alone ratios. `--baseline-ref REF` also
serves the shared database with the code of git REF (exported with `git archive` into a
temporary directory): the old code's Python and PostgreSQL CPU beside the new.

Run it on the embedded PostgreSQL (the default) or a server of your own: the PostgreSQL CPU is
read from the backends' /proc entries, so the server must run on this machine, and other load
on the machine shows in every figure. The databases are dropped at the end (`--keep` keeps
them).
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
from psycopg import sql  # noqa: E402

from bench.api_overhead import app_uri  # noqa: E402
from bench.migrate_at_scale import (  # noqa: E402
    choose_server,
    create_database,
    database_uri,
    drop_database,
    machine_facts,
)
from routeoptimizer.database import APPLICATION_ROLE, create_login_role  # noqa: E402

SECRET = "bench-api-at-scale-" + "x" * 40
TICKS = os.sysconf("SC_CLK_TCK")

FIRST = [
    "Ada", "Ben", "Cleo", "Dan", "Eve", "Finn", "Gail", "Hugo", "Ivy", "Jon", "Kara", "Liam",
    "Mona", "Ned", "Olga", "Pia", "Quin", "Rosa", "Sam", "Tess", "Uma", "Vic", "Wes", "Xena",
    "Yuri", "Zoe", "Abel", "Bea", "Cyd", "Dora",
]  # fmt: skip
LAST = [
    "Alvarez", "Brennan", "Castillo", "Dempsey", "Ellison", "Fairbanks", "Galloway", "Hartley",
    "Iverson", "Jennings", "Kowalski", "Lindqvist", "Montague", "Nakamura", "Okafor",
    "Pemberton", "Quintero", "Rasmussen", "Sinclair", "Thornbury", "Underwood", "Valentine",
    "Whitaker", "Yamamoto", "Zimmerman", "Abernathy", "Blackwood", "Carrington", "Davenport",
    "Everhart", "Fitzgerald", "Greenwood", "Holloway", "Ingram", "Jefferson", "Kingsley",
    "Lockhart", "Merriweather", "Northcott", "Oakley",
]  # fmt: skip
STREETS = ["Palm", "Ocean", "Sunset", "Coral", "Harbor", "Maple", "Cedar", "Willow", "Lake"]
DAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
SEARCH_FRAGMENT = "hartl"  # matches one last name in forty: 1 in 40 customers


def manage(owner: str, app: str, *arguments: str, cwd: Path = ROOT) -> None:
    env = {
        **os.environ,
        "DATABASE_URL": app,
        "MIGRATION_DATABASE_URL": owner,
        "SECRET_KEY": SECRET,
        "DEBUG": "0",
    }
    subprocess.run(
        [sys.executable, "manage.py", *arguments],
        cwd=cwd,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )


def seed(owner: str, organizations: int, customers: int) -> tuple[str, str]:
    """`organizations` - 1 organizations besides `bench`, `customers` customers each (interleaved
    in the heap), N/40 drivers each; a token of bench's owner. Returns the token and the id of
    one of bench's customers."""
    from accounts.tokens import hash_token

    token = "ro_" + secrets.token_urlsafe(32)
    with psycopg.connect(owner, autocommit=True) as connection:
        connection.execute("SET app.unscoped = on")
        bench, user = connection.execute(
            "SELECT organization_id, user_id FROM organization_users m "
            "JOIN organizations o ON o.id = m.organization_id WHERE o.slug = 'bench'"
        ).fetchone()
        connection.execute(
            "INSERT INTO api_tokens (id, user_id, organization_id, key_hash, name) "
            "VALUES (gen_random_uuid(), %s, %s, %s, 'bench')",
            [user, bench, hash_token(token)],
        )
        columns = [
            name
            for (name,) in connection.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = "
                "'organizations' AND table_schema = current_schema() "
                "AND column_name NOT IN ('id', 'name', 'slug', 'subdomain') "
                "ORDER BY ordinal_position"
            )
        ]
        copied = sql.SQL(", ").join(map(sql.Identifier, columns))
        connection.execute(
            sql.SQL(
                "INSERT INTO organizations (id, name, slug, {columns}) "
                "SELECT gen_random_uuid(), 'Company ' || g, 'company-' || g, {columns} "
                "FROM organizations, generate_series(2, %s) g WHERE slug = 'bench'"
            ).format(columns=copied),
            [organizations],
        )
        drivers = max(1, customers // 40)
        connection.execute(
            "INSERT INTO drivers (id, organization_id, name, email, start_location_address, "
            "end_location_address, working_hours_start, working_hours_end, "
            "max_customers_per_day, is_active, created_at, updated_at) "
            "SELECT gen_random_uuid(), o.id, 'Driver ' || g, 'driver' || g || '@example.com', "
            "'Depot', 'Depot', '08:00', '17:00', 40, true, now(), now() "
            "FROM generate_series(1, %s) g, organizations o ORDER BY g, o.id",
            [drivers],
        )
        # Row g of every organization in turn: each organization's rows spread over the heap.
        connection.execute(
            "INSERT INTO customers (id, organization_id, name, display_name, first_name, "
            "last_name, address, email, phone, service_type, difficulty, service_day, locked, "
            "is_active, created_at, updated_at, service_days_per_week, visit_duration, status, "
            "notes) "
            "SELECT gen_random_uuid(), o.id, n.first || ' ' || n.last, n.last || ', ' || n.first "
            "|| ' #' || g, n.first, n.last, g || ' ' || (%(streets)s::text[])[1 + g %% 9] "
            "|| ' St, Springfield', lower(n.first || '.' || n.last || g) || '@example.com', "
            "'555-' || lpad((g %% 10000)::text, 4, '0'), "
            "(ARRAY['residential', 'commercial'])[1 + g %% 2], 1 + g %% 5, "
            "(%(days)s::text[])[1 + g %% 7], false, g %% 20 <> 0, now(), now(), 1, 15, "
            "'active', 'Gate code ' || g "
            "FROM generate_series(1, %(customers)s) g, organizations o, "
            "LATERAL (SELECT (%(first)s::text[])[1 + (g * 7 + 3) %% 30] AS first, "
            "(%(last)s::text[])[1 + g %% 40] AS last) n "
            "ORDER BY g, o.id",
            {
                "customers": customers,
                "streets": STREETS,
                "days": DAYS,
                "first": FIRST,
                "last": LAST,
            },
        )
        (customer,) = connection.execute(
            "SELECT id FROM customers WHERE organization_id = %s ORDER BY display_name "
            "OFFSET %s LIMIT 1",
            [bench, customers // 2],
        ).fetchone()
        connection.execute("VACUUM (ANALYZE)")
    return token, str(customer)


class Server:
    """gunicorn serving one database with the code in `code` (the project, or a baseline)."""

    def __init__(self, owner: str, app: str, port: int, workers: int, code: Path):
        env = {
            **os.environ,
            "DATABASE_URL": app,
            "MIGRATION_DATABASE_URL": owner,
            "SECRET_KEY": SECRET,
            "DEBUG": "0",
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "PYTHONPATH": str(code),
        }
        self.port = port
        self.process = subprocess.Popen(
            [
                str(Path(sys.executable).with_name("gunicorn")),
                "routeoptimizer.wsgi:application",
                "--workers",
                str(workers),
                "--bind",
                f"127.0.0.1:{port}",
                "--chdir",
                str(code),
                "--log-level",
                "warning",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            # gunicorn puts the directory it starts in first on sys.path (before PYTHONPATH and
            # --chdir): started from the project, a baseline server imported the project's own
            # code, and the baseline measured the new code a second time.
            cwd=code,
        )
        self.owner = owner
        deadline = time.monotonic() + 60
        while True:
            try:
                status, _ = request(port, "/health", None)
                if status == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise SystemExit(f"gunicorn on port {port} did not start")
            time.sleep(0.3)

    def worker_pids(self) -> list[int]:
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        return [int(pid) for pid in children.read_text().split()]

    def backend_pids(self) -> list[int]:
        with psycopg.connect(self.owner, autocommit=True) as connection:
            return [
                pid
                for (pid,) in connection.execute(
                    "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                    "AND usename = %s",
                    [APPLICATION_ROLE],
                )
            ]

    def stop(self) -> None:
        self.process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=20)
        if self.process.poll() is None:
            self.process.kill()


def cpu_seconds(pids) -> dict[int, float]:
    """utime + stime of each process, in seconds (0 for one that is gone)."""
    times = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            times[pid] = 0.0
            continue
        times[pid] = (int(fields[11]) + int(fields[12])) / TICKS
    return times


def request(port: int, path: str, token: str | None) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def load(server: Server, path: str, token: str, seconds: float, clients: int) -> dict:
    """`clients` threads requesting `path` for `seconds`; throughput, latency and CPU split."""
    for _ in range(5):  # warm the workers, their connections and the caches
        status, body = request(server.port, path, token)
        if status != 200:
            raise SystemExit(f"{path} answered {status}: {body[:300]!r}")
    workers = server.worker_pids()
    backends = server.backend_pids()
    latencies: list[float] = []
    errors: list[int] = []
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds

    def client():
        mine, failed = [], []
        while time.monotonic() < stop_at:
            started = time.perf_counter()
            status, _ = request(server.port, path, token)
            mine.append(time.perf_counter() - started)
            if status != 200:
                failed.append(status)
        with lock:
            latencies.extend(mine)
            errors.extend(failed)

    before_python, before_pg = cpu_seconds(workers), cpu_seconds(backends)
    started = time.monotonic()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    # Backends a worker opened during the run (a reconnect) count from zero.
    backends_after = server.backend_pids()
    after_python = cpu_seconds(workers)
    after_pg = cpu_seconds(backends_after)
    python = sum(after_python[pid] - before_python.get(pid, 0.0) for pid in workers)
    postgres = sum(after_pg[pid] - before_pg.get(pid, 0.0) for pid in backends_after)
    if errors:
        raise SystemExit(
            f"{path}: {len(errors)} of {len(latencies)} requests failed ({set(errors)})"
        )
    return {
        "requests": len(latencies),
        "latencies": latencies,
        "elapsed": elapsed,
        "python_s": python,
        "postgres_s": postgres,
    }


def combine(runs: list[dict]) -> dict:
    """One figure set from several rounds: totals over all of them, latencies pooled."""
    count = sum(run["requests"] for run in runs)
    latencies = sorted(value for run in runs for value in run["latencies"])
    return {
        "rps": count / sum(run["elapsed"] for run in runs),
        "p50": latencies[count // 2] * 1000,
        "p99": latencies[min(count - 1, int(count * 0.99))] * 1000,
        "python": sum(run["python_s"] for run in runs) * 1000 / count,
        "postgres": sum(run["postgres_s"] for run in runs) * 1000 / count,
        "requests": count,
    }


def build(server: str, template: str, name: str, organizations: int, customers: int):
    with psycopg.connect(server, autocommit=True) as connection:
        connection.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(template)
            )
        )
    owner = database_uri(server, name)
    token, customer = seed(owner, organizations, customers)
    return owner, token, customer


def serialization_costs(owner: str, rounds: int = 200) -> tuple[float, float]:
    """CPU ms to serialize a page of 50 customers: DRF's ModelSerializer (the organization by
    a joined slug, as before issue 13) and routing's CustomerSerializer, alternating, in this
    process as the application role."""
    os.environ.update(
        DATABASE_URL=app_uri(owner),
        MIGRATION_DATABASE_URL=owner,
        SECRET_KEY=SECRET,
        DEBUG="0",
        DJANGO_SETTINGS_MODULE="routeoptimizer.settings",
    )
    import django

    django.setup()
    from rest_framework import serializers
    from rest_framework.renderers import JSONRenderer

    from routing.models import Customer
    from routing.serializers import CustomerSerializer
    from tenants.claims import platform_access
    from tenants.context import organization_context
    from tenants.models import Organization

    class DRFCustomerSerializer(serializers.ModelSerializer):
        organization = serializers.SlugRelatedField(slug_field="slug", read_only=True)

        class Meta(CustomerSerializer.Meta):
            pass

    with platform_access():
        organization = Organization.objects.get(slug="bench")
    with organization_context(organization):
        rows = list(
            Customer.objects.select_related("organization").order_by("display_name", "id")[:50]
        )
        drf = JSONRenderer().render(DRFCustomerSerializer(rows, many=True).data)
        if JSONRenderer().render(CustomerSerializer(rows, many=True).data) != drf:
            raise SystemExit("CustomerSerializer's output differs from DRF's")
        spent = {DRFCustomerSerializer: 0.0, CustomerSerializer: 0.0}
        for _ in range(rounds):
            for serializer in spent:
                started = time.process_time()
                serializer(rows, many=True).data  # noqa: B018
                spent[serializer] += time.process_time() - started
    from django.db import connections

    connections.close_all()
    return (
        spent[DRFCustomerSerializer] * 1000 / rounds,
        spent[CustomerSerializer] * 1000 / rounds,
    )


def export_baseline(ref: str) -> Path:
    directory = Path(tempfile.mkdtemp(prefix="ro_bench_baseline_"))
    archive = subprocess.run(
        ["git", "archive", ref], cwd=ROOT, check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(directory)], input=archive, check=True)
    return directory


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server-url", help="libpq URI of the server's maintenance database")
    parser.add_argument("--organizations", type=int, default=200)
    parser.add_argument("--customers", type=int, default=5000, help="per organization")
    parser.add_argument("--seconds", type=float, default=12, help="per endpoint and database")
    parser.add_argument("--rounds", type=int, default=3, help="alternations of the databases")
    parser.add_argument("--clients", type=int, default=2, help="concurrent client threads")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn sync workers")
    parser.add_argument("--baseline-ref", help="also serve the shared database with this git ref")
    parser.add_argument("--keep", action="store_true", help="keep the databases")
    args = parser.parse_args()

    try:
        server, where = choose_server(args.server_url)
    except Exception as error:
        print(f"error: no PostgreSQL server to run on ({error})", file=sys.stderr)
        return 2
    tag = secrets.token_hex(3)
    template, shared, alone = (f"ro_bench_scale_{tag}_{part}" for part in ("t", "shared", "alone"))
    with psycopg.connect(server, autocommit=True) as connection:
        create_login_role(connection, APPLICATION_ROLE)
    servers: list[Server] = []
    baseline = None
    try:
        started = time.monotonic()
        owner_t = create_database(server, template)
        manage(owner_t, app_uri(owner_t), "migrate", "--verbosity", "0")
        manage(
            owner_t,
            app_uri(owner_t),
            "create_organization",
            "--name",
            "Bench",
            "--slug",
            "bench",
            "--owner-email",
            "bench@example.com",
        )
        shared_owner, shared_token, shared_customer = build(
            server, template, shared, args.organizations, args.customers
        )
        alone_owner, alone_token, alone_customer = build(server, template, alone, 1, args.customers)
        built = time.monotonic() - started
        databases = {
            "shared": (shared_owner, shared_token, shared_customer, ROOT),
            "alone": (alone_owner, alone_token, alone_customer, ROOT),
        }
        if args.baseline_ref:
            baseline = export_baseline(args.baseline_ref)
            databases["baseline"] = (shared_owner, shared_token, shared_customer, baseline)
        for port, (owner, *_rest, code) in enumerate(databases.values(), start=18731):
            servers.append(Server(owner, app_uri(owner), port, args.workers, code))
        by_label = dict(zip(databases, servers, strict=True))
        endpoints = {
            "list (page of 50)": "/api/v1/customers/?page_size=50",
            "filter (service_day)": "/api/v1/customers/?service_day=tuesday&page_size=50",
            f"search ({SEARCH_FRAGMENT})": f"/api/v1/customers/?search={SEARCH_FRAGMENT}",
            "detail": "/api/v1/customers/{customer}/",
        }
        results = {}
        for endpoint, path in endpoints.items():
            # Rounds alternate the databases, so the drift of a busy machine hits them alike.
            runs = {label: [] for label in databases}
            for _ in range(args.rounds):
                for label, (_owner, token, customer, _code) in databases.items():
                    runs[label].append(
                        load(
                            by_label[label],
                            path.format(customer=customer),
                            token,
                            args.seconds / args.rounds,
                            args.clients,
                        )
                    )
            for label, measured in runs.items():
                results[(endpoint, label)] = combine(measured)
        for running in servers:
            running.stop()
        servers.clear()
        serialization = serialization_costs(shared_owner)
    finally:
        for running in servers:
            running.stop()
        if baseline is not None:
            shutil.rmtree(baseline, ignore_errors=True)
        if not args.keep:
            for name in (shared, alone, template):
                with contextlib.suppress(Exception):
                    drop_database(server, name)

    total = args.organizations * args.customers
    print(
        f"API at scale ({where}; gunicorn {args.workers} sync workers, {args.clients} clients, "
        f"{args.seconds:g} s per endpoint and database in {args.rounds} alternating rounds; "
        f"databases built in {built:.0f} s)"
    )
    print(
        f"shared: {args.organizations} organizations x {args.customers} customers = {total:,}; "
        f"alone: 1 organization x {args.customers}"
    )
    for key, value in machine_facts(server):
        print(f"  {key}: {value}")
    labels = list(databases)
    header = f"{'endpoint':<22} {'database':<9} {'req/s':>7} {'p50 ms':>7} {'p99 ms':>7} "
    print(header + f"{'Python ms/req':>14} {'PostgreSQL ms/req':>18}")
    for endpoint in endpoints:
        for label in labels:
            r = results[(endpoint, label)]
            print(
                f"{endpoint:<22} {label:<9} {r['rps']:>7.1f} {r['p50']:>7.1f} {r['p99']:>7.1f} "
                f"{r['python']:>14.2f} {r['postgres']:>18.2f}"
            )
        ratio = results[(endpoint, "shared")]["rps"] / results[(endpoint, "alone")]["rps"]
        line = f"{'':<22} shared/alone throughput ratio {ratio:.2f}"
        if "baseline" in labels:
            old = results[(endpoint, "baseline")]
            new = results[(endpoint, "shared")]
            line += (
                f"; Python CPU new/baseline {new['python'] / old['python']:.2f}, "
                f"PostgreSQL {new['postgres'] / max(old['postgres'], 1e-9):.2f}"
            )
        print(line)
    drf_ms, ours_ms = serialization
    print(
        f"serializing a page of 50 customers (CPU, in process): DRF {drf_ms:.2f} ms, "
        f"CustomerSerializer {ours_ms:.2f} ms ({drf_ms / ours_ms:.1f}x cheaper)"
    )
    list_rps = results[("list (page of 50)", "shared")]["rps"]
    search_rps = results[(f"search ({SEARCH_FRAGMENT})", "shared")]["rps"]
    print(f"search vs list page (shared): {list_rps / search_rps:.2f}x the time (goal <= 2)")
    if args.keep:
        print(f"kept: {shared_owner} {alone_owner} {database_uri(server, template)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
