"""Fixtures of the API suite: two organizations with data, and clients holding their tokens."""

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from accounts.services import api_token_issue
from tenants.models import Role
from tests.tenancy_data import seed_two_organizations


@pytest.fixture(autouse=True)
def _fresh_throttle_counts():
    # The token endpoint's throttle counts live in the cache; each test starts from zero.
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def organizations(db):
    """(acme, blue): two organizations with rows in every tenant table."""
    return seed_two_organizations()


@pytest.fixture
def acme(organizations):
    return organizations[0]


@pytest.fixture
def blue(organizations):
    return organizations[1]


def client_with_token(token: str, **headers) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}", **headers)
    return client


@pytest.fixture
def client_as():
    """client_as(data, role): an API client holding a token of that member of the organization."""

    def make(data, role: Role = Role.OWNER, **headers) -> APIClient:
        token, _ = api_token_issue(user=data.members[role], organization=data.organization)
        return client_with_token(token, **headers)

    return make
