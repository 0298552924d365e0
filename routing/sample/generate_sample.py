"""Generate legacy_sample.sql, the bundled sample legacy database that `make demo` loads."""

import datetime as dt
import random
import string
import sys
import unicodedata
import uuid
from collections.abc import Iterable, Sequence
from decimal import Decimal
from pathlib import Path

HERE = Path(__file__).resolve().parent

OUTPUT = HERE / "legacy_sample.sql"
SEED = 20251026
ALEMBIC_REVISION = "a1b2c3d4e5f6"
ROWS_PER_INSERT = 50
CUSTOMER_COUNT = 180

# Production carries objects outside the contract; the sample has them so that
# adoption is exercised against them too.
PRODUCTION_EXTRAS = (
    "CREATE INDEX ix_routes_created_at ON routes (created_at);\n"
    "COMMENT ON COLUMN customers.display_name IS "
    "'Customer''s name as shown in lists: business name, or first and last name';\n"
)

DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
# Pool service runs on weekdays; a few customers pay for weekend visits.
DAY_WEIGHTS = (20, 20, 20, 20, 20, 6, 2)
ROUTE_DAYS = DAYS[:6]
SCHEDULES = {1: None, 2: "Mo/Th", 3: "Mo/We/Fr"}
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

EPOCH_START = dt.datetime(2024, 1, 2, 7, 0)
EPOCH_END = dt.datetime(2025, 10, 20, 18, 0)

FIRST_NAMES = (
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
    "Emma",
    "Mateo",
    "Grace",
    "Ömer",
)
LAST_NAMES = (
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
    "Martínez",
    "Lee",
    "Brown",
    "O'Neil",
    "Søndergaard",
    "Rossi",
    "Kim",
)
BUSINESSES = (
    "Sunset Palms HOA",
    'Hotel "La Brea"',
    "東京 Sushi & Spa",
    "Ångström Fitness",
    "O'Malley's Swim School",
    "Westside YMCA",
    "Casa Zoë Apartments",
    "Marina del Rey Towers",
    "Echo Park Lofts",
    "Silver Lake Racquet Club",
    "Pasadena Athletic Club",
    "The Colony at Encino",
    "Brentwood Country Estates",
    "Los Feliz Villas",
)
STREETS = (
    "Main St",
    "Sunset Blvd",
    "Wilshire Blvd",
    "O'Farrell Ave",
    "Ventura Blvd",
    "Ocean Ave",
    "Colorado Blvd",
    "Montana Ave",
    "Rue de l'Église",
    "Calle Señora",
    "Ångström Way",
    "Pico Blvd",
    "Olympic Blvd",
    "Mulholland Dr",
    "Laurel Canyon Blvd",
    "Los Feliz Blvd",
)
CITIES = (
    ("Los Angeles", "90012"),
    ("Santa Monica", "90401"),
    ("Pasadena", "91101"),
    ("Burbank", "91502"),
    ("Glendale", "91203"),
    ("Culver City", "90232"),
    ("Long Beach", "90802"),
    ("Beverly Hills", "90210"),
    ("Encino", "91436"),
    ("Torrance", "90501"),
)
NOTES = (
    'Gate code 4821#. Dog in yard, don\'t let "Buddy" out!',
    "Key under the mat.\nCall before arriving.",
    "Equipment manual: C:\\pool\\notes\\pentair.pdf",
    "Salt system\tPentair IntelliChlor\tcheck cell monthly",
    "Owner José speaks Spanish; señora prefers mornings.",
    "🏊 Lap pool, 25 m. Uses 50% more chlorine in summer.",
    "Backwash every visit\nCheck skimmer basket\nLeave invoice in mailbox",
    "Tenant says: 'Don't come before 9am'",
    "Ångström-grade sand filter; 東京 head office pays the invoice.",
    "Spa is off for the winter.",
    "Heater broken; do not turn on.",
    "Zoë handles access; text her on arrival.",
)
RATE_NOTES = (
    "Includes chemicals; filter clean billed separately",
    "10% discount, referred by O'Brien",
    "Rates sheet: \\\\nas01\\billing\\rates.xlsx",
    "Summer rate\t$145\nWinter rate\t$110",
    "Free service: owner's brother 🏊",
    'Price locked until 2026 per "loyalty" deal',
    "Tarifa especial para la señora Muñoz",
)
MANAGEMENT_COMPANIES = (
    "Greystar",
    "O'Donnell Property Mgmt",
    "Ångström & Søn Realty",
    '"Premier" HOA Services',
    "東京 Holdings LLC",
    "R&R Mgmt \\ LA Division",
    "FirstService Residential",
)
CARD_BRANDS = ("Visa", "Mastercard", "American Express", "Discover")
BANKS = ("Chase Bank", "Wells Fargo", "Bank of America", "U.S. Bank")
ALGORITHMS = ("or-tools", "nearest_neighbor", "genetic")

