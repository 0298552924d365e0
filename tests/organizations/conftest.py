"""Fixtures for import/export/remove_organization: a shared database (the migrated sample, whose
organization `demo` holds the sample's ids) and legacy sources, each prepared once per session
and copied per test with CREATE DATABASE ... TEMPLATE."""

import pytest
from django.db import connections

from bench.legacy_data import build_legacy_database
from tests.support import ScratchDatabase
from tests.validation.conftest import TemplateCopy

# A second legacy database: random ids (no clash with the sample's), no billing columns.
SYNTHETIC_CUSTOMERS = 240


@pytest.fixture(scope="session")
def shared_template():
    template = ScratchDatabase(connections["default"].settings_dict)
    try:
        template.load_sample()
        template.manage("migrate")
        yield template
    finally:
        template.drop()


@pytest.fixture(scope="session")
def synthetic_template():
    template = ScratchDatabase(connections["default"].settings_dict)
    try:
        build_legacy_database(
            template.url, SYNTHETIC_CUSTOMERS, billing_columns=False, progress=lambda _: None
        )
        yield template
    finally:
        template.drop()


@pytest.fixture(scope="session")
def sample_template():
    template = ScratchDatabase(connections["default"].settings_dict)
    try:
        template.load_sample()
        yield template
    finally:
        template.drop()


def _copy(template):
    database = TemplateCopy(template)
    yield database
    database.drop()


@pytest.fixture
def shared_db(shared_template):
    yield from _copy(shared_template)


@pytest.fixture
def sample_source(sample_template):
    """The bundled sample legacy database (billing columns), its ids those of `demo`."""
    yield from _copy(sample_template)


@pytest.fixture
def synthetic_source(synthetic_template):
    yield from _copy(synthetic_template)
