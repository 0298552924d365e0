"""validate_tenancy checks the tables row level security protects: the same list."""

from tenants.conversion.validation import TENANT_TABLES
from tenants.rls import tenant_tables


def test_validation_covers_every_tenant_table():
    assert set(TENANT_TABLES) == set(tenant_tables())
