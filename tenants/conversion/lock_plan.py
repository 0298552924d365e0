"""The lock plan: for every migration, the strongest lock it takes, on which table, for how long.

tenancy_preflight prints it for the migrations still to apply, so an operator knows before
`migrate` what the old application will feel. A test (tests/validation/test_lock_plan.py)
fails when a migration in the project's graph has no entry here: whoever adds a migration
describes its locks.

`lock` is a PostgreSQL table lock mode ("none" when the migration only creates tables or
touches no table the application uses); `table` the existing table it is taken on; and
`grows_with_size` whether the time that lock is held grows with that table's size. A lock held
for milliseconds whatever the size does not grow; a scan or a rewrite under it does.
"""

from __future__ import annotations

from typing import NamedTuple


class LockPlan(NamedTuple):
    lock: str
    table: str | None
    grows_with_size: bool
    note: str

    def describe(self) -> str:
        if self.table is None:
            return f"{self.lock}: {self.note}"
        growth = "grows with the table's size" if self.grows_with_size else "does not grow"
        return f"{self.lock} on {self.table} ({growth}): {self.note}"


NO_LOCK = "none"


def _new_table(note: str = "creates a new table; no existing table is locked") -> LockPlan:
    return LockPlan(NO_LOCK, None, False, note)


def _organization_column(table: str) -> LockPlan:
    return LockPlan(
        "ACCESS EXCLUSIVE",
        table,
        False,
        "milliseconds, three times (ADD COLUMN with a constant default, SET NOT NULL proven by "
        "a validated CHECK, the NOT VALID foreign key), each with a 50 ms lock_timeout and "
        "retried; the scans that grow with the size (validating the CHECK and the foreign key, "
        "CREATE INDEX CONCURRENTLY) run under SHARE UPDATE EXCLUSIVE, which lets reads and "
        "writes go on",
    )


def _customer_foreign_key(table: str) -> LockPlan:
    return LockPlan(
        "SHARE ROW EXCLUSIVE",
        "customers",
        False,
        f"milliseconds, to add {table}.customer_id -> customers (the new table is empty, "
        f"nothing is validated), with a 50 ms lock_timeout and retried; blocks writes to "
        f"customers while held",
    )


def _geocoding_metadata(table: str) -> LockPlan:
    return LockPlan(
        "ACCESS EXCLUSIVE",
        table,
        False,
        "milliseconds, for the three catalog-only ADD COLUMNs (50 ms lock_timeout, retried); "
        "what grows with the size runs under weaker locks: the foreign key's validation (SHARE "
        "UPDATE EXCLUSIVE), the backfill of geocoded rows in batches of 1,000 pages (ROW "
        "EXCLUSIVE and FOR NO KEY UPDATE row locks; a write to a row of the current batch waits "
        "for that batch only) and the indexes built CONCURRENTLY",
    )


