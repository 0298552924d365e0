"""The legacy schema contract: what `migrate` checks, column by column, before it adopts a database.

The legacy tables are those of legacy_schema.sql as production has them: created by Alembic,
with or without the eight billing columns of plan step M001. Extra indexes and column comments
are not part of the contract; names, types and nullability of columns are.
"""

from __future__ import annotations

from dataclasses import dataclass, field

LEGACY_TABLES = ("drivers", "customers", "routes", "route_stops")

VARCHAR = "character varying"
TIMESTAMP = "timestamp without time zone"
TIME = "time without time zone"
FLOAT = "double precision"


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    nullable: bool

    def describe(self) -> str:
        return f"{self.type} {'NULL' if self.nullable else 'NOT NULL'}"


def _columns(*specs: tuple[str, str, bool]) -> tuple[Column, ...]:
    return tuple(Column(*spec) for spec in specs)


NULL, NOT_NULL = True, False

LEGACY_COLUMNS: dict[str, tuple[Column, ...]] = {
    "drivers": _columns(
        ("id", "uuid", NOT_NULL),
        ("name", f"{VARCHAR}(200)", NOT_NULL),
        ("email", f"{VARCHAR}(255)", NULL),
        ("phone", f"{VARCHAR}(20)", NULL),
        ("start_location_address", f"{VARCHAR}(500)", NOT_NULL),
        ("start_latitude", FLOAT, NULL),
        ("start_longitude", FLOAT, NULL),
        ("end_location_address", f"{VARCHAR}(500)", NOT_NULL),
        ("end_latitude", FLOAT, NULL),
        ("end_longitude", FLOAT, NULL),
        ("working_hours_start", TIME, NOT_NULL),
        ("working_hours_end", TIME, NOT_NULL),
        ("max_customers_per_day", "integer", NOT_NULL),
        ("is_active", "boolean", NOT_NULL),
        ("notes", f"{VARCHAR}(1000)", NULL),
        ("created_at", TIMESTAMP, NOT_NULL),
        ("updated_at", TIMESTAMP, NOT_NULL),
        ("color", f"{VARCHAR}(7)", NOT_NULL),
    ),
    "customers": _columns(
        ("id", "uuid", NOT_NULL),
        ("name", f"{VARCHAR}(200)", NULL),
        ("address", f"{VARCHAR}(500)", NOT_NULL),
        ("latitude", FLOAT, NULL),
        ("longitude", FLOAT, NULL),
        ("service_type", f"{VARCHAR}(20)", NOT_NULL),
        ("difficulty", "integer", NOT_NULL),
        ("service_day", f"{VARCHAR}(20)", NOT_NULL),
        ("locked", "boolean", NOT_NULL),
        ("time_window_start", TIME, NULL),
        ("time_window_end", TIME, NULL),
        ("notes", f"{VARCHAR}(1000)", NULL),
        ("is_active", "boolean", NOT_NULL),
        ("created_at", TIMESTAMP, NOT_NULL),
        ("updated_at", TIMESTAMP, NOT_NULL),
        ("service_days_per_week", "integer", NOT_NULL),
        ("service_schedule", f"{VARCHAR}(50)", NULL),
        ("assigned_driver_id", "uuid", NULL),
        ("visit_duration", "integer", NOT_NULL),
        ("first_name", f"{VARCHAR}(100)", NULL),
        ("last_name", f"{VARCHAR}(100)", NULL),
        ("display_name", f"{VARCHAR}(200)", NOT_NULL),
        ("email", f"{VARCHAR}(255)", NULL),
        ("phone", f"{VARCHAR}(20)", NULL),
        ("alt_email", f"{VARCHAR}(255)", NULL),
        ("alt_phone", f"{VARCHAR}(20)", NULL),
        ("invoice_email", f"{VARCHAR}(255)", NULL),
        ("management_company", f"{VARCHAR}(200)", NULL),
        ("status", f"{VARCHAR}(20)", NOT_NULL),
    ),
    "routes": _columns(
        ("id", "uuid", NOT_NULL),
        ("driver_id", "uuid", NOT_NULL),
        ("service_day", f"{VARCHAR}(20)", NOT_NULL),
        ("total_duration_minutes", "integer", NULL),
        ("total_distance_miles", FLOAT, NULL),
        ("total_customers", "integer", NULL),
        ("optimization_algorithm", f"{VARCHAR}(100)", NULL),
        ("optimization_score", FLOAT, NULL),
        ("created_at", TIMESTAMP, NOT_NULL),
        ("updated_at", TIMESTAMP, NOT_NULL),
    ),
    "route_stops": _columns(
        ("id", "uuid", NOT_NULL),
        ("route_id", "uuid", NOT_NULL),
        ("customer_id", "uuid", NOT_NULL),
        ("sequence", "integer", NOT_NULL),
        ("estimated_arrival_time", TIME, NULL),
        ("estimated_service_duration", "integer", NULL),
        ("estimated_drive_time_from_previous", "integer", NULL),
        ("estimated_distance_from_previous", FLOAT, NULL),
        ("created_at", TIMESTAMP, NOT_NULL),
    ),
}

