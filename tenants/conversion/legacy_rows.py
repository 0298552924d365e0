"""One organization's rows in the legacy shape: what import_organization proves and
export_organization writes.

An imported organization keeps its source's ids, except those that clashed with rows already in
the shared database (`import_organization --remap-ids`): those got new ids, recorded in
tenancy_import_id_map (organization, table, source id, imported id). organization_legacy_rows()
gives the organization's rows of a legacy table with every id and reference mapped back to the
source's, in the legacy columns (the contract of routing.legacy), and on customers the eight
billing values rebuilt from the billing tables (billing.legacy.reconstruct_sql) when wanted.
Digests are tenants.conversion.snapshot's: the same 64-bit row hash, summed, over the same row text.
"""

from __future__ import annotations

from psycopg import sql

from billing.legacy import any_billing_value, reconstruct_sql
from routing.legacy import BILLING_COLUMN_NAMES, LEGACY_TABLES, legacy_column_names
from tenants.conversion.snapshot import checksum_expression, digest_expression

IMPORTS_TABLE = "tenancy_imports"
ID_MAP_TABLE = "tenancy_import_id_map"

# Per legacy table: its uuid columns and the table whose ids they hold (its own id included).
ID_REFERENCES: dict[str, dict[str, str]] = {
    "drivers": {"id": "drivers"},
    "customers": {"id": "customers", "assigned_driver_id": "drivers"},
    "routes": {"id": "routes", "driver_id": "drivers"},
    "route_stops": {"id": "route_stops", "route_id": "routes", "customer_id": "customers"},
}
# Parents before children: the order rows are written in (foreign keys are checked per row).
WRITE_ORDER = ("drivers", "customers", "routes", "route_stops")
assert set(WRITE_ORDER) == set(LEGACY_TABLES) == set(ID_REFERENCES)

# Parent references a legacy row must satisfy in the shared database (its composite foreign
# keys): (table, column, parent table, nullable).
PARENT_REFERENCES = (
    ("customers", "assigned_driver_id", "drivers", True),
    ("routes", "driver_id", "drivers", False),
    ("route_stops", "route_id", "routes", False),
    ("route_stops", "customer_id", "customers", False),
)


def organization_legacy_rows(
    table: str, organization_id: str, *, billing: bool, columns: list[str] | None = None
) -> sql.Composable:
    """SELECT of the organization's rows of `table` in the legacy columns, ids as the source's."""
    columns = columns or legacy_column_names(table, billing=billing)
    organization = sql.Literal(str(organization_id))
    joins: list[sql.Composable] = []
    selected: list[sql.Composable] = []
    references = ID_REFERENCES[table]
    for column in columns:
        if column in references:
            alias = sql.Identifier(f"map_{column}")
            joins.append(
                sql.SQL(
                    " LEFT JOIN (SELECT imported_id, source_id FROM {map} WHERE organization_id = "
                    "{organization} AND table_name = {parent}) AS {alias} "
                    "ON {alias}.imported_id = t.{column}"
                ).format(
                    map=sql.Identifier(ID_MAP_TABLE),
                    organization=organization,
                    parent=sql.Literal(references[column]),
                    alias=alias,
                    column=sql.Identifier(column),
                )
            )
            selected.append(
                sql.SQL("coalesce({alias}.source_id, t.{column}) AS {column}").format(
                    alias=alias, column=sql.Identifier(column)
                )
            )
        elif column in BILLING_COLUMN_NAMES:
            selected.append(sql.SQL("b.{0} AS {0}").format(sql.Identifier(column)))
        else:
            selected.append(sql.SQL("t.{0} AS {0}").format(sql.Identifier(column)))
    if table == "customers" and set(columns) & set(BILLING_COLUMN_NAMES):
        joins.append(
            sql.SQL(" LEFT JOIN ({}) AS b ON b.customer_id = t.id").format(
                sql.SQL(reconstruct_sql())
            )
        )
    return sql.SQL("SELECT {} FROM {} AS t{} WHERE t.organization_id = {}").format(
        sql.SQL(", ").join(selected), sql.Identifier(table), sql.Composed(joins), organization
    )


def billing_rows_of(relation: sql.Composable) -> sql.Composable:
    """The customers of `relation` (legacy customers with the billing columns) that have a
    billing value: customer id and the eight values, what M001 moved."""
    columns = sql.SQL(", ").join(sql.Identifier("c", name) for name in BILLING_COLUMN_NAMES)
    return sql.SQL(
        "SELECT c.id AS customer_id, {columns} FROM ({relation}) AS c WHERE {moved}"
    ).format(columns=columns, relation=relation, moved=sql.SQL(any_billing_value("c")))


BILLING_DIGEST_COLUMNS = ["customer_id", *BILLING_COLUMN_NAMES]


def digest_of(cursor, relation: sql.Composable, columns: list[str]) -> dict:
    """Row count and order-independent checksum of `relation` over `columns` (the caller has
    pinned the digest settings, tenants.conversion.snapshot.pin_digest_settings)."""
    cursor.execute(
        sql.SQL("SELECT count(*), {} FROM ({}) AS t").format(
            checksum_expression(digest_expression(columns, "t")), relation
        )
    )
    rows, checksum = cursor.fetchone()
    return {"rows": int(rows), "checksum": str(checksum)}


def table_relation(table: str, columns: list[str]) -> sql.Composable:
    """SELECT of `columns` of a whole legacy table (the source's side of a proof)."""
    return sql.SQL("SELECT {} FROM {}").format(
        sql.SQL(", ").join(map(sql.Identifier, columns)), sql.Identifier(table)
    )
