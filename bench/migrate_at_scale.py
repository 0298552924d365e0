"""Measure `manage.py migrate` on a large legacy database while the old application keeps writing.

Usage: python bench/migrate_at_scale.py [--customers N] [--server-url URL] [--keep]

Two scratch databases get the same synthetic legacy data (bench/legacy_data.py). On A the
project's own `migrate` runs; on B the migration plan's M006-M009 run as the plan writes them
(one transaction per table: ADD COLUMN, UPDATE, SET NOT NULL, FOREIGN KEY, CREATE INDEX). On
both, a writer that behaves like the old application inserts a customer and a route stop every
10 ms and times each insert. The script prints what it measured: nothing here is estimated.
See bench/README.md for what each figure means.
"""

from __future__ import annotations

import argparse
import codecs
import contextlib
import datetime as dt
import math
import os
import platform
import re
import secrets
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

# Run as a plain script (`python bench/migrate_at_scale.py`), so the project root is not on
# sys.path by itself; it is found relative to this file, wherever the checkout lives.
PROJECT_DIR = Path(__file__).resolve().parent.parent
if str(PROJECT_DIR) not in sys.path:
    sys.path.insert(0, str(PROJECT_DIR))

import environ  # noqa: E402
import psycopg  # noqa: E402
from psycopg import sql  # noqa: E402

from bench.legacy_data import build_legacy_database  # noqa: E402
from routeoptimizer.database import (  # noqa: E402
    POSTGRES_SCHEMES,
    DatabaseConfigurationError,
    embedded_server,
)

DEFAULT_CUSTOMERS = 1_000_000
# tenants.models.DEFAULT_ORGANIZATION_SLUG; not imported, because that needs Django set up.
DEFAULT_ORGANIZATION_SLUG = "demo"
WRITE_INTERVAL = 0.010  # seconds between the old application's writes
MONITOR_INTERVAL = 0.050  # seconds between polls for what blocks the writer
# Server settings that move the figures; printed with the machine facts.
REPORTED_SETTINGS = (
    "shared_buffers",
    "max_wal_size",
    "synchronous_commit",
    "maintenance_work_mem",
    "max_parallel_maintenance_workers",
    "autovacuum",
)
# The targets the project must meet, defined at N = 1,000,000 on 2 cores.
TARGET_CUSTOMERS = 1_000_000
TARGET_LONGEST_STALL = 1.0
AIM_LONGEST_STALL = 0.100
TARGET_MIGRATE_SECONDS = 60.0
# Our migrations for plan steps M006-M009 (docs/migration-chain.md), to compare like with like.
OUR_M006_M009 = (
    "routing.0002_customers_organization",
    "routing.0003_drivers_organization",
    "routing.0004_routes_organization",
    "routing.0005_route_stops_organization",
)
PLAN_TABLES = ("customers", "drivers", "routes", "route_stops")  # M006, M007, M008, M009
# The plan's M006-M009 pattern, verbatim in SQL, with the plan's constraint and index names.
PLAN_STEPS = (
    ("add column", "ALTER TABLE {table} ADD COLUMN organization_id uuid NULL"),
    (
        "update",
        "UPDATE {table} SET organization_id = (SELECT id FROM organizations WHERE slug = "
        "{slug}) WHERE organization_id IS NULL",
    ),
    ("set not null", "ALTER TABLE {table} ALTER COLUMN organization_id SET NOT NULL"),
    (
        "foreign key",
        "ALTER TABLE {table} ADD CONSTRAINT {foreign_key} FOREIGN KEY (organization_id) "
        "REFERENCES organizations (id)",
    ),
    ("index", "CREATE INDEX {index} ON {table} (organization_id)"),
)

# What the old application sends: every legacy column it knows, never organization_id. The
# optional billing columns are left out: they are not in every legacy variant, and M001 drops
# them by design.
CUSTOMER_INSERT = """
INSERT INTO customers (id, name, address, latitude, longitude, service_type, difficulty,
    service_day, locked, time_window_start, time_window_end, notes, is_active, created_at,
    updated_at, service_days_per_week, service_schedule, assigned_driver_id, visit_duration,
    first_name, last_name, display_name, email, phone, alt_email, alt_phone, invoice_email,
    management_company, status)
VALUES (%(id)s, %(name)s, %(address)s, 34.05, -118.25, 'residential', 2, 'monday', false,
    NULL, NULL, %(notes)s, true, %(now)s, %(now)s, 1, NULL, %(driver_id)s, 15, 'Bench',
    'Writer', %(name)s, %(email)s, '(310) 555-0100', NULL, NULL, NULL, NULL, 'active')
"""
ROUTE_STOP_INSERT = """
INSERT INTO route_stops (id, route_id, customer_id, sequence, estimated_arrival_time,
    estimated_service_duration, estimated_drive_time_from_previous,
    estimated_distance_from_previous, created_at)
VALUES (%(id)s, %(route_id)s, %(customer_id)s, %(sequence)s, NULL, 15, NULL, NULL, %(now)s)
"""

