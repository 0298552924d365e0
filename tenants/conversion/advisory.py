"""One `migrate`, `rollback_tenancy` or `contract_tenancy` at a time per database; no silent wait.

- `maintenance_lock`: a session-level PostgreSQL advisory lock (pg_try_advisory_lock on a key
  of this project and the database), taken before the command changes or even reads the
  migration state. A second command waits for it, printing every few seconds which session
  holds it (pid, application name, state, since when, its query), for at most `wait` seconds,
  then stops with one line naming the holder; with `--nowait` it refuses at once. The lock is
  released when the command's session ends, a crash included (PostgreSQL releases a dead
  backend's locks).
- `session_settings`: the command's own statement_timeout (0: a scan on a large table may run
  long, and a role's setting meant for the application must not kill it) and lock_timeout (a
  bound on every lock wait; the short-lock steps set their own 50 ms), whatever the role says.
- `WaitWatcher`: a thread with a connection of its own that looks at the command's backend
  every few seconds and prints, while it waits on a lock (CREATE INDEX CONCURRENTLY waiting for
  an old snapshot included), who blocks it; the last blocker seen names the culprit when the
  wait gives up (`blocker_line`).
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager

import psycopg

# pg_advisory_lock(LOCK_CLASS, hash of the database name): two int4 keys, ours alone.
LOCK_CLASS = 0x524F5554  # 'ROUT'
DEFAULT_LOCK_WAIT = 600.0  # seconds a second command waits for the first
DEFAULT_LOCK_TIMEOUT = "120s"  # session lock_timeout of migrate and rollback_tenancy
PROGRESS_INTERVAL = 5.0

_SESSION_QUERY = """
SELECT a.pid, coalesce(nullif(a.application_name, ''), '(no application name)'), a.state,
       coalesce(a.xact_start, a.query_start, a.backend_start), a.usename,
       left(regexp_replace(coalesce(a.query, ''), '\\s+', ' ', 'g'), 200)
FROM pg_stat_activity a WHERE a.pid = ANY(%s)
"""


class MaintenanceLockBusy(Exception):
    """Another maintenance command holds this database's lock (and we may not wait longer)."""


def describe_sessions(cursor, pids) -> list[str]:
    if not pids:
        return []
    cursor.execute(_SESSION_QUERY, [list(pids)])
    return [
        f"pid {pid} ({application}, {user}, {state}, since {since:%Y-%m-%d %H:%M:%S %Z}): {query}"
        for pid, application, state, since, user, query in cursor.fetchall()
    ]


def _lock_holders(cursor) -> list[int]:
    cursor.execute(
        "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted "
        "AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
        "AND classid = %s::oid AND objid = hashtext(current_database())::oid AND objsubid = 2",
        [LOCK_CLASS],
    )
    return [row[0] for row in cursor.fetchall()]


def application_name(command: str) -> str:
    return f"routeoptimizer {command} (pid {os.getpid()} on {socket.gethostname()})"[:63]


def session_settings(connection, command: str, lock_timeout: str = DEFAULT_LOCK_TIMEOUT) -> None:
    """The command's own timeouts and a name other sessions see in pg_stat_activity."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT set_config('statement_timeout', '0', false), "
            "set_config('lock_timeout', %s, false), "
            "set_config('idle_in_transaction_session_timeout', '0', false), "
            "set_config('application_name', %s, false)",
            [lock_timeout, application_name(command)],
        )


@contextmanager
def maintenance_lock(
    connection,
    command: str,
    *,
    nowait: bool = False,
    wait: float = DEFAULT_LOCK_WAIT,
    progress: Callable[[str], None] = print,
):
    """Hold this database's maintenance lock for the block (see the module doc)."""
    started = time.monotonic()
    reported = 0.0
    with connection.cursor() as cursor:
        while True:
            cursor.execute(
                "SELECT pg_try_advisory_lock(%s, hashtext(current_database()))", [LOCK_CLASS]
            )
            if cursor.fetchone()[0]:
                break
            holders = describe_sessions(cursor, _lock_holders(cursor)) or ["(it just ended)"]
            waited = time.monotonic() - started
            if nowait or waited >= wait:
                how = "--nowait" if nowait else f"waited {waited:.0f} s"
                raise MaintenanceLockBusy(
                    f"another migrate, rollback_tenancy or contract_tenancy holds this "
                    f"database's maintenance lock ({how}): {'; '.join(holders)}; let it finish, "
                    f"or if it is stuck end it with SELECT pg_terminate_backend(<pid>) and run "
                    f"{command} again"
                )
            if waited - reported >= PROGRESS_INTERVAL or reported == 0.0:
                progress(
                    f"  waiting for the maintenance lock ({waited:.0f} s of at most {wait:.0f} s; "
                    f"--nowait refuses instead), held by {'; '.join(holders)}"
                )
                reported = waited or 0.001
            time.sleep(0.2)
    try:
        yield
    finally:
        if connection.connection is not None and not connection.connection.closed:
            try:
                with connection.cursor() as cursor:
                    cursor.execute(
                        "SELECT pg_advisory_unlock(%s, hashtext(current_database()))",
                        [LOCK_CLASS],
                    )
            except Exception:  # the session is gone: PostgreSQL released the lock with it
                pass