DRIVERS = (
    # name, email, phone, hours, max customers, active, notes, colour, geocoded, parks at home
    (
        "Miguel Hernández",
        "miguel@poolpros.example",
        "(213) 555-0141",
        ("07:00", "15:30"),
        20,
        True,
        "Lead tech; certified CPO.",
        "#3498db",
        True,
        False,
    ),
    (
        "Sarah O'Connor",
        "sarah.oconnor@poolpros.example",
        "(310) 555-0178",
        ("06:30", "14:30"),
        18,
        True,
        'Prefers the "west" side; no commercial accounts.',
        "#e74c3c",
        True,
        True,
    ),
    (
        "Dmitri Volkov",
        "dmitri@poolpros.example",
        "+1 818 555 0102",
        ("08:00", "16:30"),
        22,
        True,
        "Truck #3\tlift gate",
        "#2ecc71",
        True,
        False,
    ),
    ("Kenji Watanabe", None, None, ("07:30", "16:00"), 16, True, None, "#9b59b6", True, True),
    (
        "Zoë Ångström",
        "zoe@poolpros.example",
        "(626) 555-0190",
        ("09:00", "17:00"),
        15,
        True,
        "New hire 2025; start address not geocoded yet.",
        "#f39c12",
        False,
        False,
    ),
    (
        "Tom Becker",
        "tom.becker@poolpros.example",
        "(562) 555-0133",
        ("07:00", "15:00"),
        20,
        False,
        "Left the company in March 2025.",
        "#7f8c8d",
        True,
        False,
    ),
)
YARD = "Pool Pros Yard, 1200 S Alameda St, Los Angeles, CA 90021"

rng = random.Random(SEED)


def new_id() -> uuid.UUID:
    return uuid.UUID(int=rng.getrandbits(128), version=4)


def la_point() -> tuple[float, float]:
    return rng.uniform(33.75, 34.30), rng.uniform(-118.65, -117.95)


def moment(start: dt.datetime = EPOCH_START, end: dt.datetime = EPOCH_END) -> dt.datetime:
    span = int((end - start).total_seconds() * 1_000_000)
    return start + dt.timedelta(microseconds=rng.randrange(span))


def created_updated() -> tuple[dt.datetime, dt.datetime]:
    created = moment()
    # Most rows were edited at some point after creation; some never were.
    updated = created if rng.random() < 0.3 else moment(created, EPOCH_END)
    return created, updated


def clock(text: str) -> dt.time:
    return dt.time.fromisoformat(text)


