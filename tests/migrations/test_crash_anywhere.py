"""Crash anywhere, recover either way: `migrate` and `rollback_tenancy` killed with SIGKILL.

The kill points are journal rows (tenants.conversion.journal): ROUTEOPTIMIZER_CRASH_AT makes manage.py kill
itself right after writing the row, which is real (a committed step, then nothing: no cleanup,
no exception handler) and deterministic. For every point, the crashed database is forked twice
(CREATE DATABASE ... TEMPLATE) and both recoveries run, side by side:

- killed in `migrate`: re-run `migrate` -> `validate_tenancy` passes and the legacy contents
  equal the pre-migration ones; or change course, `rollback_tenancy` -> the legacy tables hold
  exactly what they held before (billing columns included), nothing else is left;
- killed in `rollback_tenancy`: re-run it -> the same exact legacy state; or change course,
  `migrate` -> `validate_tenancy` passes.

The legacy database is the bundled sample (180 customers, 40 with billing values), prepared
once and forked per point. CI runs CI_POINTS (every kind of step the issue met: before and
after an organization migration's foreign key, the billing move's checkpoints and its
unrecorded end, the geocoding backfill, a composite key half-built, the reverse of the billing
move before its values are back, a half-dropped organization column, the SaaS tables' drop),
12 points, a few minutes per database; ROUTEOPTIMIZER_CRASH_POINTS=all runs every step
boundary the journal defines, in both directions (about ten times longer), all:<substring>
those of them matching it. `pytest -s` prints the table of points x outcomes; a failure
message carries it too.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connections

from routing.legacy import LEGACY_COLUMNS, LEGACY_TABLES
from tests.support import ScratchDatabase

pytestmark = [pytest.mark.cli, pytest.mark.crash]

LEGACY_APP_TABLES = {*LEGACY_TABLES, "alembic_version", "django_migrations"}
KILLED = -9

# (command, journal point): killed right after that row is written (tenants.conversion.journal.point_of).
CI_POINTS = [
    ("migrate", "forward:routing.0001_legacy_schema:start"),
    ("migrate", "forward:routing.0002_customers_organization:step-done:1"),
    ("migrate", "forward:routing.0002_customers_organization:step-done:4"),
    ("migrate", "forward:routing.0006_move_billing_columns:checkpoint:tracking"),
    ("migrate", "forward:routing.0006_move_billing_columns:checkpoint:moved"),
    ("migrate", "forward:routing.0006_move_billing_columns:step-done:1"),
    ("migrate", "forward:routing.0007_customers_geocoding:step-done:3"),
    ("migrate", "forward:routing.0010_organization_foreign_keys:step-done:2"),
    ("rollback_tenancy", "backward:routing.0010_organization_foreign_keys:step-done:3"),
    ("rollback_tenancy", "backward:routing.0006_move_billing_columns:checkpoint:columns-added"),
    ("rollback_tenancy", "backward:routing.0002_customers_organization:step-done:4"),
    ("rollback_tenancy", "backward:billing.0002_customer_service_agreements:start"),
]


def core_contents(db) -> dict[str, list[tuple]]:
    return {
        table: db.contents(table, [column.name for column in LEGACY_COLUMNS[table]])
        for table in LEGACY_TABLES
    }


def legacy_schema(db) -> list[tuple]:
    return [row for row in db.schema_fingerprint() if row[1].split(".")[-1] in LEGACY_TABLES]


class Harness:
    def __init__(self, server_settings):
        self.server_settings = server_settings
        self.created: list[ScratchDatabase] = []

    def database(self, template: ScratchDatabase | None = None) -> ScratchDatabase:
        db = (
            ScratchDatabase(self.server_settings, template=template.name)
            if template
            else ScratchDatabase(self.server_settings)
        )
        self.created.append(db)
        return db

    def release(self, db: ScratchDatabase) -> None:
        db.drop()
        self.created.remove(db)

    def drop_all(self) -> None:
        for db in self.created:
            db.drop()


@pytest.fixture(scope="module")
def harness(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        server = connections["default"].settings_dict
    made = Harness(server)
    yield made
    made.drop_all()


@pytest.fixture(scope="module")
def prepared(harness):
    """The pre-migration legacy database, its contents, and a fully migrated copy of it."""
    legacy = harness.database()
    legacy.load_sample()
    before = {
        "rows": legacy.legacy_contents(),
        "core": core_contents(legacy),
        "schema": legacy_schema(legacy),
    }
    migrated = harness.database(legacy)
    migrated.manage("migrate")
    forward = migrated.sql(
        "SELECT direction, app || '.' || name, event, step, detail FROM tenancy_migration_journal "
        "ORDER BY id"
    )
    return legacy, migrated, before, forward


def all_points(forward_journal) -> list[tuple[str, str]]:
    """Every step boundary of the non-atomic migrations and every checkpoint, both directions,
    plus the start of every migration (inside an atomic one a kill rolls it back whole)."""
    non_atomic = {
        label
        for _d, label, event, _s, detail in forward_journal
        if event == "start" and detail == "non-atomic"
    }
    points = []
    for _direction, label, event, step, detail in forward_journal:
        if event == "start":
            points.append(("migrate", f"forward:{label}:start"))
        elif event == "step-done" and label in non_atomic:
            points.append(("migrate", f"forward:{label}:step-done:{step}"))
            points.append(("rollback_tenancy", f"backward:{label}:step-done:{step}"))
        elif event == "checkpoint":
            points.append(("migrate", f"forward:{label}:checkpoint:{detail}"))
    points.append(
        ("rollback_tenancy", "backward:routing.0006_move_billing_columns:checkpoint:columns-added")
    )
    points.append(
        ("rollback_tenancy", "backward:routing.0006_move_billing_columns:checkpoint:restored-batch")
    )
    return points


def check_migrated(db, before) -> str:
    result = db.manage("validate_tenancy", check=False)
    if result.returncode != 0:
        failed = [line for line in result.stdout.splitlines() if "FAIL" in line]
        return f"validate_tenancy exit {result.returncode}: {' | '.join(failed)[:300]}"
    if core_contents(db) != before["core"]:
        return "legacy contents differ from before migrate"
    return "ok"


def check_rolled_back(db, before) -> str:
    if db.legacy_contents() != before["rows"]:
        return "legacy rows differ from before migrate (billing columns included)"
    if legacy_schema(db) != before["schema"]:
        return "legacy schema differs from before migrate"
    # Killed before adoption, there may be no django_migrations (nor anything recorded) yet.
    if db.tables() - {"django_migrations"} != LEGACY_APP_TABLES - {"django_migrations"}:
        return f"tables left behind: {sorted(db.tables() - LEGACY_APP_TABLES)}"
    if not db.applied_migrations() <= {("routing", "0001_legacy_schema")}:
        return "migrations still recorded"
    return "ok"


def recover(db, command: str, before) -> str:
    args = ("migrate",) if command == "migrate" else ("rollback_tenancy", "--noinput")
    result = db.manage(*args, check=False)
    if result.returncode != 0:
        lines = (result.stderr.strip() or result.stdout.strip()).splitlines()
        return f"{args[0]} exit {result.returncode}: {lines[-1][:300] if lines else ''}"
    return check_migrated(db, before) if command == "migrate" else check_rolled_back(db, before)


def run_point(harness, legacy, migrated, before, command, point) -> tuple[str, str, str]:
    start = harness.database(legacy if command == "migrate" else migrated)
    try:
        args = ("migrate",) if command == "migrate" else ("rollback_tenancy", "--noinput")
        killed = start.manage(*args, check=False, env={"ROUTEOPTIMIZER_CRASH_AT": point})
        if killed.returncode != KILLED:
            tail = (killed.stderr.strip() or killed.stdout.strip()).splitlines()[-1:]
            return f"not killed (exit {killed.returncode}: {tail})", "-", "-"
        again, other = harness.database(start), harness.database(start)
    finally:
        harness.release(start)
    other_command = "rollback_tenancy" if command == "migrate" else "migrate"
    try:
        with ThreadPoolExecutor(max_workers=2) as pool:
            rerun = pool.submit(recover, again, command, before)
            change = pool.submit(recover, other, other_command, before)
            return "killed", rerun.result(), change.result()
    finally:
        harness.release(again)
        harness.release(other)


def test_every_kill_point_recovers_both_ways(harness, prepared):
    legacy, migrated, before, forward = prepared
    wanted = os.environ.get("ROUTEOPTIMIZER_CRASH_POINTS", "")
    if wanted == "all" or wanted.startswith("all:"):  # all:<substring>: those of all points
        points = [item for item in all_points(forward) if wanted[4:] in item[1]]
    else:  # a substring picks some of CI_POINTS (to look at one kind of step)
        points = [(command, point) for command, point in CI_POINTS if wanted in point]
    rows = []
    started = time.monotonic()
    for command, point in points:
        began = time.monotonic()
        kill, rerun, change = run_point(harness, legacy, migrated, before, command, point)
        rows.append((command, point, kill, rerun, change, time.monotonic() - began))
    table = format_table(rows, time.monotonic() - started)
    print("\n" + table)
    failed = [row for row in rows if row[2] != "killed" or row[3] != "ok" or row[4] != "ok"]
    assert not failed, f"{len(failed)} of {len(rows)} kill points did not recover:\n{table}"


def format_table(rows, total: float) -> str:
    header = ("killed in", "at journal point", "kill", "re-run", "change course", "s")
    body = [(c, p, k[:40], r[:70], o[:70], f"{t:.1f}") for c, p, k, r, o, t in rows]
    widths = [max(len(row[i]) for row in [header, *body]) for i in range(len(header))]
    lines = [
        " | ".join(value.ljust(width) for value, width in zip(row, widths, strict=True))
        for row in [header, *body]
    ]
    lines.insert(1, "-+-".join("-" * width for width in widths))
    lines.append(
        f"{len(rows)} points in {total:.0f} s (re-run: the same command again; change course: "
        f"the other one)"
    )
    return "\n".join(lines)
