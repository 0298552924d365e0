"""Build a large synthetic legacy RouteOptimizer database for migration benchmarks."""

import time
from collections.abc import Callable

import psycopg
from psycopg import sql

from routing.legacy_ddl import legacy_ddl

ALEMBIC_REVISION = "a1b2c3d4e5f6"
STOPS_PER_CUSTOMER = 5
CUSTOMERS_PER_DRIVER = 40
CUSTOMERS_PER_ROUTE = 8

# Bulk-load settings for this session only; the server's configuration is left alone.
SESSION_SETTINGS = (
    "SET synchronous_commit = off",
    "SET work_mem = '256MB'",
    "SET maintenance_work_mem = '1GB'",
    "SET max_parallel_maintenance_workers = 2",
)

# Pools the generated text is drawn from; they carry the awkward characters real data has.
POOLS: dict[str, list[str]] = {
    "days": ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday"],
    "first_names": [
        "José",
        "Zoë",
        "Maria",
        "James",
        "Aiko",
        "Liam",
        "Sofía",
        "Chen",
        "Olivia",
        "Noah",
        "Priya",
        "Björn",
        "Fatima",
        "Lucas",
        "Hana",
        "Seán",
    ],
    "last_names": [
        "Muñoz",
        "O'Brien",
        "Ångström",
        "Nguyen",
        "García",
        "Smith",
        "D'Angelo",
        "Kowalski",
        "Tanaka",
        "Johnson",
        "Müller",
        "Okafor",
        "Patel",
        "Lee",
    ],
    "businesses": [
        "Sunset Palms HOA",
        'Hotel "La Brea"',
        "東京 Sushi & Spa",
        "Ångström Fitness",
        "O'Malley's Swim School",
        "Westside YMCA",
        "Echo Park Lofts",
    ],
    "streets": [
        "Main St",
        "Sunset Blvd",
        "Wilshire Blvd",
        "O'Farrell Ave",
        "Ventura Blvd",
        "Calle Señora",
        "Ångström Way",
        "Pico Blvd",
        "Mulholland Dr",
    ],
    "cities": [
        "Los Angeles, CA 90012",
        "Santa Monica, CA 90401",
        "Pasadena, CA 91101",
        "Burbank, CA 91502",
        "Culver City, CA 90232",
        "Long Beach, CA 90802",
    ],
    "notes": [
        'Gate code 4821#. Dog in yard, don\'t let "Buddy" out!',
        "Key under the mat.\nCall before arriving.",
        "Equipment manual: C:\\pool\\notes\\pentair.pdf",
        "Salt system\tPentair IntelliChlor\tcheck cell monthly",
        "🏊 Lap pool, 25 m. Uses 50% more chlorine in summer.",
        "Owner José speaks Spanish; señora prefers mornings.",
    ],
    "management_companies": [
        "Greystar",
        "O'Donnell Property Mgmt",
        '"Premier" HOA Services',
        "東京 Holdings LLC",
        "R&R Mgmt \\ LA Division",
    ],
    "rates": ["125.00", "89.50", "0.00", "149.99", "95.00", "1250.00"],
    "frequencies": ["weekly", "monthly", "per-visit"],
    "rate_notes": [
        "Includes chemicals; filter clean billed separately",
        "10% discount, referred by O'Brien",
        "Rates sheet: \\\\nas01\\billing\\rates.xlsx",
        "Summer rate\t$145\nWinter rate\t$110",
        'Price locked per "loyalty" deal 🏊',
    ],
    "payment_types": ["credit_card", "ach", "check", "cash"],
    "card_brands": ["Visa", "Mastercard", "American Express", "Discover"],
    "banks": ["Chase Bank", "Wells Fargo", "Bank of America", "U.S. Bank"],
    "colours": ["#3498db", "#e74c3c", "#2ecc71", "#9b59b6", "#f39c12", "#1abc9c"],
    "algorithms": ["or-tools", "nearest_neighbor", "genetic"],
}