def ascii_slug(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(ch for ch in folded.lower() if ch.isalnum())


def phone() -> str:
    return f"({rng.choice((213, 310, 323, 562, 626, 818))}) 555-{rng.randrange(100, 200):04d}"


def address() -> str:
    city, postcode = rng.choice(CITIES)
    line = f"{rng.randrange(100, 99999)} {rng.choice(STREETS)}"
    if rng.random() < 0.08:
        line += f', Unit "{rng.choice("ABCD")}"'
    return f"{line}, {city}, CA {postcode}"


def token(length: int) -> str:
    return "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(length))


def drivers() -> list[dict]:
    rows = []
    for name, email, tel, hours, limit, active, notes, colour, geocoded, home in DRIVERS:
        created, updated = created_updated()
        start = la_point() if geocoded else (None, None)
        end = la_point() if geocoded and home else start
        rows.append(
            {
                "id": new_id(),
                "name": name,
                "email": email,
                "phone": tel,
                "start_location_address": YARD,
                "start_latitude": start[0],
                "start_longitude": start[1],
                "end_location_address": address() if home else YARD,
                "end_latitude": end[0],
                "end_longitude": end[1],
                "working_hours_start": clock(hours[0]),
                "working_hours_end": clock(hours[1]),
                "max_customers_per_day": limit,
                "is_active": active,
                "notes": notes,
                "created_at": created,
                "updated_at": updated,
                "color": colour,
            }
        )
    return rows


def billing(kind: str, service_type: str) -> dict:
    values: dict[str, object] = {}
    if kind in ("full", "rate"):
        rate = rng.choice(("125.00", "89.50", "0.00", "149.99", "95.00", "110.00"))
        if service_type == "commercial":
            rate = rng.choice(("1250.00", "680.00", "425.50"))
        values["service_rate"] = Decimal(rate)
        values["billing_frequency"] = rng.choice(("weekly", "monthly", "per-visit"))
    if kind in ("full", "notes"):
        values["rate_notes"] = rng.choice(RATE_NOTES)
    if kind in ("full", "payment"):
        # All eight columns set requires a Stripe-backed method; cash and check have no ids.
        methods = (
            ("credit_card", "ach") if kind == "full" else ("credit_card", "ach", "check", "cash")
        )
        method = rng.choice(methods)
        values["payment_method_type"] = method
        if method in ("credit_card", "ach"):
            values["stripe_customer_id"] = "cus_" + token(14)
            values["stripe_payment_method_id"] = "pm_" + token(24)
            values["payment_last_four"] = f"{rng.randrange(10_000):04d}"
            values["payment_brand"] = rng.choice(CARD_BRANDS if method == "credit_card" else BANKS)
    return values


def customer(
    index: int,
    driver_ids: Sequence[uuid.UUID],
    no_name: set[int],
    not_geocoded: set[int],
    billing_kind: dict[int, str],
) -> dict:
    service_type = "commercial" if rng.random() < 0.2 else "residential"
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    person = f"{first} {last}"
    if service_type == "commercial":
        business = rng.choice(BUSINESSES)
        name, display = business, business
        if rng.random() < 0.5:
            first = last = None
    else:
        name, display = person, person
        # Records from before the first/last split only have the legacy name.
        if rng.random() < 0.15:
            first = last = None
    if index in no_name:
        name = None
    lat, lon = (None, None) if index in not_geocoded else la_point()
    per_week = rng.choices((1, 2, 3), weights=(80, 12, 8))[0]
    day = "monday" if per_week > 1 else rng.choices(DAYS, weights=DAY_WEIGHTS)[0]
    window_start = window_end = None
    if rng.random() < 0.4:
        begin = rng.randrange(7, 12)
        window_start = dt.time(begin, rng.choice((0, 30)))
        window_end = dt.time(begin + rng.randrange(2, 7), window_start.minute)
    status = rng.choices(("active", "inactive", "prospect"), weights=(85, 8, 7))[0]
    created, updated = created_updated()
    slug = ascii_slug(display)[:20] or "customer"
    row = {
        "id": new_id(),
        "name": name,
        "address": address(),
        "latitude": lat,
        "longitude": lon,
        "service_type": service_type,
        "difficulty": rng.choices(range(1, 6), weights=(25, 35, 20, 12, 8))[0],
        "service_day": day,
        "locked": rng.random() < 0.25,
        "time_window_start": window_start,
        "time_window_end": window_end,
        "notes": rng.choice(NOTES) if rng.random() < 0.55 else None,
        "is_active": not (status == "inactive" and rng.random() < 0.6),
        "created_at": created,
        "updated_at": updated,
        "service_days_per_week": per_week,
        "service_schedule": SCHEDULES[per_week],
        "assigned_driver_id": rng.choice(driver_ids) if rng.random() < 0.85 else None,
        "visit_duration": rng.choice(
            (30, 45, 60) if service_type == "commercial" else (15, 15, 15, 20, 30)
        ),
        "first_name": first,
        "last_name": last,
        "display_name": display,
        "email": f"{slug}@example.com" if rng.random() < 0.8 else None,
        "phone": phone() if rng.random() < 0.85 else None,
        "alt_email": f"{slug}.alt@example.org" if rng.random() < 0.1 else None,
        "alt_phone": phone() if rng.random() < 0.1 else None,
        "invoice_email": (
            f"ap.{slug}@example.net"
            if service_type == "commercial" and rng.random() < 0.7
            else None
        ),
        "management_company": (
            rng.choice(MANAGEMENT_COMPANIES)
            if service_type == "commercial" or rng.random() < 0.05
            else None
        ),
        "status": status,
    }
    for column in BILLING_COLUMNS:
        row[column] = None
    if index in billing_kind:
        row.update(billing(billing_kind[index], service_type))
    return row


# Guarantee that every awkward value occurs at least once whatever the random draw gives.
EDGE_CASES = (
    {"notes": "Equipment manual: C:\\pool\\notes\\pentair.pdf"},
    {"notes": "Backwash every visit\nCheck skimmer basket\nLeave invoice in mailbox"},
    {"display_name": "Maria\tGarcía", "first_name": "Maria", "last_name": "García"},
    {"address": "4417\tO'Farrell Ave, Los Angeles, CA 90012"},
    {"address": '88 "Old" Mill Rd, Pasadena, CA 91101'},
    {"display_name": "José Muñoz"},
    {"display_name": "東京 Sushi & Spa 🏊"},
    {"management_company": "R&R Mgmt \\ LA Division"},
    {"notes": 'Tenant\'s "wife" says:\tcall first.\nZoë Ångström'},
)


def customers(driver_ids: Sequence[uuid.UUID]) -> list[dict]:
    picks = rng.sample(range(CUSTOMER_COUNT), 24 + 28 + 40)
    no_name = set(picks[:24])
    not_geocoded = set(picks[24:52])
    kinds = ["full"] * 10 + ["rate"] * 12 + ["notes"] * 8 + ["payment"] * 10
    billing_kind = dict(zip(picks[52:], kinds, strict=True))
    rows = [
        customer(i, driver_ids, no_name, not_geocoded, billing_kind) for i in range(CUSTOMER_COUNT)
    ]
    for row, overrides in zip(rng.sample(rows, len(EDGE_CASES)), EDGE_CASES, strict=True):
        row.update(overrides)
        # Where the legacy name is kept it mirrors the display name; NULL names stay NULL.
        if "display_name" in overrides and row["name"] is not None:
            row["name"] = overrides["display_name"]
    # The brief's example rates must appear however the draw falls.
    rated = [row for row in rows if row["service_rate"] is not None]
    for row, rate in zip(rated, ("125.00", "89.50", "0.00"), strict=False):
        row["service_rate"] = Decimal(rate)
    return rows


def minutes_after(start: dt.time, minutes: int) -> dt.time:
    return (dt.datetime.combine(dt.date.min, start) + dt.timedelta(minutes=minutes)).time()


def routes_and_stops(
    driver_rows: list[dict], customer_rows: list[dict]
) -> tuple[list[dict], list[dict]]:
    routes, stops = [], []
    for driver in (d for d in driver_rows if d["is_active"]):
        for day in sorted(rng.sample(ROUTE_DAYS, rng.randint(3, 5)), key=ROUTE_DAYS.index):
            count = rng.randint(5, 15)
            same_day = [c for c in customer_rows if c["service_day"] == day]
            chosen = rng.sample(same_day, min(count, len(same_day)))
            taken = {c["id"] for c in chosen}
            others = [c for c in customer_rows if c["id"] not in taken]
            chosen += rng.sample(others, count - len(chosen))
            created = moment(dt.datetime(2025, 1, 6))
            route = {
                "id": new_id(),
                "driver_id": driver["id"],
                "service_day": day,
                "total_customers": count,
                "created_at": created,
                "updated_at": created if rng.random() < 0.5 else moment(created, EPOCH_END),
            }
            # Routes saved before the optimizer existed carry no optimization data.
            optimized = rng.random() < 0.75
            route["optimization_algorithm"] = rng.choice(ALGORITHMS) if optimized else None
            route["optimization_score"] = rng.uniform(0.55, 0.99) if optimized else None
            elapsed, distance = 0, 0.0
            for sequence, cust in enumerate(chosen, start=1):
                drive = rng.randrange(4, 26)
                miles = rng.uniform(0.4, 12.0)
                elapsed += drive
                distance += miles
                estimated = optimized and rng.random() > 0.05
                stops.append(
                    {
                        "id": new_id(),
                        "route_id": route["id"],
                        "customer_id": cust["id"],
                        "sequence": sequence,
                        "estimated_arrival_time": (
                            minutes_after(driver["working_hours_start"], elapsed)
                            if estimated
                            else None
                        ),
                        "estimated_service_duration": cust["visit_duration"] if estimated else None,
                        "estimated_drive_time_from_previous": drive if estimated else None,
                        "estimated_distance_from_previous": miles if estimated else None,
                        "created_at": created + dt.timedelta(milliseconds=sequence),
                    }
                )
                elapsed += cust["visit_duration"]
            route["total_duration_minutes"] = elapsed
            route["total_distance_miles"] = distance
            routes.append(route)
    return routes, stops


def literal(value: object) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | Decimal):
        return str(value)
    if isinstance(value, float):
        # repr() is the shortest exact form, so the double round-trips bit for bit.
        return repr(value)
    if isinstance(value, dt.datetime):
        return f"'{value:%Y-%m-%d %H:%M:%S.%f}'"
    if isinstance(value, dt.time | uuid.UUID):
        return f"'{value}'"
    if isinstance(value, str):
        # standard_conforming_strings: only the quote needs escaping, backslashes are literal.
        return "'" + value.replace("'", "''") + "'"
    raise TypeError(f"no SQL literal for {type(value).__name__}")


