"""Benchmark import_organization: a large legacy database into a busy shared database.

    python bench/import_at_scale.py [--customers N] [--other-customers M] [--server-url URL]

Builds (bench/legacy_data.py) a legacy source of N customers (default 200,000; N/40 drivers, N/8
routes, 5N route stops, billing values on 10%) and a shared database: a legacy database of M
customers (default N/4) migrated with `manage.py migrate`, so its organization `demo` is
another organization with real data. A second connection then serves requests for `demo`
(each one transaction: a page of 50 customers of one service day, its count, and an update of
one customer, as the API's list and PATCH run them) for IDLE_SECONDS before the import, and
throughout `manage.py import_organization --from <source> --slug bench ...`. Prints, side by
side: the import's rows per second and total time, and `demo`'s request latency (p50, p99,
max) idle against during the import. Exit 0 when the targets are met (>= 100,000 rows/s, p99
during <= 2x idle), 1 otherwise.

Beside the import it prints its ceiling, measured in the same run on the same databases: the
same rows (organization set, geocoding metadata written) streamed with COPY straight from the
source into the shared tables, with every index they have and none of the import's checks,
staging, billing move or proof, then rolled back. No import that keeps those tables' indexes can
write faster on one connection; the ratio import/ceiling says how much of the time is the
import's own work. `--ceiling-only` prints only that.
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
if str(PROJECT_DIR) not in sys.path:
    sys.path.insert(0, str(PROJECT_DIR))

import psycopg  # noqa: E402

from bench.legacy_data import build_legacy_database  # noqa: E402
from bench.migrate_at_scale import (  # noqa: E402
    choose_server,
    create_database,
    drop_database,
    machine_facts,
    settle,
)

DEFAULT_CUSTOMERS = 200_000
IDLE_SECONDS = 10.0
REQUEST_INTERVAL = 0.010
TARGET_ROWS_PER_SECOND = 100_000
TARGET_P99_RATIO = 2.0
DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday")


class Requests(threading.Thread):
    """The other organization's traffic: one transaction per request, latencies recorded."""

    def __init__(self, conninfo: str) -> None:
        super().__init__(daemon=True)
        self.conninfo = conninfo
        self.latencies: list[float] = []
        self.failures: list[str] = []
        self.recording = threading.Event()
        self.stopping = threading.Event()

    def run(self) -> None:
        with psycopg.connect(self.conninfo, autocommit=True) as connection:
            organization, ids = self._setup(connection)
            sequence = 0
            while not self.stopping.is_set():
                sequence += 1
                day = DAYS[sequence % len(DAYS)]
                begun = time.perf_counter()
                try:
                    with connection.transaction():
                        connection.execute(
                            "SELECT id, display_name, address, service_day, status FROM customers "
                            "WHERE organization_id = %s AND service_day = %s "
                            "ORDER BY display_name, id LIMIT 50",
                            [organization, day],
                        ).fetchall()
                        connection.execute(
                            "SELECT count(*) FROM customers WHERE organization_id = %s "
                            "AND service_day = %s",
                            [organization, day],
                        ).fetchone()
                        connection.execute(
                            "UPDATE customers SET notes = %s, updated_at = now() "
                            "WHERE organization_id = %s AND id = %s",
                            [f"bench {sequence}", organization, ids[sequence % len(ids)]],
                        )
                except psycopg.Error as error:
                    self.failures.append(" ".join(str(error).split()))
                elapsed = time.perf_counter() - begun
                if self.recording.is_set():
                    self.latencies.append(elapsed)
                time.sleep(REQUEST_INTERVAL)

    @staticmethod
    def _setup(connection):
        organization = connection.execute(
            "SELECT id FROM organizations WHERE slug = 'demo'"
        ).fetchone()[0]
        ids = [
            row[0]
            for row in connection.execute(
                "SELECT id FROM customers WHERE organization_id = %s LIMIT 1000", [organization]
            )
        ]
        return organization, ids

    def measure(self, seconds: float | None = None, until: threading.Event | None = None):
        self.latencies = []
        self.recording.set()
        if until is not None:
            until.wait()
        else:
            time.sleep(seconds)
        self.recording.clear()
        return list(self.latencies)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def copy_ceiling(source: str, shared: str) -> tuple[float, dict[str, float], float]:
    """Seconds to COPY every legacy row of `source` into `shared`'s tables as a new organization
    would hold them, per table, and the WAL it wrote (MB); rolled back, nothing kept.

    As the import's fast path: per-row foreign key triggers skipped (session_replication_role =
    replica, so a superuser's or the owner's connection), every index maintained."""
    import uuid

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "routeoptimizer.settings")
    os.environ.setdefault("DATABASE_URL", shared)
    import django

    django.setup()
    from psycopg import sql

    from geocoding.metadata import COORDINATES, backfilled_values
    from routing.legacy import LEGACY_COLUMNS
    from tenants.conversion.legacy_rows import WRITE_ORDER

    organization = sql.Literal(str(uuid.uuid4()))
    per_table = {}
    with psycopg.connect(source) as reader, psycopg.connect(shared) as writer:
        reader.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        writer.execute("SET session_replication_role = replica")
        wal_before = writer.execute("SELECT pg_current_wal_insert_lsn()").fetchone()[0]
        begun = time.perf_counter()
        for table in WRITE_ORDER:
            names = [column.name for column in LEGACY_COLUMNS[table]]
            target = [sql.Identifier(name) for name in names] + [sql.Identifier("organization_id")]
            selected = [sql.Identifier("s", name) for name in names] + [
                sql.SQL("{}::uuid").format(organization)
            ]
            if table in COORDINATES:
                for column, value in backfilled_values(table, "s"):
                    target.append(sql.Identifier(column))
                    selected.append(value)
            started = time.perf_counter()
            with (
                reader.cursor().copy(
                    sql.SQL("COPY (SELECT {} FROM {} AS s) TO STDOUT (FORMAT binary)").format(
                        sql.SQL(", ").join(selected), sql.Identifier(table)
                    )
                ) as out,
                writer.cursor().copy(
                    sql.SQL("COPY {} ({}) FROM STDIN (FORMAT binary)").format(
                        sql.Identifier(table), sql.SQL(", ").join(target)
                    )
                ) as into,
            ):
                for chunk in out:
                    into.write(chunk)
            per_table[table] = time.perf_counter() - started
        seconds = time.perf_counter() - begun
        wal = writer.execute(
            "SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), %s) / 1e6", [wal_before]
        ).fetchone()[0]
        writer.rollback()
        reader.rollback()
    return seconds, per_table, float(wal)