# Lines `migrate --verbosity 2` prints that say nothing about the migrations' progress.
MIGRATE_NOISE = re.compile(
    r"^(Running (pre|post)-migrate handlers|Adding (content type|permission)|"
    r"Synchroniz|\s+Creating tables|\s+Running deferred SQL|\s*$)"
)
# Django writes "  Applying app.name..." and flushes, runs the migration (which may print its
# own lines), then writes " OK (0.123s)\n"; the timing is there from verbosity 2 on.
APPLYING = re.compile(r"Applying (?P<name>[\w.]+)\.\.\.")
APPLIED = re.compile(r" (?P<outcome>OK|FAKED)(?: \((?P<seconds>\d+\.\d+)s\))?\n")
APPLIED_AT_END = re.compile(r" (OK|FAKED)(?: \(\d+\.\d+s\))?$")


@dataclass(frozen=True, slots=True)
class Write:
    """One insert the old application attempted, with how long it waited."""

    table: str
    started: float  # time.monotonic()
    latency: float  # seconds: the stall the old application's user would see
    error: str | None


@dataclass
class Blocker:
    """A transaction seen blocking the writer: what it held, what it ran, how long it blocked."""

    pid: int
    first_seen: float  # time.monotonic()
    longest_wait: float  # seconds: the longest the writer was seen waiting on it
    lock: str  # e.g. "route_stops: AccessExclusiveLock"
    statements: list[str] = field(default_factory=list)  # in the order they were seen


@dataclass
class Phase:
    """A timed part of a run: one migration of ours, or one table of the plan."""

    name: str
    started: float  # time.monotonic()
    finished: float | None = None
    reported_seconds: float | None = None  # Django's own figure, when it printed one
    steps: list[tuple[str, float]] = field(default_factory=list)

    @property
    def seconds(self) -> float | None:
        if self.reported_seconds is not None:
            return self.reported_seconds
        return None if self.finished is None else self.finished - self.started


@dataclass
class RowCheck:
    """Whether the rows the writer wrote are there, in the default organization."""

    written: int
    present: int
    in_default_organization: int | None  # None: the database cannot say yet (reason says why)
    reason: str | None = None

    @property
    def all_in_default_organization(self) -> bool:
        return self.in_default_organization is not None and (
            self.present == self.written == self.in_default_organization
        )


@dataclass
class RunReport:
    """Everything measured in one run (ours or the plan's)."""

    label: str
    total_seconds: float
    succeeded: bool
    phases: list[Phase]
    writes: list[Write]
    blockers: list[Blocker]
    rows: RowCheck
    failure: str | None = None

    @property
    def latencies(self) -> list[float]:
        return sorted(write.latency for write in self.writes)

    @property
    def longest_stall(self) -> float | None:
        return max((write.latency for write in self.writes), default=None)

    def percentile(self, fraction: float) -> float | None:
        return percentile(self.latencies, fraction)

    @property
    def failed_writes(self) -> list[Write]:
        return [write for write in self.writes if write.error is not None]

    def phase_seconds(self, names: Iterable[str]) -> float | None:
        """Sum of the named phases' times; None unless every one of them ran."""
        by_name = {phase.name: phase.seconds for phase in self.phases}
        total = 0.0
        for name in names:
            value = by_name.get(name)
            if value is None:
                return None
            total += value
        return total


def percentile(ordered: Sequence[float], fraction: float) -> float | None:
    """Nearest-rank percentile of already sorted values (None for no values)."""
    if not ordered:
        return None
    return ordered[max(1, math.ceil(len(ordered) * fraction)) - 1]


