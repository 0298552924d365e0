"""backup_database: a verified, timestamped custom-format dump, restore-tested on request."""

import re
import stat
from pathlib import Path

import pytest

from tenants.conversion.backup import CannotBackup, find_pg_tools

DUMP_NAME = re.compile(r"ro_scratch_[0-9a-f]{12}_\d{8}T\d{6}Z\.dump")


@pytest.mark.cli
def test_backup_with_a_passing_restore_test(migrated_db, tmp_path):
    result = migrated_db.manage("backup_database", "--output", f"{tmp_path}/", "--restore-test")

    dumps = list(tmp_path.iterdir())
    assert len(dumps) == 1 and DUMP_NAME.fullmatch(dumps[0].name), dumps
    assert "verified with pg_restore --list" in result.stdout
    assert "restore test passed" in result.stdout
    assert "every count equal to the source's" in result.stdout
    assert "Backup written and verified" in result.stdout
    assert not migrated_db.value(
        "SELECT count(*) FROM pg_database WHERE datname LIKE %s",
        [f"{migrated_db.name}_restore_test_%"],
    ), "the scratch restore database is dropped"


@pytest.mark.cli
def test_default_directory_is_under_the_data_directory(legacy_db, tmp_path):
    legacy_db.manage("backup_database", env={"ROUTEOPTIMIZER_DATA_DIR": str(tmp_path)})

    dumps = list((tmp_path / "backups").iterdir())
    assert len(dumps) == 1 and DUMP_NAME.fullmatch(dumps[0].name), dumps


@pytest.mark.cli
def test_missing_pg_dump_is_reported_in_one_line(legacy_db, tmp_path):
    empty = tmp_path / "no-postgres-here"
    empty.mkdir()
    output = tmp_path / "backups"

    result = legacy_db.manage(
        "backup_database",
        "--output",
        f"{output}/",
        check=False,
        env={"ROUTEOPTIMIZER_PG_BIN": str(empty)},
    )

    assert result.returncode == 2
    assert result.stderr.count("\n") == 1, result.stderr
    assert "no pg_dump of PostgreSQL" in result.stderr
    assert str(empty) in result.stderr
    assert "ROUTEOPTIMIZER_PG_BIN" in result.stderr
    assert not output.exists()


def fake_client(directory: Path, version: str) -> Path:
    directory.mkdir()
    for tool in ("pg_dump", "pg_restore"):
        script = directory / tool
        script.write_text(f"#!/bin/sh\necho '{tool} (PostgreSQL) {version}'\n")
        script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return directory


def test_the_same_major_version_is_preferred_then_the_oldest_newer(tmp_path):
    old = fake_client(tmp_path / "9", "9.6.24")
    v15 = fake_client(tmp_path / "15", "15.20")
    v17 = fake_client(tmp_path / "17", "17.2")
    search = ":".join(map(str, (old, v17, v15)))

    assert find_pg_tools(15, search).directory == v15
    assert find_pg_tools(14, search).directory == v15
    assert find_pg_tools(16, search).directory == v17


def test_only_older_clients_are_refused(tmp_path):
    old = fake_client(tmp_path / "9", "9.6.24")

    with pytest.raises(CannotBackup, match=r"no pg_dump of PostgreSQL 15 or newer .*found: 9 in"):
        find_pg_tools(15, str(old))
