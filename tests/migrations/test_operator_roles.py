"""The operator's commands with the production role split: the app role in DATABASE_URL, the
owner in MIGRATION_DATABASE_URL (what the embedded default and `make demo` use)."""

import pytest

from routeoptimizer.database import APPLICATION_ROLE, settings_to_uri

pytestmark = pytest.mark.cli


def role_split(db) -> dict:
    application = {**db.server_settings, "USER": APPLICATION_ROLE, "PASSWORD": ""}
    return {
        "DATABASE_URL": settings_to_uri(application, name=db.name),
        "MIGRATION_DATABASE_URL": db.url,
    }


def test_demo_flow_and_rollback_run_as_the_owner_while_the_app_role_is_configured(scratch_db):
    env = role_split(scratch_db)

    scratch_db.manage("load_legacy_sample", env=env)
    before = scratch_db.legacy_contents()
    scratch_db.manage("migrate", env=env)
    validated = scratch_db.manage("validate_tenancy", env=env)
    rolled_back = scratch_db.manage("rollback_tenancy", "--noinput", env=env)

    assert "FAIL" not in validated.stdout
    assert "Rolled back to the adopted legacy state" in rolled_back.stdout
    assert scratch_db.legacy_contents() == before
    owners = scratch_db.sql(
        "SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'public'"
    )
    assert (APPLICATION_ROLE,) not in owners