class LegacyWriter(threading.Thread):
    """The old application: one customer and one route stop every WRITE_INTERVAL, timed.

    It has its own autocommit connection, writes legacy columns only and never stops on an
    error: a failed write is counted (it is a failure of the migration design) and the next
    tick writes again, over a new connection if the old one broke.
    """

    def __init__(self, conninfo: str, interval: float = WRITE_INTERVAL) -> None:
        super().__init__(name="legacy-writer", daemon=True)
        self.conninfo = conninfo
        self.interval = interval
        self.writes: list[Write] = []
        self.customer_ids: list[uuid.UUID] = []
        self.route_stop_ids: list[uuid.UUID] = []
        self.backend_pid: int | None = None
        self.ready = threading.Event()
        self._stop_requested = threading.Event()
        self._connection: psycopg.Connection | None = None
        # Parents the new rows point at, read before the clock starts.
        with psycopg.connect(conninfo, autocommit=True) as connection:
            self.route_ids = _ids(connection, "routes")
            self.driver_ids = _ids(connection, "drivers")
            self.customer_fallback_ids = _ids(connection, "customers")

    def stop(self) -> None:
        """Ask for the loop to end and wait for the write in flight to finish."""
        self._stop_requested.set()
        self.join()
        if self._connection is not None:
            self._connection.close()

    def run(self) -> None:
        next_tick = time.monotonic()
        sequence = 0
        while not self._stop_requested.is_set():
            delay = next_tick - time.monotonic()
            if delay > 0 and self._stop_requested.wait(delay):
                break
            self._write_pair(sequence)
            self.ready.set()
            sequence += 1
            # After a stall the old application does not burst to catch up: its users waited
            # once, they do not queue one request every 10 ms behind the lock.
            next_tick = max(next_tick + self.interval, time.monotonic())

    def _write_pair(self, sequence: int) -> None:
        now = dt.datetime.now(dt.UTC).replace(tzinfo=None)  # legacy timestamps: naive UTC
        customer_id = uuid.uuid4()
        customer = {
            "id": customer_id,
            "name": f"Bench Writer {sequence}",
            "address": f"{1 + sequence % 9999} Main St, Los Angeles, CA 90012",
            "notes": "Written by the old application during the migration",
            "now": now,
            "driver_id": self.driver_ids[sequence % len(self.driver_ids)],
            "email": f"bench.writer.{sequence}@example.com",
        }
        if self._insert("customers", CUSTOMER_INSERT, customer):
            self.customer_ids.append(customer_id)
        else:
            # The stop still needs a customer that exists: an old one.
            customer_id = self.customer_fallback_ids[sequence % len(self.customer_fallback_ids)]
        stop_id = uuid.uuid4()
        stop = {
            "id": stop_id,
            "route_id": self.route_ids[sequence % len(self.route_ids)],
            "customer_id": customer_id,
            "sequence": 100 + sequence,
            "now": now,
        }
        if self._insert("route_stops", ROUTE_STOP_INSERT, stop):
            self.route_stop_ids.append(stop_id)

    def _insert(self, table: str, query: str, params: dict[str, object]) -> bool:
        started = time.monotonic()
        error = None
        try:
            self._connect().execute(query, params)
        except Exception as exception:  # every failure is a figure, none ends the writer
            first_line = next(iter(str(exception).splitlines()), "")
            error = f"{type(exception).__name__}: {first_line}"
            if self._connection is not None and self._connection.broken:
                self._connection = None
        self.writes.append(Write(table, started, time.monotonic() - started, error))
        return error is None

    def _connect(self) -> psycopg.Connection:
        if self._connection is None or self._connection.closed:
            self._connection = psycopg.connect(self.conninfo, autocommit=True)
            self.backend_pid = self._connection.info.backend_pid
        return self._connection


