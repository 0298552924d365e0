"""M018-M023 on legacy data: composite keys forward and backward, resumed after an interruption,
and refused cross-organization references as the owner (the old application's role)."""

import psycopg
import pytest

from routing.legacy import LEGACY_TABLES

pytestmark = pytest.mark.cli

COMPOSITE_KEYS = {
    "uq_drivers_organization_and_id",
    "uq_customers_organization_and_id",
    "uq_routes_organization_and_id",
    "fk_route_stops_route_in_organization",
    "fk_route_stops_customer_in_organization",
    "fk_routes_driver_in_organization",
    "fk_customers_assigned_driver_in_organization",
    "fk_customer_service_agreements_customer_in_organization",
    "fk_payment_methods_customer_in_organization",
}
LEGACY_KEYS = {
    "route_stops_route_id_fkey",
    "route_stops_customer_id_fkey",
    "routes_driver_id_fkey",
    "customers_assigned_driver_id_fkey",
}
OTHER_ORGANIZATION = """
INSERT INTO organizations (name, slug, billing_email, billing_address, stripe_customer_id,
    stripe_subscription_id, google_maps_api_key, logo_url, primary_color)
VALUES ('Other Pools', 'other', '', '', '', '', '', '', '') RETURNING id
"""


def constraints(db) -> dict[str, tuple[bool, str]]:
    return {
        name: (validated, definition)
        for name, validated, definition in db.sql(
            "SELECT conname, convalidated, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE connamespace = 'public'::regnamespace"
        )
    }


def contents(db) -> dict[str, list[tuple]]:
    tables = (*LEGACY_TABLES, "customer_service_agreements", "payment_methods")
    return {table: db.contents(table) for table in tables}


def back_to_plain_keys(db) -> None:
    db.manage("migrate", "billing", "0005_usage_tracking")
    db.manage("migrate", "routing", "0008_drivers_geocoding")


def test_migrate_adds_validated_composite_keys_and_drops_the_plain_ones(legacy_db):
    legacy = constraints(legacy_db)

    legacy_db.manage("migrate")

    found = constraints(legacy_db)
    assert COMPOSITE_KEYS <= set(found)
    assert all(found[name][0] for name in COMPOSITE_KEYS), "validated"
    assert not LEGACY_KEYS & set(found), "the plain keys are replaced"
    assert found["fk_route_stops_route_in_organization"][1] == (
        "FOREIGN KEY (organization_id, route_id) REFERENCES routes(organization_id, id) "
        "ON DELETE CASCADE"
    )
    assert legacy["customers_assigned_driver_id_fkey"][1] in legacy_db.value(
        "SELECT obj_description(oid, 'pg_constraint') FROM pg_constraint "
        "WHERE conname = 'fk_customers_assigned_driver_in_organization'"
    )


def test_the_reverse_removes_the_composite_keys_and_keeps_the_data(legacy_db):
    legacy = {name: value for name, value in constraints(legacy_db).items() if name in LEGACY_KEYS}
    legacy_db.manage("migrate")
    billing = {
        name: value
        for name, value in constraints(legacy_db).items()
        if name in {"fk_customer_service_agreements_customer", "fk_payment_methods_customer"}
    }
    legacy_db.manage("migrate", "routing", "0008_drivers_geocoding")  # billing.0006 first
    before = contents(legacy_db)
    assert before["customer_service_agreements"], "the sample has agreements"

    back_to_plain_keys(legacy_db)

    found = constraints(legacy_db)
    assert not COMPOSITE_KEYS & set(found)
    assert {name: found[name] for name in LEGACY_KEYS} == legacy, "exactly the legacy keys"
    assert {"fk_customer_service_agreements_customer", "fk_payment_methods_customer"} <= set(
        found
    )
    assert contents(legacy_db) == before

    legacy_db.manage("migrate")  # and forward again
    assert COMPOSITE_KEYS <= set(constraints(legacy_db))
    assert not (set(billing) | LEGACY_KEYS) & set(constraints(legacy_db))


def test_an_interrupted_run_is_resumed(legacy_db):
    legacy_db.manage("migrate")
    back_to_plain_keys(legacy_db)
    # What a crash leaves: an invalid unique index, a composite key NOT VALID beside the plain one.
    legacy_db.script(
        "CREATE UNIQUE INDEX uq_routes_organization_and_id ON routes (organization_id, id);"
        "UPDATE pg_index SET indisvalid = false "
        "WHERE indexrelid = 'uq_routes_organization_and_id'::regclass;"
        "ALTER TABLE customers ADD CONSTRAINT uq_customers_organization_and_id "
        "UNIQUE (organization_id, id);"
        "ALTER TABLE route_stops ADD CONSTRAINT fk_route_stops_customer_in_organization "
        "FOREIGN KEY (organization_id, customer_id) REFERENCES customers (organization_id, id) "
        "ON DELETE CASCADE NOT VALID"
    )

    legacy_db.manage("migrate")

    found = constraints(legacy_db)
    assert COMPOSITE_KEYS <= set(found)
    assert all(found[name][0] for name in COMPOSITE_KEYS)
    assert not LEGACY_KEYS & set(found)
    assert legacy_db.value(
        "SELECT indisvalid FROM pg_index WHERE indexrelid = 'uq_routes_organization_and_id'::regclass"
    )


def test_the_owner_cannot_reference_another_organizations_rows(legacy_db):
    legacy_db.manage("migrate")
    other = legacy_db.value(OTHER_ORGANIZATION)
    theirs = legacy_db.value(
        "INSERT INTO drivers (id, organization_id, name, start_location_address, "
        "end_location_address, working_hours_start, working_hours_end, max_customers_per_day, "
        "is_active, created_at, updated_at) VALUES (gen_random_uuid(), %s, 'Theirs', 'x', 'x', "
        "'07:00', '16:00', 10, true, now(), now()) RETURNING id",
        [other],
    )
    route = legacy_db.value("SELECT id FROM routes LIMIT 1")
    customer = legacy_db.value("SELECT id FROM customers LIMIT 1")

    for statement in (
        "UPDATE routes SET driver_id = %(theirs)s WHERE id = %(route)s",
        "UPDATE customers SET assigned_driver_id = %(theirs)s WHERE id = %(customer)s",
        "UPDATE routes SET organization_id = %(other)s WHERE id = %(route)s",
    ):
        with pytest.raises(psycopg.errors.ForeignKeyViolation):
            legacy_db.sql(statement, {"theirs": theirs, "route": route, "customer": customer, "other": other})
    # A NULL driver references nothing (MATCH SIMPLE), as before.
    legacy_db.sql("UPDATE customers SET assigned_driver_id = NULL WHERE id = %s", [customer])
    # The old application's writes (no organization_id: the default) still succeed.
    legacy_db.sql(
        "INSERT INTO route_stops (id, route_id, customer_id, sequence, created_at) "
        "VALUES (gen_random_uuid(), %s, %s, 99, now())",
        [route, customer],
    )
