"""The migration journal: every step of the chain recorded as it happens, in both directions.

Django records a migration in django_migrations only once all of it ran. A non-atomic migration
(most of the chain: each step commits on its own) killed half-way leaves steps committed and no
record, and an interrupted reverse leaves a migration recorded whose steps are partly undone.
The journal tells those states apart:

    tenancy_migration_journal (id, at, pid, command, app, name, direction, step, event, detail)

`migrate` and `rollback_tenancy` write one row when a migration starts (event 'start'), before
and after each of its database steps ('step-start', 'step-done', with the step's number and
description), at checkpoints inside the long steps ('checkpoint', e.g. the billing values being
written back), and when it ends ('done'). Rows written inside an atomic migration are part of
its transaction, so the journal never claims what PostgreSQL rolled back; a non-atomic step's
rows commit at once, before and after it.

What the journal and django_migrations say together (`interrupted()`):

- latest direction forward, not recorded, non-atomic: a half-applied migration; `migrate`
  resumes it (its steps are idempotent), `rollback_tenancy` reverses it before anything older;
- latest direction backward, still recorded, non-atomic: a half-reversed one; `rollback_tenancy`
  re-runs its reverse, `migrate` finishes that reverse first, then applies it again;
- anything else is consistent (an atomic migration is all or nothing).

The table is owner-only bookkeeping, like django_migrations for the owner: the application role
gets no privilege on it; `rollback_tenancy` drops it with the other SaaS tables once the
database is back in the adopted legacy state.

Crash testing: ROUTEOPTIMIZER_CRASH_AT=<point>[,<point>...] makes the process SIGKILL itself
right after writing a journal row whose point (`point_of`) matches, e.g.
`forward:routing.0006_move_billing_columns:step-done:1`; tests/migrations/test_crash_anywhere.py
uses it. ROUTEOPTIMIZER_PAUSE_AT=<checkpoint point>=<file> makes it wait at a checkpoint until
<file> is removed (tests/migrations/test_billing_move.py deletes a customer at that moment).
Unset (always, outside tests), they cost one dictionary lookup per row.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from dataclasses import dataclass

from django.db.migrations.operations.base import Operation
from django.db.migrations.operations.special import SeparateDatabaseAndState
from psycopg import sql

JOURNAL_TABLE = "tenancy_migration_journal"
CRASH_ENVIRONMENT = "ROUTEOPTIMIZER_CRASH_AT"
PAUSE_ENVIRONMENT = "ROUTEOPTIMIZER_PAUSE_AT"
FORWARD, BACKWARD = "forward", "backward"

JOURNAL_DDL = f"""
CREATE TABLE IF NOT EXISTS {JOURNAL_TABLE} (
    id bigserial PRIMARY KEY,
    at timestamptz NOT NULL DEFAULT clock_timestamp(),
    pid integer NOT NULL DEFAULT pg_backend_pid(),
    command text NOT NULL,
    app text NOT NULL,
    name text NOT NULL,
    direction text NOT NULL CHECK (direction IN ('forward', 'backward')),
    step integer,
    event text NOT NULL,
    detail text
);
COMMENT ON TABLE {JOURNAL_TABLE} IS
    'Every step of the tenancy migration chain as it happened (tenants.conversion.journal): '
    'what migrate, '
    'rollback_tenancy and tenancy_preflight read to find a migration a crash interrupted.';