class BlockerMonitor(threading.Thread):
    """Polls which transaction blocks the writer, so a long stall can be pinned on a statement.

    A blocking transaction is followed by its backend pid and start time; the statements it
    runs while the writer waits are all kept, since the one that took the lock (an ALTER
    TABLE, say) may be over by the time a later one (the UPDATE) is seen.
    """

    QUERY = """
        SELECT blocker.pid, blocker.xact_start, blocker.query,
               extract(epoch FROM clock_timestamp() - waiter.query_start)::float8,
               coalesce(wanted.relation::regclass::text, wanted.locktype),
               (SELECT string_agg(DISTINCT held.mode
                                  || CASE WHEN held.granted THEN '' ELSE ' (queued)' END, ', ')
                FROM pg_locks held
                WHERE held.pid = blocker.pid AND held.locktype = wanted.locktype
                  AND held.relation IS NOT DISTINCT FROM wanted.relation
                  AND held.transactionid IS NOT DISTINCT FROM wanted.transactionid)
        FROM pg_stat_activity waiter
        JOIN pg_locks wanted ON wanted.pid = waiter.pid AND NOT wanted.granted
        JOIN pg_stat_activity blocker ON blocker.pid = ANY (pg_blocking_pids(waiter.pid))
        WHERE waiter.pid = %s
    """

    def __init__(self, conninfo: str, writer: LegacyWriter) -> None:
        super().__init__(name="blocker-monitor", daemon=True)
        self.conninfo = conninfo
        self.writer = writer
        self.blockers: dict[tuple[int, object], Blocker] = {}
        self._stop_requested = threading.Event()

    def stop(self) -> list[Blocker]:
        """Stop polling; the blockers seen, the longest wait first."""
        self._stop_requested.set()
        self.join()
        return sorted(self.blockers.values(), key=lambda blocker: -blocker.longest_wait)

    def run(self) -> None:
        try:
            with psycopg.connect(self.conninfo, autocommit=True) as connection:
                while not self._stop_requested.wait(MONITOR_INTERVAL):
                    pid = self.writer.backend_pid
                    if pid is None:
                        continue
                    for row in connection.execute(self.QUERY, [pid]).fetchall():
                        self._record(*row)
        except psycopg.Error as error:
            # Diagnostics only: losing the monitor must not lose the measurement.
            print(f"  (blocker monitor stopped: {error})", flush=True)

    def _record(
        self,
        pid: int,
        transaction_start: object,
        query: str | None,
        waited: float | None,
        relation: str | None,
        modes: str | None,
    ) -> None:
        blocker = self.blockers.setdefault(
            (pid, transaction_start),
            Blocker(pid, time.monotonic(), 0.0, f"{relation}: {modes or 'lock queue'}"),
        )
        blocker.longest_wait = max(blocker.longest_wait, waited or 0.0)
        statement = " ".join((query or "").split())[:240]
        if statement not in blocker.statements:
            blocker.statements.append(statement)


class MigrateOutput:
    """Follows `migrate --verbosity 2` output as it streams: which migration runs, how long."""

    def __init__(self, echo: Callable[[str], None]) -> None:
        self.echo = echo
        self.text = ""
        self.phases: list[Phase] = []
        self._position = 0  # where the search for the next event starts
        self._echoed = 0  # how much of `text` has been echoed, by whole lines

    def feed(self, chunk: str) -> None:
        now = time.monotonic()
        self.text += chunk
        while True:
            current = self.phases[-1] if self.phases else None
            if current is None or current.finished is not None:
                match = APPLYING.search(self.text, self._position)
                if match is None:
                    break
                self.phases.append(Phase(match["name"], started=now))
                self.echo(f"{match['name']} ...")
            else:
                match = APPLIED.search(self.text, self._position)
                if match is None:
                    break
                current.finished = now
                if match["seconds"] is not None:
                    current.reported_seconds = float(match["seconds"])
                self.echo(f"{current.name} {match['outcome']} ({seconds(current.seconds)})")
            self._position = match.end()
        self._echo_other_lines()

    def _echo_other_lines(self) -> None:
        """Echo what migrate printed besides the progress lines echoed as events."""
        end = self.text.rfind("\n") + 1
        for line in self.text[self._echoed : end].splitlines():
            rest = APPLIED_AT_END.sub("", APPLYING.sub("", line))
            if rest.strip() and not MIGRATE_NOISE.match(rest):
                self.echo(rest.rstrip())
        self._echoed = max(self._echoed, end)


def _ids(connection: psycopg.Connection, table: str, limit: int = 1000) -> list[uuid.UUID]:
    query = sql.SQL("SELECT id FROM {} LIMIT {}").format(sql.Identifier(table), limit)
    ids = [row[0] for row in connection.execute(query)]
    if not ids:
        raise RuntimeError(f"{table} is empty: the writer has no parent rows to point at")
    return ids


def database_uri(server_uri: str, name: str) -> str:
    """The URI of database `name` on the server `server_uri` points at."""
    return urlunsplit(urlsplit(server_uri)._replace(path="/" + quote(name, safe="")))


