"""Plan step M019 (ours): the legacy foreign keys include organization_id.

route_stops.route_id -> routes, route_stops.customer_id -> customers, routes.driver_id ->
drivers and customers.assigned_driver_id -> drivers become (organization_id, <column>) ->
(organization_id, id), with the legacy actions (ON DELETE CASCADE, NO ACTION for the assigned
driver). PostgreSQL then refuses a row of one organization referencing another's, whoever
writes it and whatever row level security hides: referential checks ignore policies, a
composite key does not. A NULL assigned_driver_id references nothing and is not checked
(MATCH SIMPLE), as before.

The plain single-column keys are dropped once the composite key is validated: kept, they would
check the same thing less (the composite key implies them), cost a second index probe on every
write, and stand in the way of distributing the tables by organization (docs/scale-out.md).
Their names and definitions are kept in a COMMENT on the composite key; the reverse puts them
back exactly.

Locks, per key, one at a time (tenants.conversion.operations.AddOrganizationForeignKey): SHARE ROW
EXCLUSIVE on the table and its parent for milliseconds (ADD ... NOT VALID, 50 ms lock_timeout,
retried), then the validating scan under SHARE UPDATE EXCLUSIVE on the table and ROW SHARE on
the parent (reads and writes go on: about 4 s for 1,000,000 route_stops measured), then ACCESS
EXCLUSIVE on the table and its parent for milliseconds to drop the plain key (dropping a
foreign key removes the parent's triggers; short lock, retried). The old application's
writes keep succeeding throughout: its rows get the default organization, as do the parents
it references.

atomic = False; idempotent (an existing or validated key is kept, a plain key already gone is
not looked for). Reverse: the plain key added NOT VALID and validated, then the composite key
dropped: there is never a moment without one.
"""

from django.db import migrations

from tenants.conversion.operations import AddOrganizationForeignKey

# (table, column, parent, actions, the plain key legacy_schema.sql creates)
FOREIGN_KEYS = (
    (
        "route_stops",
        "route_id",
        "routes",
        "ON DELETE CASCADE",
        "route_stops_route_id_fkey",
        "FOREIGN KEY (route_id) REFERENCES routes(id) ON DELETE CASCADE",
    ),
    (
        "route_stops",
        "customer_id",
        "customers",
        "ON DELETE CASCADE",
        "route_stops_customer_id_fkey",
        "FOREIGN KEY (customer_id) REFERENCES customers(id) ON DELETE CASCADE",
    ),
    (
        "routes",
        "driver_id",
        "drivers",
        "ON DELETE CASCADE",
        "routes_driver_id_fkey",
        "FOREIGN KEY (driver_id) REFERENCES drivers(id) ON DELETE CASCADE",
    ),
    (
        "customers",
        "assigned_driver_id",
        "drivers",
        "",
        "customers_assigned_driver_id_fkey",
        "FOREIGN KEY (assigned_driver_id) REFERENCES drivers(id)",
    ),
)


def foreign_key_name(table: str, column: str) -> str:
    return f"fk_{table}_{column.removesuffix('_id')}_in_organization"


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("routing", "0009_organization_composite_keys"),
    ]

    operations = [
        AddOrganizationForeignKey(
            table,
            foreign_key_name(table, column),
            column,
            parent,
            actions,
            replaces=(old_name, old_definition),
        )
        for table, column, parent, actions, old_name, old_definition in FOREIGN_KEYS
    ]
