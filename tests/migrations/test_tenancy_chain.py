"""The SaaS migration chain on legacy data: every row kept, assigned, and restorable exactly."""

import hashlib
import json
import subprocess
import threading
import time
import uuid

import psycopg
import pytest

from routing.legacy import BILLING_COLUMN_NAMES, LEGACY_COLUMNS, LEGACY_TABLES
from tenants.conversion.lock_plan import LIBRARY_APP_PLANS

pytestmark = pytest.mark.cli

LEGACY_APP_TABLES = {*LEGACY_TABLES, "alembic_version", "django_migrations"}


def core_columns(table: str) -> list[str]:
    """The legacy columns every step of the chain keeps on the table (billing ones move in M001)."""
    return [column.name for column in LEGACY_COLUMNS[table]]


def core_contents(db) -> dict[str, list[tuple]]:
    return {table: db.contents(table, core_columns(table)) for table in LEGACY_TABLES}


def legacy_schema(db) -> list[tuple]:
    return [row for row in db.schema_fingerprint() if row[1].split(".")[-1] in LEGACY_TABLES]


def default_organization_id(db):
    return db.value("SELECT id FROM organizations WHERE slug = 'demo'")


def migration_plan(db) -> list[tuple[str, str]]:
    """Every migration of the project in the order `migrate` applies them."""
    output = db.manage("showmigrations", "--plan").stdout
    return [tuple(line.split()[-1].split(".", 1)) for line in output.splitlines() if "." in line]


def test_migrate_assigns_every_legacy_row_to_the_default_organization(legacy_db):
    before = core_contents(legacy_db)

    legacy_db.manage("migrate")

    organization_id = default_organization_id(legacy_db)
    assert organization_id is not None
    for table in LEGACY_TABLES:
        assigned = legacy_db.sql(f"SELECT organization_id, count(*) FROM {table} GROUP BY 1")
        assert assigned == [(organization_id, len(before[table]))], table
        not_null = legacy_db.value(
            "SELECT attnotnull FROM pg_attribute WHERE attrelid = %s::regclass "
            "AND attname = 'organization_id'",
            [table],
        )
        assert not_null, f"{table}.organization_id must be NOT NULL"
        assert legacy_db.value(
            "SELECT convalidated FROM pg_constraint WHERE conname = %s",
            [f"fk_{table}_organization"],
        ), f"fk_{table}_organization must exist and be validated"
        assert legacy_db.value(
            "SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass(%s)",
            [f"idx_{table}_org"],
        ), f"idx_{table}_org must exist and be valid"
    assert core_contents(legacy_db) == before


def test_snapshot_records_counts_and_checksums_before_anything_changes(legacy_db):
    counts = {t: legacy_db.value(f"SELECT count(*) FROM {t}") for t in LEGACY_TABLES}

    legacy_db.manage("migrate")

    snapshot = dict(legacy_db.sql("SELECT table_name, row_count FROM tenancy_legacy_snapshot"))
    assert snapshot == counts
    customer_columns = legacy_db.value(
        "SELECT columns FROM tenancy_legacy_snapshot WHERE table_name = 'customers'"
    )
    assert set(BILLING_COLUMN_NAMES) <= set(customer_columns), "billing columns are covered"
    assert (
        legacy_db.value("SELECT count(*) FROM tenancy_snapshot_rows_route_stops")
        == (counts["route_stops"])
    )


@pytest.mark.parametrize("billing_columns", [True, False], ids=["billing", "no-billing"])
def test_rollback_restores_the_legacy_contents_exactly(make_scratch_db, billing_columns):
    db = make_scratch_db()
    if billing_columns:
        db.load_sample()
    else:
        _load_sample_without_billing_columns(db)
    before_rows = db.legacy_contents()
    before_schema = legacy_schema(db)

    db.manage("migrate")
    result = db.manage("rollback_tenancy", "--noinput")

    assert "Rolled back to the adopted legacy state" in result.stdout
    assert db.legacy_contents() == before_rows, "every column of every row comes back"
    assert legacy_schema(db) == before_schema
    assert db.tables() == LEGACY_APP_TABLES, "the SaaS tables are gone"
    assert db.applied_migrations() == {("routing", "0001_legacy_schema")}


def test_rollback_without_noinput_asks_and_cancels_on_no(legacy_db):
    legacy_db.manage("migrate")
    tables = legacy_db.tables()

    result = legacy_db.manage("rollback_tenancy", check=False, input="no\n")

    assert result.returncode == 1
    assert "rollback_tenancy will undo" in result.stdout
    assert "routing.0002_customers_organization" in result.stdout
    assert "rollback cancelled; nothing was changed" in result.stderr
    assert legacy_db.tables() == tables