# "app_label.migration_name" -> LockPlan, in the order `migrate` applies them.
LOCK_PLAN: dict[str, LockPlan] = {
    "routing.0001_legacy_schema": LockPlan(
        NO_LOCK,
        None,
        False,
        "adopts the legacy tables by reading the catalog (creates them on an empty database)",
    ),
    "tenants.0001_legacy_snapshot": LockPlan(
        "ACCESS SHARE",
        "customers, drivers, routes, route_stops",
        True,
        "one sequential scan of each legacy table to record its row digests; reads and writes "
        "go on, only DDL on those tables waits",
    ),
    "tenants.0002_organizations": _new_table(),
    "accounts.0001_users": _new_table(),
    "accounts.0003_password_hash_outside_the_orm": LockPlan(
        NO_LOCK, None, False, "a column DEFAULT on users (catalog-only); users is not legacy"
    ),
    "accounts.0002_api_tokens": _new_table(),
    "tenants.0003_organization_users": _new_table(),
    "tenants.0004_seed_default_organization": _new_table(
        "inserts the default organization and its owner into the new tables"
    ),
    "routing.0002_customers_organization": _organization_column("customers"),
    "routing.0003_drivers_organization": _organization_column("drivers"),
    "routing.0004_routes_organization": _organization_column("routes"),
    "routing.0005_route_stops_organization": _organization_column("route_stops"),
    "billing.0001_service_plans": _new_table(
        "creates service_plans; SHARE ROW EXCLUSIVE on organizations for milliseconds"
    ),
    "billing.0002_customer_service_agreements": _customer_foreign_key(
        "customer_service_agreements"
    ),
    "billing.0003_payment_methods": _customer_foreign_key("payment_methods"),
    "routing.0006_move_billing_columns": LockPlan(
        "ACCESS EXCLUSIVE",
        "customers",
        False,
        "milliseconds at the end (the customers written during the move are moved again, the "
        "trigger goes, DROP COLUMN x8 is catalog-only), 50 ms lock_timeout and retried; before "
        "it, SHARE ROW EXCLUSIVE for milliseconds to add the trigger, and the move itself, which "
        "grows with the number of billed customers, reads customers under ACCESS SHARE",
    ),
    "routing.0007_customers_geocoding": _geocoding_metadata("customers"),
    "routing.0008_drivers_geocoding": _geocoding_metadata("drivers"),
    "billing.0004_organization_subscriptions": _new_table(
        "creates organization_subscriptions; SHARE ROW EXCLUSIVE on organizations for milliseconds"
    ),
    "billing.0005_usage_tracking": _new_table(
        "creates usage_tracking; SHARE ROW EXCLUSIVE on organizations for milliseconds"
    ),
    "geocoding.0001_geocoding_cache": _new_table(),
    "tenants.0005_row_level_security": LockPlan(
        "ACCESS EXCLUSIVE",
        "customers, drivers, routes, route_stops and the five billing tables",
        False,
        "milliseconds per table, one table at a time (CREATE POLICY and ENABLE ROW LEVEL "
        "SECURITY are catalog-only), 50 ms lock_timeout and retried; FORCE waits for "
        "contract_tenancy",
    ),
    "tenants.0006_application_role_privileges": LockPlan(
        NO_LOCK, None, False, "GRANTs to the application role change the catalog's ACLs only"
    ),
    "tenants.0007_verified_organization": LockPlan(
        "ACCESS EXCLUSIVE",
        "customers, drivers, routes, route_stops and the five billing tables",
        False,
        "milliseconds per table, one table at a time (the policies are replaced, catalog-only), "
        "50 ms lock_timeout and retried; the account tables are the new application's own",
    ),
    "routing.0009_organization_composite_keys": LockPlan(
        "ACCESS EXCLUSIVE",
        "drivers, customers, routes",
        False,
        "milliseconds per table (ADD CONSTRAINT ... UNIQUE USING INDEX is catalog-only), 50 ms "
        "lock_timeout and retried; the (organization_id, id) unique index, whose time grows "
        "with the table, is built CONCURRENTLY under SHARE UPDATE EXCLUSIVE first, which lets "
        "reads and writes go on",
    ),
    "routing.0010_organization_foreign_keys": LockPlan(
        "ACCESS EXCLUSIVE",
        "route_stops, routes, customers, drivers",
        False,
        "milliseconds per key to drop the plain foreign key it replaces, on the table and its "
        "parent (dropping a foreign key removes the parent's triggers), 50 ms lock_timeout, "
        "retried; before it, SHARE ROW EXCLUSIVE on the table and its parent for milliseconds "
        "(the composite key added NOT VALID) and the validating scan, which grows with the "
        "table, under SHARE UPDATE EXCLUSIVE (ROW SHARE on the parent): reads and writes go on",
    ),
    "routing.0011_organization_list_indexes": LockPlan(
        "SHARE UPDATE EXCLUSIVE",
        "customers, drivers, routes, route_stops",
        True,
        "CREATE INDEX CONCURRENTLY, one index at a time (12: the API's orderings and filters "
        "after organization_id), one scan of its table each while reads and writes go on",
    ),
    "routing.0012_customers_search_index": LockPlan(
        "SHARE UPDATE EXCLUSIVE",
        "customers",
        True,
        "CREATE INDEX CONCURRENTLY of the list index with the searched columns included (one "
        "scan of customers while reads and writes go on), then DROP INDEX CONCURRENTLY of the "
        "index it replaces",
    ),
    "billing.0006_organization_foreign_keys": LockPlan(
        "ACCESS EXCLUSIVE",
        "customers",
        False,
        "milliseconds per key, to drop the plain key it replaces (dropping a foreign key "
        "removes the parent's triggers), and SHARE ROW EXCLUSIVE for milliseconds before, to add "
        "(organization_id, customer_id) -> customers NOT VALID; each with a 50 ms lock_timeout "
        "and retried; the validating scan of the billing table runs under SHARE UPDATE "
        "EXCLUSIVE (ROW SHARE on customers)",
    ),
    "billing.0007_agreement_service_plan_organization": LockPlan(
        "SHARE ROW EXCLUSIVE",
        "customer_service_agreements, service_plans",
        False,
        "milliseconds per table to create the triggers (50 ms lock_timeout, retried); neither "
        "table is the old application's",
    ),
    "billing.0008_organization_scoped_unique_indexes": LockPlan(
        "SHARE UPDATE EXCLUSIVE",
        "customer_service_agreements, payment_methods",
        True,
        "each unique index rebuilt on (organization_id, customer_id) CONCURRENTLY (reads and "
        "writes go on), the old one dropped CONCURRENTLY, the new one renamed (milliseconds, "
        "50 ms lock_timeout, retried); neither table is the old application's",
    ),
    "billing.0009_usage_api_calls_hourly": LockPlan(
        "SHARE UPDATE EXCLUSIVE",
        "usage_tracking",
        True,
        "CREATE UNIQUE INDEX CONCURRENTLY uq_usage_api_calls_hourly (reads and writes go on), "
        "then CREATE OR REPLACE FUNCTION of the append-only trigger (no table lock); not a table "
        "of the old application",
    ),
    "billing.0010_billing_webhook_events": LockPlan(
        "SHARE ROW EXCLUSIVE",
        "organizations",
        False,
        "creates billing_webhook_events; milliseconds on organizations to add its foreign key "
        "(the new table is empty, nothing is validated), then ENABLE ROW LEVEL SECURITY on the "
        "new table (50 ms lock_timeout, retried)",
    ),
    "billing.0011_platform_written_billing_records": LockPlan(
        "SHARE ROW EXCLUSIVE",
        "billing_webhook_events, organization_subscriptions",
        False,
        "milliseconds per table to create the platform-only guard trigger (50 ms lock_timeout, "
        "retried); neither table is the old application's; CREATE OR REPLACE FUNCTION changes "
        "the catalog only",
    ),
    "tenants.0009_application_role_statistics": LockPlan(
        NO_LOCK,
        None,
        False,
        "REVOKE / GRANT on the statistics views and functions change the catalog's ACLs only",
    ),
    "tenants.0011_organization_imports": _new_table(
        "creates import_organization's two bookkeeping tables; no existing table is locked"
    ),
    "tenants.0010_claim_functions_plpgsql": LockPlan(
        "ACCESS EXCLUSIVE",
        "users, organization_users, api_tokens, organizations, django_admin_log",
        False,
        "milliseconds per table to replace the account tables' policies (catalog-only), "
        "each request under a 50 ms lock_timeout, retried (the old application's foreign key "
        "checks lock users and organizations); CREATE OR REPLACE FUNCTION changes the "
        "catalog only; no tenant table is touched",
    ),
    "tenants.0012_api_token_membership_lookup": LockPlan(
        NO_LOCK,
        None,
        False,
        "CREATE OR REPLACE FUNCTION tenancy_api_token_membership(text) and its EXECUTE "
        "privileges change the catalog only; no table is locked, no policy replaced",
    ),
    "tenants.0013_invitations_and_claimless_lookups": LockPlan(
        NO_LOCK,
        None,
        False,
        "CREATE OR REPLACE FUNCTION tenancy_guard_memberships() (its trigger keeps pointing at "
        "it) and REVOKE/GRANT EXECUTE on the claimless lookups change the catalog only; no "
        "table is locked",
    ),
    "tenants.0008_organization_slug_case_insensitive": LockPlan(
        "SHARE UPDATE EXCLUSIVE",
        "organizations",
        True,
        "CREATE UNIQUE INDEX CONCURRENTLY on lower(slug) and lower(subdomain), one scan each "
        "while reads and writes go on; before it, ROW EXCLUSIVE for milliseconds to lower the "
        "few slugs not in lower case (the legacy application never uses organizations)",
    ),
}

# Django's own apps create and alter only their own tables, which the legacy application never
# uses; their migrations are not ours to describe one by one.
DJANGO_APPS = frozenset({"admin", "auth", "contenttypes", "sessions"})
DJANGO_APP_PLAN = _new_table("Django's own tables; no table of the application is locked")
# The same for the libraries' apps: django-axes keeps its sign-in attempts in tables of its own.
LIBRARY_APP_PLANS = {
    "axes": _new_table(
        "django-axes' own tables (sign-in attempts); no table of the application is locked"
    ),
}


def lock_plan_for(app_label: str, name: str) -> LockPlan | None:
    """The lock plan of migration `app_label.name`, or None when nobody has described it."""
    plan = LOCK_PLAN.get(f"{app_label}.{name}")
    if plan is None and app_label in DJANGO_APPS:
        return DJANGO_APP_PLAN
    if plan is None:
        return LIBRARY_APP_PLANS.get(app_label)
    return plan