REVOKE ALL ON {JOURNAL_TABLE} FROM PUBLIC;
REVOKE ALL ON SEQUENCE {JOURNAL_TABLE}_id_seq FROM PUBLIC;
"""


def table_exists(connection) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [JOURNAL_TABLE])
        return cursor.fetchone()[0]


def ensure_table(connection) -> None:
    """Create the journal (owner-only) unless it exists; the application role gets nothing."""
    from tenants.roles import application_role_name

    with connection.cursor() as cursor:
        cursor.execute(JOURNAL_DDL)
        cursor.execute(
            "SELECT 1 FROM pg_roles WHERE rolname = %s AND rolname <> current_user",
            [application_role_name()],
        )
        if cursor.fetchone():
            role = sql.Identifier(application_role_name())
            cursor.execute(
                sql.SQL("REVOKE ALL ON {} FROM {}").format(sql.Identifier(JOURNAL_TABLE), role)
            )
            # Its sequence too: the default privileges (tenants.0006) grant every new one.
            cursor.execute(
                sql.SQL("REVOKE ALL ON SEQUENCE {} FROM {}").format(
                    sql.Identifier(f"{JOURNAL_TABLE}_id_seq"), role
                )
            )


def drop_table(connection) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {JOURNAL_TABLE}")


def point_of(direction: str, app: str, name: str, event: str, step=None) -> str:
    point = f"{direction}:{app}.{name}:{event}"
    return point if step is None else f"{point}:{step}"


class Journal:
    """Writes the rows of one command's run (`command`: migrate, rollback_tenancy)."""

    def __init__(self, connection, command: str):
        self.connection = connection
        self.command = command
        crash_at = os.environ.get(CRASH_ENVIRONMENT, "")
        self.crash_points = {point for point in crash_at.split(",") if point}
        self.enabled = True

    def write(self, app, name, direction, event, step=None, detail=None) -> None:
        if not self.enabled:
            return
        with self.connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {JOURNAL_TABLE} (command, app, name, direction, step, event, detail) "
                f"VALUES (%s, %s, %s, %s, %s, %s, %s)",
                [self.command, app, name, direction, step, event, detail],
            )
        if self.crash_points and point_of(direction, app, name, event, step) in self.crash_points:
            _crash()

    def instrument(self, migration, direction: str) -> None:
        """Wrap the migration's database steps so each one is journaled before and after."""
        if getattr(migration, "_journaled", None) is self:
            return
        original = getattr(migration, "_journal_original_operations", None)
        if original is None:
            original = migration._journal_original_operations = list(migration.operations)
        counter = iter(range(1, 10_000))
        migration.operations = [self._wrap(operation, migration, counter) for operation in original]
        migration._journaled = self

    def _wrap(self, operation, migration, counter):
        if isinstance(operation, SeparateDatabaseAndState):
            inner = getattr(operation, "_journal_original_database_operations", None)
            if inner is None:
                inner = operation._journal_original_database_operations = list(
                    operation.database_operations
                )
            operation.database_operations = [
                JournaledStep(step, self, migration, next(counter)) for step in inner
            ]
            return operation
        return JournaledStep(operation, self, migration, next(counter))


def _crash() -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def checkpoint(connection, app: str, name: str, direction: str, label: str, crash=True) -> None:
    """A row inside a long step (its own transaction or the caller's), for resuming and tests:
    crash point `<direction>:<app>.<name>:checkpoint:<label>`."""
    journal = getattr(connection, "tenancy_journal", None)
    if journal is not None:
        journal.write(app, name, direction, "checkpoint", detail=label)
        point = f"{point_of(direction, app, name, 'checkpoint')}:{label}"
        if crash and point in journal.crash_points:
            _crash()
        _pause_if_asked(point)


def _pause_if_asked(point: str) -> None:
    """ROUTEOPTIMIZER_PAUSE_AT=<point>=<file>: at that checkpoint, create <file>.paused and wait
    (at most a minute) until a test removes <file>: another session acts at an exact moment."""
    wanted = os.environ.get(PAUSE_ENVIRONMENT, "")
    if not wanted.startswith(point + "="):
        return
    path = wanted[len(point) + 1 :]
    with open(f"{path}.paused", "w", encoding="utf-8"):
        pass
    deadline = time.monotonic() + 60
    while os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.05)


class JournaledStep(Operation):
    """One database step of a migration, journaled before and after it runs (either way)."""

    def __init__(self, inner, journal: Journal, migration, number: int):
        self.inner = inner
        self.journal = journal
        self.migration = migration
        self.number = number

    # What Django asks of an operation, answered by the wrapped one.
    @property
    def reversible(self):
        return self.inner.reversible

    @property
    def reduces_to_sql(self):
        return self.inner.reduces_to_sql

    @property
    def atomic(self):
        return getattr(self.inner, "atomic", False)

    @property
    def elidable(self):
        return getattr(self.inner, "elidable", False)

    def deconstruct(self):
        return self.inner.deconstruct()

    def state_forwards(self, app_label, state):
        self.inner.state_forwards(app_label, state)

    def _run(self, direction, method, *args):
        migration, journal = self.migration, self.journal
        schema_editor = args[1]
        if getattr(schema_editor.connection, "tenancy_journal", None) is not journal:
            # A wrapper left from an earlier run in this process (operations are shared between
            # loaders): this run journals nothing through it.
            method(*args)
            return
        describe = self.inner.describe()
        journal.write(
            migration.app_label, migration.name, direction, "step-start", self.number, describe
        )
        method(*args)
        journal.write(
            migration.app_label, migration.name, direction, "step-done", self.number, describe
        )

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        self._run(
            FORWARD, self.inner.database_forwards, app_label, schema_editor, from_state, to_state
        )

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        self._run(
            BACKWARD, self.inner.database_backwards, app_label, schema_editor, from_state, to_state
        )

    def describe(self):
        return self.inner.describe()

    def references_model(self, name, app_label):
        return self.inner.references_model(name, app_label)

    def __getattr__(self, attribute):
        inner = self.__dict__.get("inner")
        if inner is None:
            raise AttributeError(attribute)
        return getattr(inner, attribute)


