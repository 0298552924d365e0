"""Fixtures of the plan suites: an organization with a member per role, and API clients."""

import pytest
from rest_framework.test import APIClient

from accounts.services import api_token_issue
from tenants.claims import platform_access
from tenants.context import organization_context
from tenants.models import Organization, Role
from tests.tenancy_data import seed_organization


@pytest.fixture
def acme(db):
    """Acme: 5 members (one per role), 2 drivers, 3 customers, routes on monday and tuesday."""
    return seed_organization("acme", "Acme Pools")


@pytest.fixture
def blue(db):
    return seed_organization("blue", "Blue Lagoon Service")


def set_columns(organization: Organization, **columns) -> Organization:
    """The platform's change of an organization's plan columns, as test set-up."""
    with organization_context(None), platform_access():
        Organization.objects.filter(pk=organization.pk).update(**columns)
        return Organization.objects.get(pk=organization.pk)


@pytest.fixture
def client_as():
    """client_as(data, role): an API client holding a token of that member."""

    def make(data, role: Role = Role.OWNER) -> APIClient:
        token, _ = api_token_issue(user=data.members[role], organization=data.organization)
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        return client

    return make
