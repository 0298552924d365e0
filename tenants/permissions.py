"""Who may do what inside an organization: the role matrix of PRODUCT.md, in one place.

The API asks `role_can(role, resource, action)` before every request and narrows what a role
sees with `limit_to_own_rows`; the admin asks the same (tenants.admin) for every page, action
and row, and `own_rows_q` for the technician's own routes. Who may grant which role, and who
may act on which member, is `may_grant_role` / `may_manage_member`. Nothing else decides by
role.

Technicians and drivers: a technician's own routes are the routes of the driver whose email is
the technician's email (case-insensitive). The legacy drivers table has no link to users, and
the email is what both already share.
"""

from __future__ import annotations

from enum import StrEnum

from django.db.models import Q, QuerySet
from rest_framework import exceptions
from rest_framework.permissions import BasePermission

from tenants.models import Role


class Action(StrEnum):
    VIEW = "view"
    CREATE = "create"
    CHANGE = "change"
    DELETE = "delete"


class Resource(StrEnum):
    CUSTOMERS = "customers"
    DRIVERS = "drivers"
    ROUTES = "routes"
    ROUTE_STOPS = "route stops"
    # The organization's own settings page and its members (users, memberships, invitations).
    ORGANIZATION = "organization settings"
    MEMBERS = "members"
    # Service plans, agreements, payment methods; the subscription (the platform's fields:
    # organization staff only read it); usage (a report, append-only).
    BILLING = "billing"
    SUBSCRIPTION = "subscription"
    USAGE = "usage"


EVERY_ROLE = frozenset(Role)
NOBODY: frozenset[Role] = frozenset()
# "view reports" in PRODUCT.md: everyone but technicians, who see their own routes.
REPORT_READERS = frozenset({Role.OWNER, Role.ADMIN, Role.MANAGER, Role.READONLY})
BILLING_MANAGERS = frozenset({Role.OWNER})
# "create/edit customers, routes" in PRODUCT.md; drivers and stops are planned like routes.
PLANNERS = frozenset({Role.OWNER, Role.ADMIN, Role.MANAGER})
# "delete customers": removing a customer loses its history, so only the organization's admins.
ORGANIZATION_ADMINS = frozenset({Role.OWNER, Role.ADMIN})

_PLANNED_LIKE_ROUTES = {
    Action.VIEW: EVERY_ROLE,
    Action.CREATE: PLANNERS,
    Action.CHANGE: PLANNERS,
    # Removing a route, a stop or a driver is re-planning, which the planners own.
    Action.DELETE: PLANNERS,
}

ROLE_MATRIX: dict[Resource, dict[Action, frozenset[Role]]] = {
    Resource.CUSTOMERS: {
        Action.VIEW: EVERY_ROLE,
        Action.CREATE: PLANNERS,
        Action.CHANGE: PLANNERS,
        Action.DELETE: ORGANIZATION_ADMINS,
    },
    Resource.DRIVERS: _PLANNED_LIKE_ROUTES,
    Resource.ROUTES: _PLANNED_LIKE_ROUTES,
    Resource.ROUTE_STOPS: _PLANNED_LIKE_ROUTES,
    # "manage users, settings": owner and admin. Every member may read the organization's
    # page; its members list is a report. Organizations are created and deleted by the
    # platform (superusers, `manage.py create_organization`), never by a role.
    Resource.ORGANIZATION: {
        Action.VIEW: EVERY_ROLE,
        Action.CREATE: NOBODY,
        Action.CHANGE: ORGANIZATION_ADMINS,
        Action.DELETE: NOBODY,
    },
    Resource.MEMBERS: {
        Action.VIEW: REPORT_READERS,
        Action.CREATE: ORGANIZATION_ADMINS,
        Action.CHANGE: ORGANIZATION_ADMINS,
        Action.DELETE: ORGANIZATION_ADMINS,
    },
    # "manage billing": the owner; the organization's admins may read it.
    Resource.BILLING: {
        Action.VIEW: ORGANIZATION_ADMINS,
        Action.CREATE: BILLING_MANAGERS,
        Action.CHANGE: BILLING_MANAGERS,
        Action.DELETE: BILLING_MANAGERS,
    },
    # Plan tier, status, prices, trial and Stripe ids are the platform's: read-only to every role.
    Resource.SUBSCRIPTION: {
        Action.VIEW: ORGANIZATION_ADMINS,
        Action.CREATE: NOBODY,
        Action.CHANGE: NOBODY,
        Action.DELETE: NOBODY,
    },
    Resource.USAGE: {
        Action.VIEW: REPORT_READERS,
        Action.CREATE: NOBODY,
        Action.CHANGE: NOBODY,
        Action.DELETE: NOBODY,
    },
}