# The "bad" billing migration's columns on customers: all eight present, or none.
BILLING_COLUMNS: tuple[Column, ...] = _columns(
    ("service_rate", "numeric(10,2)", NULL),
    ("billing_frequency", f"{VARCHAR}(20)", NULL),
    ("rate_notes", f"{VARCHAR}(500)", NULL),
    ("payment_method_type", f"{VARCHAR}(20)", NULL),
    ("stripe_customer_id", f"{VARCHAR}(100)", NULL),
    ("stripe_payment_method_id", f"{VARCHAR}(100)", NULL),
    ("payment_last_four", f"{VARCHAR}(4)", NULL),
    ("payment_brand", f"{VARCHAR}(50)", NULL),
)
BILLING_COLUMN_NAMES = tuple(column.name for column in BILLING_COLUMNS)


def legacy_column_names(table: str, *, billing: bool) -> list[str]:
    """The contract's columns of `table`, plus the eight billing columns on customers."""
    columns = [column.name for column in LEGACY_COLUMNS[table]]
    if table == "customers" and billing:
        columns += BILLING_COLUMN_NAMES
    return columns


def has_billing_columns(cursor) -> bool:
    """Whether customers (in the current schema) has the billing columns of plan step M001."""
    cursor.execute(
        "SELECT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = 'customers'::regclass "
        "AND attnum > 0 AND NOT attisdropped AND attname = ANY(%s))",
        [list(BILLING_COLUMN_NAMES)],
    )
    return cursor.fetchone()[0]


@dataclass(frozen=True)
class Difference:
    table: str
    column: str | None
    expected: str
    found: str

    def describe(self) -> str:
        where = f"{self.table}.{self.column}" if self.column else self.table
        return f"{where}: expected {self.expected}, found {self.found}"


@dataclass
class LegacySchemaReport:
    """What the database holds of the legacy schema, and how it differs from the contract."""

    present_tables: list[str]
    has_billing_columns: bool = False
    differences: list[Difference] = field(default_factory=list)
    row_counts: dict[str, int] = field(default_factory=dict)
    alembic_revision: str | None = None

    @property
    def is_empty(self) -> bool:
        return not self.present_tables

    @property
    def is_adoptable(self) -> bool:
        return bool(self.present_tables) and not self.differences

    def summary(self) -> str:
        counts = ", ".join(
            f"{self.row_counts[t]} {t}" for t in LEGACY_TABLES if t in self.row_counts
        )
        billing = "with" if self.has_billing_columns else "without"
        revision = f"Alembic revision {self.alembic_revision}, " if self.alembic_revision else ""
        return f"{counts} ({revision}{billing} the billing columns)"

    def error_message(self) -> str:
        lines = [
            f"the legacy schema does not match ({len(self.differences)} difference"
            f"{'s' if len(self.differences) != 1 else ''}); nothing was changed. Fix the database "
            f"to match legacy_schema.sql, or point DATABASE_URL at the right database:"
        ]
        lines += [f"  - {difference.describe()}" for difference in self.differences]
        return "\n".join(lines)


def inspect_legacy_schema(cursor, *, count_rows: bool = False) -> LegacySchemaReport:
    """Compare the legacy tables in the current schema with the contract, column by column."""
    cursor.execute(
        """
        SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), NOT a.attnotnull
        FROM pg_class c
        JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
        WHERE c.relnamespace = current_schema()::regnamespace
          AND c.relkind IN ('r', 'p') AND c.relname = ANY(%s)
        ORDER BY c.relname, a.attnum
        """,
        [list(LEGACY_TABLES)],
    )
    found: dict[str, dict[str, Column]] = {}
    for table, name, type_, nullable in cursor.fetchall():
        found.setdefault(table, {})[name] = Column(name, type_, nullable)

    report = LegacySchemaReport(present_tables=[t for t in LEGACY_TABLES if t in found])
    if report.is_empty:
        return report

    for table in LEGACY_TABLES:
        if table not in found:
            report.differences.append(Difference(table, None, "table present", "no such table"))
            continue
        expected = list(LEGACY_COLUMNS[table])
        if table == "customers":
            billing_present = [c.name for c in BILLING_COLUMNS if c.name in found[table]]
            report.has_billing_columns = bool(billing_present)
            if billing_present:
                # Some but not all of the eight is a hand-edited table: report the missing ones.
                expected += BILLING_COLUMNS
        report.differences += _column_differences(table, expected, found[table])

    if count_rows and not report.differences:
        for table in LEGACY_TABLES:
            cursor.execute(f'SELECT count(*) FROM "{table}"')
            report.row_counts[table] = cursor.fetchone()[0]
        report.alembic_revision = alembic_revision(cursor)
    return report


def alembic_revision(cursor) -> str | None:
    """The legacy application's Alembic revision(s) in this schema, comma-separated; None
    without an alembic_version table."""
    cursor.execute("SELECT to_regclass('alembic_version') IS NOT NULL")
    if not cursor.fetchone()[0]:
        return None
    cursor.execute("SELECT string_agg(version_num, ',') FROM alembic_version")
    return cursor.fetchone()[0]


def _column_differences(
    table: str, expected: list[Column], found: dict[str, Column]
) -> list[Difference]:
    differences = []
    for column in expected:
        actual = found.get(column.name)
        if actual is None:
            differences.append(Difference(table, column.name, column.describe(), "no such column"))
        elif (actual.type, actual.nullable) != (column.type, column.nullable):
            differences.append(Difference(table, column.name, column.describe(), actual.describe()))
    expected_names = {column.name for column in expected}
    for name, actual in found.items():
        if name not in expected_names:
            differences.append(Difference(table, name, "no such column", actual.describe()))
    return differences