BILLING_COLUMNS = (
    "service_rate",
    "billing_frequency",
    "rate_notes",
    "payment_method_type",
    "stripe_customer_id",
    "stripe_payment_method_id",
    "payment_last_four",
    "payment_brand",
)


def pick(pool: str, key: str) -> str:
    """SQL template choosing an element of POOLS[pool] by the non-negative integer SQL `key`."""
    return f"({{{pool}}}::text[])[1 + ({key}) % {len(POOLS[pool])}]"


# Ids are drawn once into numbered maps so that every row can find its parents by number
# with a hash join; the maps are dropped once the legacy tables are filled.
ID_MAPS = {
    name: f"CREATE UNLOGGED TABLE {name} AS "
    f"SELECT n, gen_random_uuid() AS id FROM generate_series(0::bigint, {{{size}}} - 1) n"
    for name, size in (
        ("bench_driver_ids", "drivers"),
        ("bench_customer_ids", "customers"),
        ("bench_route_ids", "routes"),
    )
}

DRIVERS = f"""
INSERT INTO drivers (id, name, email, phone, start_location_address, start_latitude,
    start_longitude, end_location_address, end_latitude, end_longitude, working_hours_start,
    working_hours_end, max_customers_per_day, is_active, notes, created_at, updated_at, color)
SELECT id, name, email, phone, 'Pool Pros Yard, 1200 S Alameda St, Los Angeles, CA 90021',
    lat, lon, 'Pool Pros Yard, 1200 S Alameda St, Los Angeles, CA 90021', lat, lon,
    time '06:30' + n % 4 * interval '30 minutes', time '14:30' + n % 4 * interval '30 minutes',
    15 + n % 8, n % 20 <> 7, notes, created_at, created_at + n % 90 * interval '1 day', color
FROM (
    SELECT id, n,
        {pick("first_names", "n")} || ' ' || {pick("last_names", "n / 16")} || ' ' || n AS name,
        CASE WHEN n % 10 <> 3 THEN 'driver' || n || '@poolpros.example' END AS email,
        CASE WHEN n % 10 <> 3 THEN '(213) 555-' || lpad((n % 10000)::text, 4, '0') END AS phone,
        CASE WHEN n % 10 <> 4 THEN 33.75 + random() * 0.55 END AS lat,
        CASE WHEN n % 10 <> 4 THEN -118.65 + random() * 0.7 END AS lon,
        CASE WHEN n % 10 NOT IN (3, 5) THEN {pick("notes", "n")} END AS notes,
        timestamp '2024-01-02' + n * 7919 % 20000000 * interval '1 second' AS created_at,
        {pick("colours", "n")} AS color
    FROM bench_driver_ids
) d
"""

CUSTOMER_COLUMNS = """id, name, address, latitude, longitude, service_type, difficulty,
    service_day, locked, time_window_start, time_window_end, notes, is_active, created_at,
    updated_at, service_days_per_week, service_schedule, assigned_driver_id, visit_duration,
    first_name, last_name, display_name, email, phone, alt_email, alt_phone, invoice_email,
    management_company, status"""

# Billed customers are spread by a multiplicative hash (plain modulo would correlate with the
# other columns) and fall into four kinds, as in production: every billing column set; only
# rate and frequency; only rate notes; only payment fields (cash and check carry no ids).
SPREAD = "c.n * 2654435761 % 4294967296"
BILLED = f"{SPREAD} % 10000 < {{billed_per_10000}}"
KIND = f"{SPREAD} / 10000 % 4"
BILLING_VALUES = f"""
    CASE WHEN kind IN (0, 1) THEN ({pick("rates", "n")})::numeric(10, 2) END,
    CASE WHEN kind IN (0, 1) THEN {pick("frequencies", "n / 7")} END,
    CASE WHEN kind IN (0, 2) THEN {pick("rate_notes", "n / 3")} END,
    payment_type,
    CASE WHEN payment_type IN ('credit_card', 'ach')
        THEN 'cus_' || left(md5(id::text), 14) END,
    CASE WHEN payment_type IN ('credit_card', 'ach')
        THEN 'pm_' || left(md5(n::text || id::text), 24) END,
    CASE WHEN payment_type IN ('credit_card', 'ach') THEN lpad((n % 10000)::text, 4, '0') END,
    CASE payment_type WHEN 'credit_card' THEN {pick("card_brands", "n / 5")}
        WHEN 'ach' THEN {pick("banks", "n / 5")} END"""

