"""Fixtures of the admin suite: two organizations with data, their staff and a superuser."""

import pytest
from django.contrib.auth.models import Permission

from accounts.models import User
from accounts.services import api_token_issue
from tenants.models import Role
from tests.tenancy_data import PASSWORD, seed_two_organizations


@pytest.fixture
def organizations(db):
    acme, blue = seed_two_organizations()
    for data in (acme, blue):
        for role in (Role.OWNER, Role.ADMIN):
            api_token_issue(user=data.members[role], organization=data.organization, name="ci")
    return acme, blue


@pytest.fixture
def acme(organizations):
    return organizations[0]


@pytest.fixture
def blue(organizations):
    return organizations[1]


@pytest.fixture
def acme_staff(acme):
    """Staff, not superuser, with every admin permission: the membership alone must limit it."""
    user = acme.members[Role.ADMIN]
    user.is_staff = True
    user.save()
    user.user_permissions.set(Permission.objects.all())
    return User.objects.get(pk=user.pk)  # fresh, without the permission cache


@pytest.fixture
def superuser(db):
    return User.objects.create_superuser("root@operator.test", PASSWORD)


def make_staff(user) -> User:
    """Admin access and every model permission Django has: only the membership's role and the
    platform's rules may limit what this user does in the admin."""
    user.is_staff = True
    user.save()
    user.user_permissions.set(Permission.objects.all())
    return User.objects.get(pk=user.pk)  # fresh, without the permission cache


@pytest.fixture
def staff(acme, blue):
    """{"acme": {role: user}, "blue": {role: user}}: every member of both organizations is staff
    with every model permission."""
    return {
        data.slug: {role: make_staff(user) for role, user in data.members.items()}
        for data in (acme, blue)
    }
