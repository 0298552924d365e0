"""The two roles: the application's and the owner's; which one connects, and when we warn."""

import pytest
from django.conf import settings
from django.core.management import CommandError
from django.db import connection, transaction
from django.test import override_settings

from routeoptimizer.database import DatabaseConfigurationError, database_roles
from tenants.checks import check_application_role
from tenants.management.base import OrganizationCommand
from tenants.roles import APPLICATION, OWNER, owner_connection
from tests.factories import OrganizationFactory


def whoami() -> tuple[str, str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_user, coalesce(current_setting('app.unscoped', true), '')")
        return cursor.fetchone()


@pytest.mark.django_db(transaction=True)
def test_maintenance_runs_as_the_owner_then_the_application_role_again():
    app, owner = settings.DATABASE_ROLES[APPLICATION], settings.DATABASE_ROLES[OWNER]
    assert whoami() == (app["USER"], "")

    with owner_connection():
        assert whoami() == (owner["USER"], "on")

    assert whoami() == (app["USER"], "")


@pytest.mark.django_db
def test_switching_to_the_owner_inside_a_transaction_is_refused():
    with pytest.raises(RuntimeError, match="inside a transaction"), owner_connection():
        pass
    assert transaction.get_connection().in_atomic_block


@pytest.mark.django_db
def test_no_warning_when_the_application_role_is_bound_by_row_level_security():
    assert check_application_role(databases=["default"]) == []


@pytest.mark.django_db
def test_warns_when_the_application_connects_as_the_owner():
    app = settings.DATABASE_ROLES[APPLICATION]
    with override_settings(DATABASE_ROLES={APPLICATION: app, OWNER: app}):
        (warning,) = check_application_role(databases=["default"])
    assert warning.id == "tenants.W001"
    assert "the owner role too" in warning.msg


@pytest.mark.django_db
def test_warns_when_the_application_connects_as_a_superuser():
    roles = {**settings.DATABASE_ROLES}
    roles[APPLICATION] = {**roles[APPLICATION], "USER": "postgres"}
    roles[OWNER] = {**roles[OWNER], "USER": "someone_else"}
    with override_settings(DATABASE_ROLES=roles):
        (warning,) = check_application_role(databases=["default"])
    assert "'postgres', a superuser and the owner of tables: row level security" in warning.msg


def test_the_role_check_runs_only_with_database_checks():
    assert check_application_role(databases=None) == []


def test_the_owner_url_must_name_the_same_database():
    app = {"NAME": "routeoptimizer", "USER": "app", "HOST": "db", "PORT": "5432"}
    with pytest.raises(DatabaseConfigurationError, match="both must name the same database"):
        database_roles(app, migration_url="postgresql://owner@db:5432/other", embedded=False)

    roles = database_roles(
        app, migration_url="postgresql://owner:secret@db:5432/routeoptimizer", embedded=False
    )
    assert (roles[APPLICATION]["USER"], roles[OWNER]["USER"]) == ("app", "owner")
    assert roles[OWNER]["PASSWORD"] == "secret"
    assert database_roles(app, migration_url="", embedded=False)[OWNER]["USER"] == "app"


def test_an_owner_url_needs_an_application_url():
    with pytest.raises(DatabaseConfigurationError, match="set both"):
        database_roles({}, migration_url="postgresql://owner@db/routeoptimizer", embedded=True)


@pytest.mark.django_db
def test_the_command_base_takes_an_organization_by_slug_or_id():
    acme = OrganizationFactory(slug="acme")
    command = OrganizationCommand()

    assert command.get_organization("acme") == acme
    assert command.get_organization("ACME") == acme
    assert command.get_organization(str(acme.pk)) == acme
    with pytest.raises(CommandError, match="no organization with slug or id 'nosuch'"):
        command.get_organization("nosuch")
