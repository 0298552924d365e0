"""validate_tenancy checks the tables row level security protects: the same list."""

from tenants.rls import tenant_tables
from tenants.validation import TENANT_TABLES


def test_validation_covers_every_tenant_table():
    assert set(TENANT_TABLES) == set(tenant_tables())
