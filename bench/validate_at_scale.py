"""Time tenancy_preflight, `migrate` and validate_tenancy on a large legacy database.

Usage: python bench/validate_at_scale.py [--customers N] [--server-url URL] [--keep]

A scratch database on the server gets a synthetic legacy database of N customers
(bench/legacy_data.py: N/40 drivers, N/8 routes, 5N route stops); then, each as an operator
runs it (`manage.py` in a subprocess): tenancy_preflight, migrate, validate_tenancy --json.
It prints the wall time of each, validate_tenancy's time per check, and how much the database
grew per legacy row (the figure tenancy_preflight's disk estimate uses). validate_tenancy
must finish in under 60 s at N = 1,000,000.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
if str(PROJECT_DIR) not in sys.path:
    sys.path.insert(0, str(PROJECT_DIR))

import psycopg  # noqa: E402
from psycopg import sql  # noqa: E402
from psycopg.conninfo import conninfo_to_dict, make_conninfo  # noqa: E402

from bench.legacy_data import build_legacy_database  # noqa: E402

TARGET_SECONDS = 60
LEGACY_TABLES = ("customers", "drivers", "routes", "route_stops")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument(
        "--server-url",
        default=os.environ.get("BENCH_SERVER_URL", "postgresql://postgres@127.0.0.1:5432"),
        help="a libpq URI of the server (any database on it); a scratch database is created",
    )
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    options = parser.parse_args(argv)

    server = conninfo_to_dict(options.server_url)
    name = f"ro_bench_validate_{uuid.uuid4().hex[:8]}"
    maintenance = make_conninfo(**{**server, "dbname": "postgres"})
    database_url = make_conninfo(**{**server, "dbname": name})
    with psycopg.connect(maintenance, autocommit=True) as connection:
        version = connection.execute("SHOW server_version").fetchone()[0]
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    print(f"scratch database {name} on PostgreSQL {version}; {os.cpu_count()} CPUs")
    try:
        return run(options.customers, database_url)
    finally:
        if options.keep:
            print(f"kept {name}: {database_url}")
        else:
            with psycopg.connect(maintenance, autocommit=True) as connection:
                connection.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )


def run(customers: int, database_url: str) -> int:
    started = time.perf_counter()
    counts = build_legacy_database(database_url, customers, progress=lambda line: None)
    print(
        f"legacy database built in {time.perf_counter() - started:.0f} s: "
        + ", ".join(f"{counts[table]:,} {table}" for table in LEGACY_TABLES)
    )
    legacy_rows = sum(counts[table] for table in LEGACY_TABLES)
    size_before = database_size(database_url)

    preflight, seconds = manage(database_url, "tenancy_preflight")
    print(f"tenancy_preflight (legacy database): exit {preflight.returncode} in {seconds:.1f} s")
    migrate, seconds = manage(database_url, "migrate")
    if migrate.returncode != 0:
        print(migrate.stdout[-2000:], migrate.stderr[-2000:], sep="\n")
        return 1
    print(f"migrate: {seconds:.1f} s")
    growth = database_size(database_url) - size_before
    print(
        f"database grew by {growth / 2**20:,.0f} MB, {growth / legacy_rows:.0f} bytes per "
        f"legacy row ({size_before / 2**20:,.0f} MB before)"
    )

    validate, seconds = manage(database_url, "validate_tenancy", "--json")
    if validate.returncode == 2:
        print(validate.stderr)
        return 1
    report = json.loads(validate.stdout)
    print(
        f"validate_tenancy: {report['status']} (exit {validate.returncode}) in {seconds:.1f} s "
        f"wall, {report['duration_seconds']:.1f} s in the checks; target under "
        f"{TARGET_SECONDS} s: {'met' if seconds < TARGET_SECONDS else 'MISSED'}"
    )
    for check in report["checks"]:
        print(
            f"  {check['status']}  {check['name']:<36} {check['duration_seconds']:6.1f} s  "
            f"{check['detail'][:90]}"
        )
    fidelity = next(check for check in report["checks"] if check["name"] == "content_fidelity")
    print(
        "  the digest pass per table (paid by row_counts, the first check to need it): "
        + ", ".join(
            f"{table} {figures['seconds']:.1f} s" for table, figures in fidelity["figures"].items()
        )
    )
    return 0 if report["status"] == "pass" and seconds < TARGET_SECONDS else 1


def manage(database_url: str, *args: str) -> tuple[subprocess.CompletedProcess, float]:
    environment = {
        **os.environ,
        "DATABASE_URL": libpq_to_uri(database_url),
        "DJANGO_SETTINGS_MODULE": "routeoptimizer.settings",
        "SECRET_KEY": os.environ.get("SECRET_KEY", "bench-only-secret-key"),
    }
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, str(PROJECT_DIR / "manage.py"), *args],
        cwd=PROJECT_DIR,
        env=environment,
        capture_output=True,
        text=True,
    )
    return result, time.perf_counter() - started


def libpq_to_uri(conninfo: str) -> str:
    from urllib.parse import quote

    params = conninfo_to_dict(conninfo)
    user = quote(params.get("user", ""), safe="")
    password = f":{quote(params['password'], safe='')}" if params.get("password") else ""
    credentials = f"{user}{password}@" if user else ""
    host, port = params.get("host", ""), params.get("port", "")
    if host.startswith("/"):
        query = f"?host={quote(host, safe='/')}" + (f"&port={port}" if port else "")
        return f"postgresql://{credentials}/{params['dbname']}{query}"
    return f"postgresql://{credentials}{host}{':' + port if port else ''}/{params['dbname']}"


def database_size(database_url: str) -> int:
    with psycopg.connect(database_url) as connection:
        return connection.execute("SELECT pg_database_size(current_database())").fetchone()[0]


if __name__ == "__main__":
    sys.exit(main())
