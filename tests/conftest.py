"""Fixtures shared by every suite: scratch databases on the same PostgreSQL as the test database."""

import pytest
from django.db import connections

from tests.support import ScratchDatabase


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