# One manage.py process steps through the whole chain (a process per step spent most of this
# test's time starting Django): after each step it prints the step and a digest of the legacy
# core columns, which the test compares with the digest taken before the first step.
STEP_THROUGH = """
import json, os
from django.core.management import call_command
from tests.migrations.test_tenancy_chain import core_digest
from tests.support import ScratchDatabase

db = ScratchDatabase.attach(os.environ["DATABASE_URL"])
for direction, app, target in json.loads(os.environ["CHAIN_STEPS"]):
    call_command("migrate", app, target, verbosity=0)
    applied = sorted(db.applied_migrations())
    print(json.dumps([direction, app, target, core_digest(db), applied]), flush=True)
"""


def core_digest(db) -> str:
    """The legacy core columns of every row, as one digest comparable across processes."""
    return hashlib.sha256(repr(core_contents(db)).encode()).hexdigest()


def test_every_migration_steps_forward_and_backward_with_data(legacy_db):
    full = legacy_db.legacy_contents()
    # Libraries' chains (django-axes) touch only their own tables: migrate and rollback_tenancy
    # run them whole elsewhere; stepping through them one by one here proves nothing of ours.
    plan = [step for step in migration_plan(legacy_db) if step[0] not in LIBRARY_APP_PLANS]
    assert ("routing", "0005_route_stops_organization") in plan
    steps = [("forward", app, name, (app, name)) for app, name in plan]
    for index in range(len(plan) - 1, 0, -1):
        app, name = plan[index]
        steps.append(("backward", app, _previous_in_app(plan, index) or "zero", (app, name)))
    core = core_digest(legacy_db)

    result = legacy_db.manage(
        "shell",
        "-c",
        STEP_THROUGH,
        env={"CHAIN_STEPS": json.dumps([step[:3] for step in steps])},
    )

    reports = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("[")]
    assert len(reports) == len(steps), result.stdout + result.stderr
    for (direction, app, _, (step_app, step_name)), report in zip(steps, reports, strict=True):
        digest, applied = report[3], {tuple(pair) for pair in report[4]}
        if direction == "forward":
            assert (step_app, step_name) in applied
            assert digest == core, f"after applying {step_app}.{step_name}"
        else:
            assert (step_app, step_name) not in applied
            if ("routing", "0001_legacy_schema") in applied:
                assert digest == core, f"after unapplying {step_app}.{step_name}"

    # Unapplying even routing.0001_legacy_schema only makes Django forget the tables.
    assert legacy_db.legacy_contents() == full


def test_seed_is_idempotent(legacy_db):
    legacy_db.manage("migrate")
    counts = _seed_counts(legacy_db)

    # Run the seed's forward function again on the seeded database, as a re-run would.
    legacy_db.manage("shell", "-c", RUN_SEED_AGAIN)

    assert _seed_counts(legacy_db) == counts == (1, 1, 1)
    organization = legacy_db.sql(
        "SELECT name, plan_tier, subscription_status, is_active, max_users, max_customers, "
        "max_techs FROM organizations WHERE slug = 'demo'"
    )
    assert organization == [("Demo Organization", "professional", "active", True, 10, 500, 10)]


def test_owner_has_no_usable_password_unless_one_is_configured(make_scratch_db):
    without, with_password = make_scratch_db(), make_scratch_db()

    without.manage("migrate", env={"ROUTEOPTIMIZER_OWNER_EMAIL": "Owner@Example.com"})
    with_password.manage("migrate", env={"ROUTEOPTIMIZER_OWNER_PASSWORD": "s3cret-Passw0rd"})

    owner = without.sql("SELECT email, password_hash, is_superuser FROM users")
    assert owner[0][0] == "Owner@Example.com"
    assert owner[0][1].startswith("!"), "an unusable password"
    assert owner[0][2] is True
    (hashed,) = with_password.sql(
        "SELECT password_hash FROM users WHERE email = 'brian@example.com'"
    )[0]
    assert hashed.startswith("argon2$argon2id$")


def test_rows_written_by_the_old_application_during_migrate_land_in_the_default_organization(
    legacy_db,
):
    legacy_db.manage("migrate", "tenants", "0004_seed_default_organization")
    writer = LegacyWriter(legacy_db)
    writer.start()
    try:
        time.sleep(0.2)
        legacy_db.manage("migrate")
        time.sleep(0.2)
    finally:
        writer.stop()

    assert writer.errors == []
    assert len(writer.customer_ids) > 10
    organization_id = default_organization_id(legacy_db)
    found = legacy_db.sql(
        "SELECT organization_id, count(*) FROM customers WHERE id = ANY(%s) GROUP BY 1",
        [writer.customer_ids],
    )
    assert found == [(organization_id, len(writer.customer_ids))]
    stops = legacy_db.sql(
        "SELECT organization_id, count(*) FROM route_stops WHERE id = ANY(%s) GROUP BY 1",
        [writer.stop_ids],
    )
    assert stops == [(organization_id, len(writer.stop_ids))]


