"""Fixtures for the migration safety kit: migrated sample databases, copied from one template."""

import uuid

import pytest
from django.db import connections
from psycopg import sql

from routeoptimizer.database import settings_to_uri
from tests.support import ScratchDatabase


class TemplateCopy(ScratchDatabase):
    """A scratch database created as a copy of `template` (CREATE DATABASE ... TEMPLATE)."""

    def __init__(self, template: ScratchDatabase):
        self.server_settings = template.server_settings
        self.name = f"ro_scratch_{uuid.uuid4().hex[:12]}"
        self.url = settings_to_uri(self.server_settings, name=self.name)
        with self._maintenance() as connection:
            connection.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                    sql.Identifier(self.name), sql.Identifier(template.name)
                )
            )


@pytest.fixture(scope="session")
def migrated_template():
    """The bundled sample legacy database after `migrate`, migrated once per test session."""
    template = ScratchDatabase(connections["default"].settings_dict)
    try:
        template.load_sample()
        template.manage("migrate")
        yield template
    finally:
        template.drop()


@pytest.fixture
def migrated_db(migrated_template):
    """A freshly migrated sample database of its own."""
    database = TemplateCopy(migrated_template)
    yield database
    database.drop()