class WaitWatcher:
    """Prints, every PROGRESS_INTERVAL seconds, what the command's backend is waiting for."""

    def __init__(self, connection, progress: Callable[[str], None], interval=PROGRESS_INTERVAL):
        self.connection = connection
        self.progress = progress
        self.interval = interval
        self.last_blockers: list[str] = []
        self._stop = threading.Event()
        self._thread = None
        self._dsn = None

    def __enter__(self):
        from routeoptimizer.database import settings_to_uri

        self._dsn = settings_to_uri(self.connection.settings_dict)
        self._thread = threading.Thread(target=self._watch, name="wait-watcher", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)

    def _backend_pid(self):
        raw = self.connection.connection
        try:
            return None if raw is None or raw.closed else raw.info.backend_pid
        except Exception:
            return None

    def _watch(self):
        try:
            watcher = psycopg.connect(self._dsn, autocommit=True, connect_timeout=5)
        except Exception:
            return
        with watcher:
            watcher.execute("SET application_name = 'routeoptimizer wait watcher'")
            waiting_since = None
            while not self._stop.wait(0.5):
                pid = self._backend_pid()
                if pid is None:
                    continue
                try:
                    row = watcher.execute(
                        "SELECT wait_event_type, wait_event, pg_blocking_pids(pid), "
                        "left(regexp_replace(query, '\\s+', ' ', 'g'), 200) "
                        "FROM pg_stat_activity WHERE pid = %s",
                        [pid],
                    ).fetchone()
                except Exception:
                    return
                if not row or row[0] != "Lock" or not row[2]:
                    waiting_since = None
                    continue
                now = time.monotonic()
                if waiting_since is None:
                    waiting_since, reported = now, now
                    with watcher.cursor() as cursor:
                        self.last_blockers = describe_sessions(cursor, row[2])
                    continue
                if now - reported >= self.interval:
                    reported = now
                    with watcher.cursor() as cursor:
                        self.last_blockers = describe_sessions(cursor, row[2])
                    self.progress(
                        f"  waiting {now - waiting_since:.0f} s for a {row[1]} lock ({row[3]}), "
                        f"blocked by {'; '.join(self.last_blockers)}"
                    )

    def blocker_line(self) -> str:
        """Who blocked the last wait: as the watcher saw it, or else the sessions holding locks
        on the schema's tables now (asked on the command's own connection)."""
        blockers = self.last_blockers
        if not blockers:
            try:
                with self.connection.cursor() as cursor:
                    blockers = relation_lock_holders(cursor)
            except Exception:  # the connection is gone too: nothing more to say
                blockers = []
        return f"blocked by {'; '.join(blockers)}" if blockers else ""


def relation_lock_holders(cursor) -> list[str]:
    """Other sessions holding a lock on a table of this schema: who a DDL statement waits for."""
    cursor.execute(
        "SELECT DISTINCT l.pid FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
        "WHERE l.granted AND l.pid <> pg_backend_pid() "
        "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
        "AND c.relnamespace = current_schema()::regnamespace"
    )
    return describe_sessions(cursor, [row[0] for row in cursor.fetchall()])