def test_interrupted_run_with_rows_lacking_an_organization_is_resumed_and_backfilled(legacy_db):
    legacy_db.manage("migrate", "tenants", "0004_seed_default_organization")
    # What a crash half-way through an older run could leave: the column without its default,
    # and rows that never got an organization.
    legacy_db.script("ALTER TABLE customers ADD COLUMN organization_id uuid")
    total = legacy_db.value("SELECT count(*) FROM customers")

    result = legacy_db.manage("migrate")

    assert "Resuming routing.0002_customers_organization, interrupted earlier" in result.stdout
    assert "customers:" in result.stdout and "assigned to the default organization" in result.stdout
    organization_id = default_organization_id(legacy_db)
    assert legacy_db.sql("SELECT organization_id, count(*) FROM customers GROUP BY 1") == [
        (organization_id, total)
    ]
    assert legacy_db.value(
        "SELECT pg_get_expr(adbin, adrelid) FROM pg_attrdef WHERE adrelid = 'customers'::regclass "
        "AND adnum = (SELECT attnum FROM pg_attribute WHERE attrelid = 'customers'::regclass "
        "AND attname = 'organization_id')"
    ).startswith(f"'{organization_id}'")


class LegacyWriter:
    """Inserts customers and route stops every few milliseconds, as the old application does."""

    def __init__(self, db, interval: float = 0.005):
        self.db = db
        self.interval = interval
        self.customer_ids: list[uuid.UUID] = []
        self.stop_ids: list[uuid.UUID] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self):
        self._thread.start()

    def stop(self):
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self):
        with psycopg.connect(self.db.url, autocommit=True) as connection:
            (route_id,) = connection.execute("SELECT id FROM routes LIMIT 1").fetchone()
            while not self._stop.is_set():
                customer_id, stop_id = uuid.uuid4(), uuid.uuid4()
                try:
                    connection.execute(
                        "INSERT INTO customers (id, address, service_type, difficulty, "
                        "service_day, locked, is_active, created_at, updated_at, "
                        "service_days_per_week, display_name) VALUES (%s, '1 Main St', "
                        "'residential', 1, 'monday', false, true, now(), now(), 1, 'Writer')",
                        [customer_id],
                    )
                    self.customer_ids.append(customer_id)
                    connection.execute(
                        "INSERT INTO route_stops (id, route_id, customer_id, sequence, created_at) "
                        "VALUES (%s, %s, %s, 99, now())",
                        [stop_id, route_id, customer_id],
                    )
                    self.stop_ids.append(stop_id)
                except psycopg.Error as error:
                    self.errors.append(str(error))
                time.sleep(self.interval)


RUN_SEED_AGAIN = """
import importlib
from django.db import connection
from django.db.migrations.loader import MigrationLoader
seed = importlib.import_module("tenants.migrations.0004_seed_default_organization")
state = MigrationLoader(connection).project_state(("tenants", "0004_seed_default_organization"))
with connection.schema_editor() as schema_editor:
    seed.seed_default_organization(state.apps, schema_editor)
"""


def _seed_counts(db) -> tuple[int, int, int]:
    return (
        db.value("SELECT count(*) FROM organizations"),
        db.value("SELECT count(*) FROM users"),
        db.value("SELECT count(*) FROM organization_users"),
    )


def _previous_in_app(plan, index):
    app = plan[index][0]
    earlier = [name for other, name in plan[:index] if other == app]
    return earlier[-1] if earlier else None


def _load_sample_without_billing_columns(db):
    db.load_sample()
    db.script(
        "ALTER TABLE customers " + ", ".join(f"DROP COLUMN {c}" for c in BILLING_COLUMN_NAMES)
    )


def test_rollback_refuses_while_other_organizations_have_rows(legacy_db):
    legacy_db.manage("migrate")
    legacy_db.manage(
        "create_organization",
        "--name",
        "Other Pools",
        "--slug",
        "other",
        "--owner-email",
        "owner@other.example",
    )
    other = legacy_db.value("SELECT id FROM organizations WHERE slug = 'other'")
    legacy_db.sql(
        "INSERT INTO drivers (id, organization_id, name, start_location_address, "
        "end_location_address, working_hours_start, working_hours_end, max_customers_per_day, "
        "is_active, created_at, updated_at) VALUES (gen_random_uuid(), %s, 'Other driver', "
        "'1 Depot', '1 Depot', '08:00', '17:00', 10, true, now(), now())",
        [other],
    )
    tables = legacy_db.tables()

    refused = legacy_db.manage("rollback_tenancy", "--noinput", check=False)

    assert refused.returncode == 1
    assert "rows of organizations other than the default one (1 drivers)" in refused.stderr
    assert legacy_db.tables() == tables
    forced = legacy_db.manage("rollback_tenancy", "--noinput", "--force")
    assert "Rolled back to the adopted legacy state" in forced.stdout


def test_rollback_prompt_without_a_terminal_cancels(legacy_db):
    legacy_db.manage("migrate")

    result = legacy_db.manage("rollback_tenancy", check=False, stdin=subprocess.DEVNULL)

    assert result.returncode == 1
    assert "rollback cancelled; nothing was changed" in result.stderr
    assert "Traceback" not in result.stderr