CUSTOMERS = f"""
INSERT INTO customers ({CUSTOMER_COLUMNS}{{billing_columns}})
SELECT id, CASE WHEN n % 9 <> 4 THEN coalesce(business, person) END,
    (1 + n * 37 % 99999) || ' ' || {pick("streets", "n / 3")} || ', ' || {pick("cities", "n / 7")},
    CASE WHEN n % 7 <> 3 THEN 33.75 + random() * 0.55 END,
    CASE WHEN n % 7 <> 3 THEN -118.65 + random() * 0.7 END,
    CASE WHEN business IS NULL THEN 'residential' ELSE 'commercial' END,
    1 + n / 7 % 5, {pick("days", "n")}, n % 4 = 0,
    CASE WHEN n % 3 = 0 THEN time '07:00' + n % 5 * interval '1 hour' END,
    CASE WHEN n % 3 = 0 THEN time '11:00' + n % 5 * interval '1 hour' END,
    CASE WHEN n % 2 = 0 THEN {pick("notes", "n / 2")} END,
    n % 50 <> 0, created_at, created_at + n * 31 % 2592000 * interval '1 second',
    per_week, CASE per_week WHEN 2 THEN 'Mo/Th' WHEN 3 THEN 'Mo/We/Fr' END, driver_id,
    CASE WHEN business IS NULL THEN 15 + n % 3 * 5 ELSE 45 END,
    first_name, last_name, coalesce(business, person),
    CASE WHEN n % 5 <> 1 THEN 'customer' || n || '@example.com' END,
    CASE WHEN n % 6 <> 1 THEN '(310) 555-' || lpad((n % 10000)::text, 4, '0') END,
    CASE WHEN n % 10 = 2 THEN 'customer' || n || '.alt@example.org' END,
    CASE WHEN n % 10 = 3 THEN '(818) 555-' || lpad((n % 10000)::text, 4, '0') END,
    CASE WHEN business IS NOT NULL THEN 'ap' || n || '@example.net' END,
    CASE WHEN business IS NOT NULL AND n % 3 = 0
        THEN {pick("management_companies", "n / 3")} END,
    CASE n % 50 WHEN 0 THEN 'inactive' WHEN 1 THEN 'prospect' ELSE 'active' END
    {{billing_values}}
FROM (
    SELECT c.id, c.n, d.id AS driver_id,
        CASE WHEN c.n % 5 = 0 THEN {pick("businesses", "c.n / 5")} END AS business,
        {pick("first_names", "c.n")} || ' ' || {pick("last_names", "c.n / 16")} AS person,
        CASE WHEN c.n % 5 <> 0 AND c.n % 13 <> 1
            THEN {pick("first_names", "c.n")} END AS first_name,
        CASE WHEN c.n % 5 <> 0 AND c.n % 13 <> 1
            THEN {pick("last_names", "c.n / 16")} END AS last_name,
        CASE c.n % 10 WHEN 1 THEN 2 WHEN 2 THEN 3 ELSE 1 END AS per_week,
        timestamp '2024-01-02' + c.n * 7919 % 55000000 * interval '1 second' AS created_at,
        CASE WHEN {BILLED} THEN {KIND} END AS kind,
        CASE WHEN {BILLED}
            THEN CASE {KIND}
                WHEN 0 THEN {pick("payment_types", "c.n % 2")}
                WHEN 3 THEN {pick("payment_types", "c.n")} END
        END AS payment_type
    FROM bench_customer_ids c
    LEFT JOIN bench_driver_ids d ON c.n % 8 <> 0 AND d.n = c.n % {{drivers}}
) c
"""