def inserts(table: str, rows: list[dict]) -> Iterable[str]:
    columns = list(rows[0])
    for start in range(0, len(rows), ROWS_PER_INSERT):
        values = ",\n".join(
            "    (" + ", ".join(literal(row[c]) for c in columns) + ")"
            for row in rows[start : start + ROWS_PER_INSERT]
        )
        yield f"INSERT INTO {table} ({', '.join(columns)}) VALUES\n{values};\n"


def main() -> None:
    # Run as a plain script (python routing/sample/generate_sample.py), so the project root
    # must be made importable to share the one copy of the legacy DDL.
    sys.path.insert(0, str(HERE.parent.parent))
    from routing.legacy_ddl import legacy_ddl

    driver_rows = drivers()
    customer_rows = customers([d["id"] for d in driver_rows])
    route_rows, stop_rows = routes_and_stops(driver_rows, customer_rows)
    parts = [
        "BEGIN;\n\n",
        legacy_ddl(),
        "\n",
        PRODUCTION_EXTRAS,
        f"\nINSERT INTO alembic_version VALUES ('{ALEMBIC_REVISION}');\n\n",
    ]
    for table, rows in (
        ("drivers", driver_rows),
        ("customers", customer_rows),
        ("routes", route_rows),
        ("route_stops", stop_rows),
    ):
        parts.extend(inserts(table, rows))
        parts.append("\n")
    parts.append("COMMIT;\n")
    OUTPUT.write_text("".join(parts), encoding="utf-8", newline="\n")
    print(
        f"wrote {OUTPUT}: {len(driver_rows)} drivers, {len(customer_rows)} customers, "
        f"{len(route_rows)} routes, {len(stop_rows)} route stops"
    )


if __name__ == "__main__":
    main()