def choose_server(server_url: str | None) -> tuple[str, str]:
    """The server's maintenance-database URI, and where the choice came from."""
    if server_url:
        if urlsplit(server_url).scheme not in POSTGRES_SCHEMES:
            raise SystemExit(
                f"--server-url must be a PostgreSQL URI (postgresql://user@host:port/postgres), "
                f"got {server_url!r}"
            )
        return server_url, "--server-url"
    # The same environment settings.py reads: the process environment, then .env.
    environ.Env.read_env(PROJECT_DIR / ".env", overwrite=False)
    env = environ.Env()
    database_url = env("DATABASE_URL", default="")
    if database_url:
        return database_uri(database_url, "postgres"), "DATABASE_URL's server"
    data_dir = Path(env("ROUTEOPTIMIZER_DATA_DIR", default=str(PROJECT_DIR / ".data"))).resolve()
    return embedded_server(data_dir).get_uri("postgres"), f"embedded PostgreSQL in {data_dir}"


def machine_facts(server_uri: str) -> list[tuple[str, str]]:
    """Cores, memory and the PostgreSQL server's version and main settings."""
    cores = os.cpu_count() or 0
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cores
    memory = "unknown"
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        kilobytes = int(meminfo.read_text().split("MemTotal:")[1].split()[0])
        memory = f"{kilobytes / 1024 / 1024:.1f} GiB"
    with psycopg.connect(server_uri, autocommit=True) as connection:
        version = connection.execute("SELECT version()").fetchone()[0]
        settings = connection.execute(
            "SELECT string_agg(name || '=' || current_setting(name), ', ' ORDER BY name) "
            "FROM pg_settings WHERE name = ANY (%s)",
            [list(REPORTED_SETTINGS)],
        ).fetchone()[0]
    host = urlsplit(server_uri).hostname or "local socket"
    return [
        ("client cores", f"{cores} ({usable} usable by this process)"),
        ("memory", memory),
        # Other work on the machine skews every figure; the load says how much there was.
        ("load average", " ".join(f"{load:.2f}" for load in os.getloadavg())),
        ("platform", platform.platform()),
        ("python", platform.python_version()),
        ("postgresql", version),
        ("server", host),
        ("server settings", settings),
    ]


def create_database(server_uri: str, name: str) -> str:
    with psycopg.connect(server_uri, autocommit=True) as connection:
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return database_uri(server_uri, name)


def drop_database(server_uri: str, name: str) -> None:
    with psycopg.connect(server_uri, autocommit=True) as connection:
        connection.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def settle(database: str) -> None:
    """VACUUM ANALYZE and CHECKPOINT after the bulk load, outside the measured time.

    A production database has a visibility map and no backlog of dirty pages; without this the
    measured runs would also pay for vacuuming and flushing the freshly loaded tables.
    """
    with psycopg.connect(database, autocommit=True) as connection:
        connection.execute("VACUUM (ANALYZE)")
        # CHECKPOINT needs superuser or pg_checkpoint; without it the figures only get noisier.
        with contextlib.suppress(psycopg.errors.InsufficientPrivilege):
            connection.execute("CHECKPOINT")


def start_writer(database: str) -> tuple[LegacyWriter, BlockerMonitor]:
    """Start the writer and its monitor; return once the first writes went through."""
    writer = LegacyWriter(database)
    monitor = BlockerMonitor(database, writer)
    writer.start()
    monitor.start()
    writer.ready.wait(timeout=30)
    return writer, monitor