def progress_callback(journal: Journal, then=None):
    """A MigrationExecutor progress callback writing the migration-level rows, then `then`'s."""

    def callback(action, migration=None, fake=False):
        if migration is not None and not fake:
            app, name = migration.app_label, migration.name
            if action == "apply_start":
                journal.instrument(migration, FORWARD)
                journal.write(app, name, FORWARD, "start", detail=_atomic(migration))
            elif action == "apply_success":
                journal.write(app, name, FORWARD, "done")
            elif action == "unapply_start":
                journal.instrument(migration, BACKWARD)
                journal.write(app, name, BACKWARD, "start", detail=_atomic(migration))
            elif action == "unapply_success" and journal.enabled:
                journal.write(app, name, BACKWARD, "done")
        if then is not None:
            then(action, migration, fake)

    return callback


def _atomic(migration) -> str:
    return "atomic" if migration.atomic else "non-atomic"


# --- reading it -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Interrupted:
    app: str
    name: str
    direction: str  # FORWARD: half-applied (not recorded); BACKWARD: half-reversed (recorded)
    event: str
    step: int | None
    detail: str | None
    at: object

    @property
    def key(self) -> tuple[str, str]:
        return (self.app, self.name)

    @property
    def label(self) -> str:
        return f"{self.app}.{self.name}"

    def describe(self) -> str:
        where = f"step {self.step} ({self.detail})" if self.step else (self.detail or self.event)
        when = f"{self.at:%Y-%m-%d %H:%M:%S %Z}"
        if self.direction == FORWARD:
            return (
                f"{self.label} was interrupted while being applied, at {self.event} {where}, "
                f"{when}; it is not recorded: `migrate` resumes it, `rollback_tenancy` reverses it"
            )
        return (
            f"{self.label} was interrupted while being reversed, at {self.event} {where}, {when}; "
            f"it is still recorded: `rollback_tenancy` finishes the reverse, `migrate` finishes "
            f"it too and then applies it again"
        )


def interrupted(connection, loader) -> list[Interrupted]:
    """Migrations a crash left half-applied or half-reversed, newest first (see the module doc).

    `loader`: a MigrationLoader on `connection` (its applied_migrations are django_migrations).
    """
    if not table_exists(connection):
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT DISTINCT ON (app, name) app, name, direction, event, step, detail, at
            FROM {JOURNAL_TABLE} ORDER BY app, name, id DESC
            """
        )
        rows = cursor.fetchall()
    found = []
    for app, name, direction, event, step, detail, at in rows:
        key = (app, name)
        migration = loader.graph.nodes.get(key)
        if migration is None or migration.atomic or event == "done":
            continue
        recorded = key in loader.applied_migrations
        if (direction == FORWARD and not recorded) or (direction == BACKWARD and recorded):
            found.append(Interrupted(app, name, direction, event, step, detail, at))
    return sorted(found, key=lambda item: item.at, reverse=True)


def checkpoint_since_start(connection, app: str, name: str, direction: str, label: str) -> bool:
    """Whether `label` was checkpointed in the latest run of (app, name) in `direction`."""
    if not table_exists(connection):
        return False
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT EXISTS (
                SELECT 1 FROM {JOURNAL_TABLE} j
                WHERE j.app = %s AND j.name = %s AND j.direction = %s AND j.event = 'checkpoint'
                  AND j.detail = %s
                  AND j.id > coalesce((SELECT max(id) FROM {JOURNAL_TABLE}
                                       WHERE app = %s AND name = %s AND event = 'start'
                                         AND direction <> %s), 0))
            """,
            [app, name, direction, label, app, name, direction],
        )
        return cursor.fetchone()[0]