def manage(database: str, *args: str) -> subprocess.CompletedProcess:
    environment = {
        **os.environ,
        "DATABASE_URL": database,
        "DJANGO_SETTINGS_MODULE": "routeoptimizer.settings",
        "DEBUG": "1",
        "PYTHONUNBUFFERED": "1",
        "EMAIL_URL": "dummymail://",
    }
    return subprocess.run(
        [sys.executable, str(PROJECT_DIR / "manage.py"), *args],
        cwd=PROJECT_DIR,
        env=environment,
        capture_output=True,
        text=True,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=DEFAULT_CUSTOMERS)
    parser.add_argument("--other-customers", type=int, help="default: customers / 4")
    parser.add_argument("--server-url", help="libpq URI of the server's maintenance database")
    parser.add_argument("--keep", action="store_true", help="keep both databases")
    parser.add_argument(
        "--ceiling-only", action="store_true", help="measure only the COPY ceiling, no import"
    )
    options = parser.parse_args()
    other = options.other_customers or max(1, options.customers // 4)
    server, where = choose_server(options.server_url)
    print(f"Server: {where}")
    for name, value in machine_facts(server):
        print(f"  {name}: {value}")

    suffix = secrets.token_hex(4)
    source_name, shared_name = f"ro_bench_{suffix}_source", f"ro_bench_{suffix}_shared"
    source, shared = create_database(server, source_name), create_database(server, shared_name)
    try:
        print(f"Building the source: {options.customers:,} customers ...")
        counts = build_legacy_database(source, options.customers, progress=lambda _: None)
        print(f"Building the shared database: {other:,} customers, migrated ...")
        build_legacy_database(shared, other, progress=lambda _: None)
        migrated = manage(shared, "migrate")
        if migrated.returncode:
            print(migrated.stdout, migrated.stderr)
            return 1
        settle(source)
        settle(shared)
        rows = sum(count for table, count in counts.items() if table != "alembic_version")

        print(
            f"Measuring the ceiling: {rows:,} rows COPYed into the shared tables, rolled back ..."
        )
        ceiling, per_table, wal = copy_ceiling(source, shared)
        settle(shared)
        print(
            "  | "
            + ", ".join(f"{table} {seconds:.1f}s" for table, seconds in per_table.items())
            + f"; {wal:,.0f} MB of WAL"
        )
        if options.ceiling_only:
            print(f"ceiling: {rows / ceiling:,.0f} rows/s ({ceiling:.1f}s)")
            return 0

        requests = Requests(shared)
        requests.start()
        time.sleep(1.0)  # connected and warm
        print(f"Measuring demo's requests idle for {IDLE_SECONDS:.0f}s ...")
        idle = requests.measure(IDLE_SECONDS)

        done = threading.Event()
        outcome: dict = {}

        def run_import():
            begun = time.perf_counter()
            outcome["result"] = manage(
                shared,
                "import_organization",
                "--from",
                source,
                "--slug",
                "bench",
                "--name",
                "Bench",
                "--owner-email",
                "owner@bench.example",
            )
            outcome["seconds"] = time.perf_counter() - begun
            done.set()

        print(f"Importing {rows:,} rows while demo's requests go on ...")
        importer = threading.Thread(target=run_import)
        importer.start()
        during = requests.measure(until=done)
        importer.join()
        requests.stopping.set()
        requests.join()
        result = outcome["result"]
        if result.returncode:
            print(result.stdout, result.stderr)
            return 1
        for line in result.stdout.splitlines():
            if line.startswith("  ") and not line.startswith("  reading"):
                print(f"  | {line.strip()}")
        own = re.search(r"in ([0-9:]+) \(([0-9,]+) rows/s\)", result.stdout)
        total = outcome["seconds"]
        rate = rows / total

        print()
        print(f"N = {options.customers:,} customers ({rows:,} rows), shared: {other:,} in demo")
        print(f"{'figure':<34} {'idle':>12} {'during import':>14}   target")
        print(f"{'import: rows per second':<34} {'':>12} {rate:>14,.0f}   >= 100,000")
        print(f"{'import: total time (manage.py)':<34} {'':>12} {total:>13.1f}s")
        if own:
            print(f"{'import: as the command reports':<34} {'':>12} {own.group(2):>14}   rows/s")
        print(
            f"{'ceiling: COPY into the same tables':<34} {'':>12} {rows / ceiling:>14,.0f}   "
            f"rows/s ({ceiling:.1f}s; the import takes {total / ceiling:.2f}x)"
        )
        for label, fraction in (("p50", 0.50), ("p99", 0.99)):
            a, b = percentile(idle, fraction), percentile(during, fraction)
            target = "<= 2x idle" if label == "p99" else ""
            print(
                f"{'demo request latency ' + label:<34} {a * 1000:>10.1f}ms "
                f"{b * 1000:>12.1f}ms   {target}"
            )
        print(
            f"{'demo request latency max':<34} {max(idle) * 1000:>10.1f}ms "
            f"{max(during) * 1000:>12.1f}ms"
        )
        print(
            f"{'demo requests (failed)':<34} {len(idle):>12} {len(during):>14}   "
            f"({len(requests.failures)} failed)"
        )
        print(
            f"{'demo request mean':<34} {statistics.mean(idle) * 1000:>10.1f}ms "
            f"{statistics.mean(during) * 1000:>12.1f}ms"
        )
        ratio = percentile(during, 0.99) / percentile(idle, 0.99)
        met = rate >= TARGET_ROWS_PER_SECOND and ratio <= TARGET_P99_RATIO and not requests.failures
        print(f"p99 ratio {ratio:.2f}; targets {'met' if met else 'missed'}")
        return 0 if met else 1
    finally:
        if options.keep:
            print(f"kept: {source}\n      {shared}")
        else:
            drop_database(server, source_name)
            drop_database(server, shared_name)


if __name__ == "__main__":
    sys.exit(main())
