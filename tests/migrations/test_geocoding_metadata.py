"""Plan steps M015/M016 (routing.0007/0008): geocoding metadata on customers and drivers."""

import pytest

pytestmark = pytest.mark.cli

BEFORE = "0006_move_billing_columns"
CUSTOMERS = "0007_customers_geocoding"
DRIVERS = "0008_drivers_geocoding"
GEOCODING_COLUMNS = {"geocoding_provider", "geocoded_by", "geocoded_at"}
# (table, latitude column, longitude column): the coordinates the plan's backfill looks at.
TABLES = (("customers", "latitude", "longitude"), ("drivers", "start_latitude", "start_longitude"))


def columns(db, table: str) -> list[str]:
    return [
        name
        for (name,) in db.sql(
            "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass "
            "AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
            [table],
        )
    ]


@pytest.fixture
def geo_db(legacy_db):
    # Half a coordinate is no coordinate: this customer must not be backfilled.
    legacy_db.script(
        "UPDATE customers SET longitude = NULL WHERE id = "
        "(SELECT id FROM customers WHERE latitude IS NOT NULL ORDER BY id LIMIT 1)"
    )
    legacy_db.manage("migrate", "routing", BEFORE)
    return legacy_db


def test_backfill_gives_geocoded_rows_openstreetmap_and_their_creation_time(geo_db):
    before = {
        table: geo_db.contents(table, ["id", latitude, longitude, "created_at"])
        for table, latitude, longitude in TABLES
    }

    result = geo_db.manage("migrate", "routing", DRIVERS)

    for table, _, _ in TABLES:
        metadata = dict(
            (row[0], row[1:]) for row in geo_db.contents(table, ["id", *sorted(GEOCODING_COLUMNS)])
        )
        geocoded = [row for row in before[table] if row[1] is not None and row[2] is not None]
        assert geocoded and len(geocoded) < len(before[table]), f"{table}: both kinds present"
        for row_id, latitude, longitude, created_at in before[table]:
            geocoded_at, geocoded_by, provider = metadata[row_id]
            if latitude is not None and longitude is not None:
                assert (provider, geocoded_at, geocoded_by) == ("openstreetmap", created_at, None)
            else:
                assert (provider, geocoded_at, geocoded_by) == (None, None, None), row_id
        assert f"{table}: geocoding metadata backfilled for {len(geocoded)} rows" in result.stdout


def test_columns_types_foreign_keys_and_indexes(geo_db):
    geo_db.manage("migrate", "routing", DRIVERS)

    for table, _, _ in TABLES:
        types = dict(
            geo_db.sql(
                "SELECT attname, format_type(atttypid, atttypmod) || "
                "CASE WHEN attnotnull THEN ' NOT NULL' ELSE '' END FROM pg_attribute "
                "WHERE attrelid = %s::regclass AND attname = ANY(%s)",
                [table, list(GEOCODING_COLUMNS)],
            )
        )
        assert types == {
            "geocoding_provider": "character varying(50)",
            "geocoded_by": "uuid",
            "geocoded_at": "timestamp without time zone",
        }
        assert geo_db.value(
            "SELECT pg_get_constraintdef(oid) || ' ' || convalidated FROM pg_constraint "
            "WHERE conname = %s",
            [f"fk_{table}_geocoded_by"],
        ) == (
            "FOREIGN KEY (geocoded_by) REFERENCES users(id) ON DELETE SET NULL "
            "DEFERRABLE INITIALLY DEFERRED true"
        )
        for index in (f"idx_{table}_geocoding_provider", f"idx_{table}_geocoded_by"):
            assert geo_db.value(
                "SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass(%s)", [index]
            ), f"{index} must exist and be valid"


def test_deleting_the_user_who_geocoded_keeps_the_row(geo_db):
    geo_db.manage("migrate", "routing", DRIVERS)
    user_id = geo_db.value(
        "INSERT INTO users (email, password_hash, first_name, last_name, is_superuser) "
        "VALUES ('mapper@example.com', '!', '', '', false) RETURNING id"
    )
    customer_id = geo_db.value("SELECT id FROM customers ORDER BY id LIMIT 1")
    geo_db.script(
        f"UPDATE customers SET geocoded_by = '{user_id}', geocoding_provider = 'google_maps' "
        f"WHERE id = '{customer_id}'"
    )

    geo_db.script(f"DELETE FROM users WHERE id = '{user_id}'")

    assert geo_db.sql(
        "SELECT geocoded_by, geocoding_provider FROM customers WHERE id = %s", [customer_id]
    ) == [(None, "google_maps")]


def test_interrupted_run_resumes_and_keeps_metadata_already_recorded(geo_db):
    """Columns left by a crashed run, one row already carrying metadata: the re-run completes
    and overwrites nothing (only rows whose metadata is still NULL are backfilled)."""
    geo_db.script(
        "ALTER TABLE customers ADD COLUMN geocoding_provider varchar(50), "
        "ADD COLUMN geocoded_by uuid, ADD COLUMN geocoded_at timestamp; "
        "UPDATE customers SET geocoding_provider = 'google_maps', "
        "geocoded_at = '2030-01-01 00:00:00' WHERE id = "
        "(SELECT id FROM customers WHERE latitude IS NOT NULL "
        "AND longitude IS NOT NULL ORDER BY id LIMIT 1)"
    )
    geocoded = geo_db.value(
        "SELECT count(*) FROM customers WHERE latitude IS NOT NULL AND longitude IS NOT NULL"
    )

    result = geo_db.manage("migrate", "routing", CUSTOMERS)

    assert f"customers: geocoding metadata backfilled for {geocoded - 1} rows" in result.stdout
    assert geo_db.sql(
        "SELECT geocoding_provider, count(*) FROM customers GROUP BY 1 ORDER BY 1 NULLS LAST"
    ) == [
        ("google_maps", 1),
        ("openstreetmap", geocoded - 1),
        (None, geo_db.value("SELECT count(*) FROM customers") - geocoded),
    ]


def test_reverse_restores_customers_and_drivers_exactly(geo_db):
    before = {table: (columns(geo_db, table), geo_db.contents(table)) for table, _, _ in TABLES}
    indexes = set(geo_db.sql("SELECT indexname FROM pg_indexes WHERE schemaname = 'public'"))

    geo_db.manage("migrate", "routing", DRIVERS)
    assert set(columns(geo_db, "customers")) >= GEOCODING_COLUMNS
    geo_db.manage("migrate", "routing", BEFORE)

    after = {table: (columns(geo_db, table), geo_db.contents(table)) for table, _, _ in TABLES}
    assert after == before, "same columns in the same order, same rows, same values"
    assert set(geo_db.sql("SELECT indexname FROM pg_indexes WHERE schemaname = 'public'")) == (
        indexes
    )
    assert not geo_db.value(
        "SELECT count(*) FROM pg_constraint WHERE conname LIKE 'fk_%%_geocoded_by'"
    )


def test_reverse_of_drivers_only_leaves_customers_metadata(geo_db):
    geo_db.manage("migrate", "routing", DRIVERS)
    customers = geo_db.contents("customers")

    geo_db.manage("migrate", "routing", CUSTOMERS)

    assert not GEOCODING_COLUMNS & set(columns(geo_db, "drivers"))
    assert geo_db.contents("customers") == customers
