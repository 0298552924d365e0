"""Fixtures shared by every suite: the test database (made by the owner role, used by the
application role) and scratch databases on the same PostgreSQL."""

import os

import pytest
from django.db import connections

from tenants.roles import APPLICATION, OWNER, use_role
from tests.database_roles import prepare_application_role
from tests.support import ScratchDatabase


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix, django_db_keepdb):
    """Before pytest-django creates the test database: a name of this run's own (concurrent runs
    on one server do not drop each other's), and the owner role to create and migrate it."""
    from django.conf import settings

    default = settings.DATABASES["default"]
    test = default.setdefault("TEST", {})
    if not django_db_keepdb:
        test["NAME"] = f"{test.get('NAME') or 'test_' + default['NAME']}_{os.getpid()}"
    prepare_application_role()
    use_role(OWNER)


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup):
    """The test database exists and is migrated: the tests run as the application role, which
    owns no table, so row level security binds every query they make. The owner drops it."""
    use_role(APPLICATION)
    yield
    use_role(OWNER)


@pytest.fixture(autouse=True, scope="session")
def _platform_claims_for_the_session():
    """The same for what pytest-django does around a test before our function fixtures run
    (restoring a serialized database, flushing): it is set-up code too."""
    from tenants.claims import platform_access

    with platform_access():
        yield


@pytest.fixture(autouse=True)
def platform_claims(request):
    """Test setup code acts as the platform (it builds two organizations' rows, their accounts
    and memberships), as a superuser's admin would: tenants.claims signs it the platform claim
    while no organization is current. Requests through the test client start their own claim
    state (tenants.middleware), and `organization_context` narrows to one organization, so what
    the suite asserts about isolation still goes through PostgreSQL's verification. Suites about
    the database boundary itself opt out with the `no_platform_claims` marker."""
    from tenants.claims import platform_access, request_claims

    # A fresh claim state per test, as per request: a sign-in in one test (which claims its
    # user for the rest of its scope) must not carry into the next.
    with (
        request_claims(),
        platform_access(not request.node.get_closest_marker("no_platform_claims")),
    ):
        yield


@pytest.fixture(autouse=True)
def _fresh_api_call_meter():
    """API calls counted in one test are never written into another's database state."""
    from billing import meter

    meter.discard()
    yield
    meter.discard()


@pytest.fixture
def make_scratch_db():
    """Create empty databases of their own on the test server; all dropped after the test."""
    created = []

    def make() -> ScratchDatabase:
        database = ScratchDatabase(connections["default"].settings_dict)
        created.append(database)
        return database

    yield make
    for database in created:
        database.drop()


@pytest.fixture
def scratch_db(make_scratch_db):
    """An empty database of its own on the test server."""
    return make_scratch_db()


@pytest.fixture
def legacy_db(make_scratch_db):
    """A database holding the bundled sample legacy database (billing columns included)."""
    database = make_scratch_db()
    database.load_sample()
    return database
