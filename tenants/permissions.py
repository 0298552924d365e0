"""Who may do what inside an organization: the role matrix of PRODUCT.md, in one place.

The API asks `role_can(role, resource, action)` before every request and narrows what a role
sees with `limit_to_own_rows`. Nothing else decides by role.

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


EVERY_ROLE = frozenset(Role)
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
}

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


def limit_to_own_rows(
    queryset: QuerySet, *, role: Role | str, resource: Resource, user
) -> QuerySet:
    """The rows of `queryset` this role may see: all, or for technicians their own routes'."""
    lookup = OWN_ROWS_ONLY.get(Role(role), {}).get(resource)
    if lookup is None:
        return queryset
    if not user.email:
        return queryset.none()
    return queryset.filter(Q(**{lookup: user.email}))


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