# Strongest first, as tenants.models.Role lists them.
ROLE_RANK: dict[Role, int] = {role: len(Role) - n for n, role in enumerate(Role)}

# "view routes: technician own only": the lookup from each resource to its driver's email.
OWN_ROWS_ONLY: dict[Role, dict[Resource, str]] = {
    Role.TECHNICIAN: {
        Resource.ROUTES: "driver__email__iexact",
        Resource.ROUTE_STOPS: "route__driver__email__iexact",
    },
}

METHOD_ACTIONS = {
    "GET": Action.VIEW,
    "HEAD": Action.VIEW,
    "OPTIONS": Action.VIEW,
    "POST": Action.CREATE,
    "PUT": Action.CHANGE,
    "PATCH": Action.CHANGE,
    "DELETE": Action.DELETE,
}


def role_can(role: Role | str | None, resource: Resource, action: Action) -> bool:
    if role is None:
        return False
    return Role(role) in ROLE_MATRIX[resource][action]


def role_rank(role: Role | str | None) -> int:
    return 0 if role is None else ROLE_RANK[Role(role)]


def may_grant_role(actor_role: Role | str | None, role: Role | str) -> bool:
    """Whether a member with `actor_role` may give someone `role`: only those who manage
    members, and never a role above their own."""
    return role_can(actor_role, Resource.MEMBERS, Action.CHANGE) and role_rank(role) <= role_rank(
        actor_role
    )


def may_manage_member(actor_role: Role | str | None, member_role: Role | str) -> bool:
    """Whether a member with `actor_role` may change or remove a member holding `member_role`:
    nobody acts on a role above their own (an admin does not demote an owner)."""
    return may_grant_role(actor_role, member_role)


def own_rows_q(*, role: Role | str, resource: Resource, user) -> Q | None:
    """The condition on `resource` rows that limits `role` to its own, None when it sees all
    (the admin combines it per organization; the API uses `limit_to_own_rows`)."""
    lookup = OWN_ROWS_ONLY.get(Role(role), {}).get(resource)
    if lookup is None:
        return None
    if not user.email:
        return Q(pk__in=[])
    return Q(**{lookup: user.email})


def limit_to_own_rows(
    queryset: QuerySet, *, role: Role | str, resource: Resource, user
) -> QuerySet:
    """The rows of `queryset` this role may see: all, or for technicians their own routes'."""
    condition = own_rows_q(role=role, resource=resource, user=user)
    return queryset if condition is None else queryset.filter(condition)


class RolePermission(BasePermission):
    """DRF permission: the request's role in its organization against the view's resource."""

    def has_permission(self, request, view) -> bool:
        role = getattr(request, "organization_role", None)
        organization = getattr(request, "organization", None)
        if role is None or organization is None:
            return False
        action = METHOD_ACTIONS.get(request.method)
        if action is None or not role_can(role, view.resource, action):
            raise exceptions.PermissionDenied(
                f"your role '{role}' in organization '{organization.slug}' may not "
                f"{action or request.method.lower()} {view.resource}; "
                f"ask an owner or admin of the organization for a role that may"
            )
        return True