def run_our_migrate(database: str) -> RunReport:
    """`manage.py migrate` on `database` while the old application writes."""
    environment = {
        **os.environ,
        "DATABASE_URL": database,
        "DJANGO_SETTINGS_MODULE": "routeoptimizer.settings",
        "DEBUG": "1",
        "PYTHONUNBUFFERED": "1",  # so lines arrive as they are written, to time them
    }
    # --verbosity 2 makes migrate print Django's own "(0.123s)" per migration, which excludes
    # pipe and start-up delays; the streamed timestamps are kept for attributing stalls.
    command = [sys.executable, str(PROJECT_DIR / "manage.py"), "migrate", "--verbosity", "2"]
    print(f"  $ DATABASE_URL={database} DEBUG=1 {' '.join(command[1:])}", flush=True)
    writer, monitor = start_writer(database)
    output = MigrateOutput(echo=lambda line: print(f"  | {line}", flush=True))
    started = time.monotonic()
    process = subprocess.Popen(
        command,
        cwd=PROJECT_DIR,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    stderr_chunks: list[bytes] = []
    stderr_reader = threading.Thread(
        target=lambda: stderr_chunks.extend(iter(lambda: process.stderr.read(4096), b"")),
        daemon=True,
    )
    stderr_reader.start()
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    try:
        while chunk := os.read(process.stdout.fileno(), 4096):
            output.feed(decoder.decode(chunk))
        output.feed(decoder.decode(b"", final=True) + "\n")
        returncode = process.wait()
    except BaseException:
        process.kill()
        writer.stop()
        monitor.stop()
        raise
    total = time.monotonic() - started
    writer.stop()
    blockers = monitor.stop()
    stderr_reader.join()
    failure = None
    if returncode != 0:
        stderr = b"".join(stderr_chunks).decode("utf-8", errors="replace").strip().splitlines()
        failure = f"migrate exited {returncode}: " + " / ".join(stderr[-5:])
    return RunReport(
        label="ours",
        total_seconds=total,
        succeeded=returncode == 0,
        phases=output.phases,
        writes=writer.writes,
        blockers=blockers,
        rows=check_written_rows(database, writer),
        failure=failure,
    )


def run_plan_sequence(database: str) -> RunReport:
    """The plan's M006-M009, one transaction per table, while the old application writes."""
    with psycopg.connect(database, autocommit=True) as connection:
        # What the plan's M002/M005 would have left: organizations with the default row.
        # Created before the clock starts: only M006-M009 are compared.
        connection.execute(
            "CREATE TABLE organizations (id uuid PRIMARY KEY, slug varchar(100) NOT NULL UNIQUE)"
        )
        connection.execute(
            "INSERT INTO organizations VALUES (gen_random_uuid(), %s)", [DEFAULT_ORGANIZATION_SLUG]
        )
    writer, monitor = start_writer(database)
    phases: list[Phase] = []
    failure = None
    started = time.monotonic()
    try:
        with psycopg.connect(database, autocommit=True) as connection:
            for table in PLAN_TABLES:
                phase = Phase(f"{table} (one transaction)", started=time.monotonic())
                phases.append(phase)
                print(f"  | {table} ...", flush=True)
                with connection.transaction():
                    for step, template in PLAN_STEPS:
                        step_started = time.monotonic()
                        connection.execute(
                            sql.SQL(template).format(
                                table=sql.Identifier(table),
                                slug=sql.Literal(DEFAULT_ORGANIZATION_SLUG),
                                foreign_key=sql.Identifier(f"fk_{table}_organization"),
                                index=sql.Identifier(f"idx_{table}_org"),
                            )
                        )
                        phase.steps.append((step, time.monotonic() - step_started))
                phase.finished = time.monotonic()
                print(f"  | {table} OK ({phase.seconds:.3f}s)", flush=True)
    except psycopg.Error as error:
        failure = f"plan sequence failed: {error}"
    total = time.monotonic() - started
    writer.stop()
    blockers = monitor.stop()
    return RunReport(
        label="plan",
        total_seconds=total,
        succeeded=failure is None,
        phases=phases,
        writes=writer.writes,
        blockers=blockers,
        rows=check_written_rows(database, writer),
        failure=failure,
    )


def check_written_rows(database: str, writer: LegacyWriter) -> RowCheck:
    """Count the writer's rows that are present, and those in the default organization."""
    written = {"customers": writer.customer_ids, "route_stops": writer.route_stop_ids}
    total = sum(len(ids) for ids in written.values())
    present = 0
    in_default: int | None = 0
    reason = None
    with psycopg.connect(database, autocommit=True) as connection:
        organization = None
        if connection.execute("SELECT to_regclass('organizations')").fetchone()[0]:
            organization = connection.execute(
                "SELECT id FROM organizations WHERE slug = %s", [DEFAULT_ORGANIZATION_SLUG]
            ).fetchone()
        if organization is None:
            in_default, reason = None, f"no organization with slug {DEFAULT_ORGANIZATION_SLUG!r}"
        for table, ids in written.items():
            present += connection.execute(
                sql.SQL("SELECT count(*) FROM {} WHERE id = ANY (%s)").format(
                    sql.Identifier(table)
                ),
                [ids],
            ).fetchone()[0]
            if in_default is None:
                continue
            has_column = connection.execute(
                "SELECT count(*) FROM information_schema.columns WHERE table_schema = "
                "current_schema() AND table_name = %s AND column_name = 'organization_id'",
                [table],
            ).fetchone()[0]
            if not has_column:
                in_default, reason = None, f"{table} has no organization_id column"
                continue
            in_default += connection.execute(
                sql.SQL(
                    "SELECT count(*) FROM {} WHERE id = ANY (%s) AND organization_id = %s"
                ).format(sql.Identifier(table)),
                [ids, organization[0]],
            ).fetchone()[0]
    return RowCheck(total, present, in_default, reason)


def seconds(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f} s"


def ratio(plan: float | None, ours: float | None) -> str:
    if plan is None or ours is None:
        return "n/a"
    if ours == 0:
        return "n/a" if plan == 0 else "∞"
    return f"{plan / ours:,.1f}x"


def longest_begun_during(writes: Sequence[Write], phase: Phase) -> float | None:
    """The longest write begun while `phase` ran: what `phase` made the old application wait."""
    end = phase.finished if phase.finished is not None else float("inf")
    return max((w.latency for w in writes if phase.started <= w.started < end), default=None)


def print_run(report: RunReport, title: str) -> None:
    print(f"\n== {title} ==")
    status = "" if report.succeeded else f"  FAILED: {report.failure}"
    print(f"total time                 {seconds(report.total_seconds)}{status}")
    width = max((len(phase.name) for phase in report.phases), default=10)
    print(f"per {'migration' if report.label == 'ours' else 'table'} (as applied)")
    print(f"  {'':{width}}  {'time':>10}  {'longest stall begun in it':>26}")
    for phase in report.phases:
        stall = longest_begun_during(report.writes, phase)
        print(f"  {phase.name:{width}}  {seconds(phase.seconds):>10}  {seconds(stall):>26}")
        for step, step_seconds in phase.steps:
            print(f"  {'  ' + step:{width}}  {seconds(step_seconds):>10}")
    failed = report.failed_writes
    tables = Counter(write.table for write in report.writes)
    print(
        f"writes made                {len(report.writes):,} "
        f"({tables['customers']:,} customers, {tables['route_stops']:,} route stops), "
        f"one pair every {WRITE_INTERVAL * 1000:.0f} ms"
    )
    print(f"failed writes              {len(failed):,}")
    for error, count in Counter(write.error for write in failed).most_common(5):
        print(f"  {count:,} x {error}")
    print(
        f"writer stalls              longest {seconds(report.longest_stall)}, "
        f"p50 {seconds(report.percentile(0.50))}, p99 {seconds(report.percentile(0.99))}"
    )
    rows = report.rows
    in_default = (
        f"{rows.in_default_organization:,}"
        if rows.in_default_organization is not None
        else f"cannot tell ({rows.reason})"
    )
    verdict = "yes" if rows.all_in_default_organization else "NO"
    print(
        f"written rows present        {rows.present:,} of {rows.written:,}; in the default "
        f"organization: {in_default}  -> all present and in '{DEFAULT_ORGANIZATION_SLUG}': "
        f"{verdict}"
    )
    if report.blockers:
        print(
            f"transactions seen blocking the writer (polled every {MONITOR_INTERVAL * 1000:.0f}"
            " ms, longest wait first)"
        )
        for blocker in report.blockers[:8]:
            during = next(
                (
                    phase.name
                    for phase in reversed(report.phases)
                    if phase.started <= blocker.first_seen
                ),
                "before the first migration",
            )
            print(f"  {seconds(blocker.longest_wait):>9}  during {during}, holding {blocker.lock}")
            for statement in blocker.statements:
                print(f"  {'':9}    {statement}")


def print_comparison(ours: RunReport, plan: RunReport) -> None:
    ours_m006_m009 = ours.phase_seconds(OUR_M006_M009)
    rows = [
        ("total time", ours.total_seconds, plan.total_seconds, seconds),
        ("M006-M009 time", ours_m006_m009, plan.total_seconds, seconds),
        ("longest writer stall", ours.longest_stall, plan.longest_stall, seconds),
        ("p99 writer stall", ours.percentile(0.99), plan.percentile(0.99), seconds),
        ("failed writes", len(ours.failed_writes), len(plan.failed_writes), lambda v: f"{v:,}"),
    ]
    print("\n== ours vs plan ==")
    if not ours.succeeded:
        print("  our migrate FAILED: its figures cover only what ran before the failure")
    print(f"{'':22}  {'ours (migrate)':>16}  {'plan (M006-M009)':>18}  {'plan / ours':>12}")
    for name, ours_value, plan_value, show in rows:
        print(
            f"{name:22}  {show(ours_value):>16}  {show(plan_value):>18}  "
            f"{ratio(plan_value, ours_value):>12}"
        )
    print(
        "  ours' total time is the whole `migrate` (every app, Django start-up included); "
        "M006-M009 time is routing.0002-0005 alone."
    )


def print_targets(ours: RunReport, customers: int) -> bool:
    """Print each target with the measured figure; True when all are met."""
    longest = ours.longest_stall
    checks = [
        (
            f"longest writer stall < {TARGET_LONGEST_STALL:.0f} s "
            f"(aim {AIM_LONGEST_STALL * 1000:.0f} ms)",
            seconds(longest),
            longest is not None and longest < TARGET_LONGEST_STALL,
        ),
        (
            f"total migrate < {TARGET_MIGRATE_SECONDS:.0f} s",
            seconds(ours.total_seconds),
            ours.succeeded and ours.total_seconds < TARGET_MIGRATE_SECONDS,
        ),
        (
            "every written row present in the default organization",
            f"{ours.rows.in_default_organization} of {ours.rows.written}",
            ours.rows.all_in_default_organization,
        ),
        ("no failed legacy write", f"{len(ours.failed_writes)}", not ours.failed_writes),
    ]
    note = "" if customers == TARGET_CUSTOMERS else f"; this run used N={customers:,}"
    print(f"\n== targets (defined at N={TARGET_CUSTOMERS:,} on 2 cores{note}) ==")
    for name, measured, met in checks:
        print(f"  {'met ' if met else 'MISS'}  {name}: {measured}")
    if longest is not None and longest >= AIM_LONGEST_STALL:
        print(f"  note  longest stall is above the {AIM_LONGEST_STALL * 1000:.0f} ms aim")
    return all(met for _name, _measured, met in checks)


def parse_arguments(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Measure `manage.py migrate` against the plan's M006-M009 on a large legacy "
        "database while the old application keeps writing."
    )
    parser.add_argument(
        "--customers",
        type=int,
        default=DEFAULT_CUSTOMERS,
        help=f"legacy customers (default {DEFAULT_CUSTOMERS:,}); drivers N/40, routes N/8, "
        "route stops 5N, 10%% with billing values",
    )
    parser.add_argument(
        "--server-url",
        help="libpq URI of the server's maintenance database, e.g. "
        "postgresql://postgres@127.0.0.1:5432/postgres (default: DATABASE_URL's server, "
        "else the embedded PostgreSQL)",
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the two scratch databases for inspection"
    )
    arguments = parser.parse_args(argv)
    if arguments.customers < 40:
        parser.error("--customers must be at least 40 (one driver per 40 customers)")
    return arguments


def main(argv: Sequence[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    try:
        server, source = choose_server(arguments.server_url)
    except DatabaseConfigurationError as error:
        print(f"no PostgreSQL server to benchmark on: {error}")
        return 2
    try:
        facts = machine_facts(server)
    except psycopg.OperationalError as error:
        print(f"cannot connect to {server} ({source}): {str(error).strip().splitlines()[0]}")
        return 2
    customers = arguments.customers
    print(f"RouteOptimizer migration benchmark: N={customers:,} customers on {source}")
    for name, value in facts:
        print(f"  {name:16} {value}")

    prefix = f"ro_bench_{secrets.token_hex(4)}"
    names = {"A": f"{prefix}_a", "B": f"{prefix}_b"}
    created: list[str] = []
    try:
        databases = {}
        for label, name in names.items():
            databases[label] = create_database(server, name)
            created.append(name)
            print(f"\n== building legacy database {label} ({name}) ==", flush=True)
            build_started = time.monotonic()
            counts = build_legacy_database(
                databases[label],
                customers,
                billing_columns=True,
                billing_share=0.10,
                progress=lambda message: print(f"  {message}", flush=True),
            )
            settle(databases[label])
            print(
                f"  rows: {', '.join(f'{table} {count:,}' for table, count in counts.items())}; "
                f"ready in {time.monotonic() - build_started:.1f}s (vacuumed, analysed)",
                flush=True,
            )

        print(f"\n== A: python manage.py migrate on {names['A']} ==", flush=True)
        ours = run_our_migrate(databases["A"])
        print_run(ours, f"ours: manage.py migrate, N={customers:,}")

        print(f"\n== B: the plan's M006-M009 on {names['B']} ==", flush=True)
        plan = run_plan_sequence(databases["B"])
        print_run(plan, f"plan: M006-M009 as written, N={customers:,}")

        print_comparison(ours, plan)
        print("\n== machine ==")
        for name, value in facts:
            print(f"  {name:16} {value}")
        met = print_targets(ours, customers)
    finally:
        if arguments.keep:
            for name in created:
                print(f"kept {database_uri(server, name)}")
        else:
            for name in created:
                drop_database(server, name)
            if created:
                print(f"dropped {', '.join(created)}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