# Route r belongs to driver r % drivers and runs on weekday r / drivers, so a driver's routes
# fall on distinct days; route stop i is stop number i / routes + 1 of route i % routes.
ROUTES = f"""
INSERT INTO routes (id, driver_id, service_day, total_duration_minutes, total_distance_miles,
    total_customers, optimization_algorithm, optimization_score, created_at, updated_at)
SELECT r.id, d.id, {pick("days", "r.n / {drivers}")},
    stops * 35, stops * (2 + random() * 6), stops,
    CASE WHEN r.n % 5 <> 0 THEN {pick("algorithms", "r.n / 5")} END,
    CASE WHEN r.n % 5 <> 0 THEN 0.55 + random() * 0.44 END,
    created_at, created_at + r.n % 100 * interval '1 hour'
FROM (
    SELECT id, n, ({{stops}} - n + {{routes}} - 1) / {{routes}} AS stops,
        timestamp '2025-01-06' + n * 7919 % 23000000 * interval '1 second' AS created_at
    FROM bench_route_ids
) r
JOIN bench_driver_ids d ON d.n = r.n % {{drivers}}
"""

# A stop's customer is drawn among the customers whose service day (n % 6) is the route's day.
ROUTE_STOPS = """
INSERT INTO route_stops (id, route_id, customer_id, sequence, estimated_arrival_time,
    estimated_service_duration, estimated_drive_time_from_previous,
    estimated_distance_from_previous, created_at)
SELECT gen_random_uuid(), r.id, c.id, s.sequence,
    CASE WHEN s.estimated THEN time '07:00' + s.sequence * interval '15 minutes' END,
    CASE WHEN s.estimated THEN 15 END,
    CASE WHEN s.estimated THEN 3 + s.i % 20 END,
    CASE WHEN s.estimated THEN 0.3 + random() * 9.7 END,
    timestamp '2025-01-06' + s.route_n * 7919 % 23000000 * interval '1 second'
        + s.sequence * interval '1 millisecond'
FROM (
    SELECT i, route_n, i / {routes} + 1 AS sequence, route_n % 5 <> 0 AS estimated,
        day + 6 * (i * 2654435761 % 4294967296 % (({customers} - 1 - day) / 6 + 1)) AS customer_n
    FROM (
        SELECT i, i % {routes} AS route_n, i % {routes} / {drivers} % 6 AS day
        FROM generate_series(0::bigint, {stops} - 1) i
    ) g
) s
JOIN bench_route_ids r ON r.n = s.route_n
JOIN bench_customer_ids c ON c.n = s.customer_n
"""

# Drop order: foreign keys before the primary keys they depend on; restore in reverse.
CONSTRAINTS_AND_INDEXES = """
SELECT format('ALTER TABLE %s DROP CONSTRAINT %I', conrelid::regclass, conname),
    format('ALTER TABLE %s ADD CONSTRAINT %I %s', conrelid::regclass, conname,
           pg_get_constraintdef(oid)),
    CASE contype WHEN 'f' THEN 0 ELSE 1 END AS drop_order
FROM pg_constraint
WHERE connamespace = to_regnamespace(current_schema()) AND contype IN ('p', 'f')
UNION ALL
SELECT format('DROP INDEX %s', i.indexrelid::regclass), pg_get_indexdef(i.indexrelid), 2
FROM pg_index i
JOIN pg_class t ON t.oid = i.indrelid
WHERE t.relnamespace = to_regnamespace(current_schema())
    AND NOT EXISTS (SELECT FROM pg_constraint k WHERE k.conindid = i.indexrelid
                                                  AND k.contype IN ('p', 'u', 'x'))
ORDER BY 3, 1
"""


