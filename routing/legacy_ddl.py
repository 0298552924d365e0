"""The legacy single-tenant DDL (routing/legacy_schema.sql) in its production variants."""

import re
from pathlib import Path

LEGACY_SCHEMA_PATH = Path(__file__).with_name("legacy_schema.sql")

_BILLING_MARKER = "-- billing columns added by the bad migration"
_ALEMBIC_TABLE = "CREATE TABLE alembic_version ("
_TABLE_END = ");"
# A column line's trailing comma, possibly followed by an inline comment.
_TRAILING_COMMA = re.compile(r",(\s*(?:--.*)?)$")


def legacy_ddl(*, billing_columns: bool = True, alembic_version: bool = True) -> str:
    """Return the legacy DDL, optionally without the billing columns or alembic_version.

    Databases created before the billing migration lack the eight billing columns of
    ``customers``; some test setups want the tables without Alembic's bookkeeping table.
    """
    lines = LEGACY_SCHEMA_PATH.read_text(encoding="utf-8").splitlines(keepends=True)
    if not billing_columns:
        lines = _without_billing_columns(lines)
    if not alembic_version:
        lines = _without_alembic_version(lines)
    return "".join(lines)


def _index_of(lines: list[str], predicate_text: str, start: int = 0) -> int:
    for index in range(start, len(lines)):
        if lines[index].strip().startswith(predicate_text):
            return index
    # Fail loudly: a silently unchanged DDL would hide an edit to legacy_schema.sql.
    raise ValueError(f"{LEGACY_SCHEMA_PATH.name}: no line starting with {predicate_text!r}")


def _without_billing_columns(lines: list[str]) -> list[str]:
    first = _index_of(lines, _BILLING_MARKER)
    end = _index_of(lines, _TABLE_END, first)
    last_column = lines[first - 1]
    fixed, count = _TRAILING_COMMA.subn(r"\1", last_column.rstrip("\n"))
    if count != 1:
        raise ValueError(f"{LEGACY_SCHEMA_PATH.name}: no trailing comma on {last_column!r}")
    return [*lines[: first - 1], fixed.rstrip() + "\n", *lines[end:]]


def _without_alembic_version(lines: list[str]) -> list[str]:
    first = _index_of(lines, _ALEMBIC_TABLE)
    end = _index_of(lines, _TABLE_END, first) + 1
    # Drop the blank separator line too, so no double blank line remains.
    if end < len(lines) and not lines[end].strip():
        end += 1
    return [*lines[:first], *lines[end:]]