def build_legacy_database(
    conninfo: str,
    customers: int,
    *,
    billing_columns: bool = True,
    billing_share: float = 0.10,
    progress: Callable[[str], object] = print,
) -> dict[str, int]:
    """Create and fill the legacy schema on the empty database at `conninfo`.

    Sizes follow `customers`: customers // 40 drivers, customers // 8 routes (at least one
    of each) and 5 route stops per customer; `billing_share` of the customers carry billing
    values when `billing_columns` is true. Returns the row count of every table created.
    """
    if customers < 1:
        raise ValueError(f"customers must be at least 1, not {customers}")
    if not 0.0 <= billing_share <= 1.0:
        raise ValueError(f"billing_share must be between 0 and 1, not {billing_share}")
    sizes = {
        "customers": customers,
        "drivers": max(1, customers // CUSTOMERS_PER_DRIVER),
        "routes": max(1, customers // CUSTOMERS_PER_ROUTE),
        "stops": STOPS_PER_CUSTOMER * customers,
        "billed_per_10000": round(billing_share * 10_000) if billing_columns else 0,
    }
    values = {name: sql.Literal(value) for name, value in {**sizes, **POOLS}.items()}
    customers_sql = CUSTOMERS.replace(
        "{billing_columns}", ", " + ", ".join(BILLING_COLUMNS) if billing_columns else ""
    ).replace("{billing_values}", "," + BILLING_VALUES if billing_columns else "")

    started = time.perf_counter()
    counts: dict[str, int] = {}
    with psycopg.connect(conninfo, autocommit=True) as conn:
        _require_empty(conn)
        for setting in SESSION_SETTINGS:
            conn.execute(setting)
        conn.execute(legacy_ddl(billing_columns=billing_columns))
        restore = _drop_constraints_and_indexes(conn)
        counts["alembic_version"] = conn.execute(
            "INSERT INTO alembic_version VALUES (%s)", (ALEMBIC_REVISION,)
        ).rowcount

        def step(label: str, template: str) -> int:
            begun = time.perf_counter()
            rows = conn.execute(sql.SQL(template).format(**values)).rowcount
            progress(f"{label}: {rows:,} rows in {time.perf_counter() - begun:.1f}s")
            return rows

        for name, template in ID_MAPS.items():
            step(name, template)
        for table, template in (
            ("drivers", DRIVERS),
            ("customers", customers_sql),
            ("routes", ROUTES),
            ("route_stops", ROUTE_STOPS),
        ):
            counts[table] = step(table, template)
        for name in ID_MAPS:
            conn.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(name)))

        begun = time.perf_counter()
        for statement in restore:
            conn.execute(statement)
        progress(
            f"primary keys, indexes, foreign keys: {len(restore)} in "
            f"{time.perf_counter() - begun:.1f}s"
        )
        begun = time.perf_counter()
        conn.execute("ANALYZE")
        progress(f"analyze: {time.perf_counter() - begun:.1f}s")
    progress(
        f"legacy database with {customers:,} customers built in "
        f"{time.perf_counter() - started:.1f}s"
    )
    return counts


def _require_empty(conn: psycopg.Connection) -> None:
    tables = conn.execute(
        "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') "
        "AND n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'"
    ).fetchone()
    if tables and tables[0]:
        raise RuntimeError(
            f"database is not empty ({tables[0]} tables or views); "
            "build_legacy_database needs an empty database"
        )


def _drop_constraints_and_indexes(conn: psycopg.Connection) -> list[str]:
    """Drop the legacy keys and indexes; return the statements that recreate them.

    Loading into bare tables and indexing afterwards is several times faster than
    maintaining the indexes row by row; the definitions come from the catalog, so the
    restored objects are exactly those the legacy DDL created.
    """
    rows = conn.execute(CONSTRAINTS_AND_INDEXES).fetchall()
    for drop, _create, _order in rows:
        conn.execute(drop)
    return [create for _drop, create, _order in reversed(rows)]
