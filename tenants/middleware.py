"""CurrentOrganizationMiddleware: the organization of each request, checked, and made current.

After AuthenticationMiddleware: for a signed-in user it resolves the organization with
tenants.services.resolve_request_organization (subdomain, X-Organization header, primary
organization; membership checked every time), sets `request.organization` and
`request.membership`, and makes the organization current (the ContextVar, hence the ORM scope
and row level security) for the rest of the request, resetting it afterwards. An unknown
organization, or one the user does not belong to, is 404 (JSON under /api/).

Anonymous requests get no organization here: the API authenticates its bearer tokens inside
the view (after middleware), and its authentication calls the same resolver.

What PostgreSQL is told (tenants.claims): `RequestClaimsMiddleware`, right after the session
middleware, starts each request with a fresh claim state whose user is the session's (so the
account can be loaded and its session hash checked); `CurrentOrganizationMiddleware` then
claims the signed-in user (nobody for anonymous callers), authorizes the platform claim for
superusers only, and in the admin claims a staff member's organizations. The admin acts for
superusers as the platform: no organization is made current for them there.
"""

from __future__ import annotations

from contextlib import ExitStack

from django.contrib.auth import SESSION_KEY
from django.http import Http404, JsonResponse

from tenants.claims import (
    EVERYWHERE,
    platform_access,
    request_claims,
    set_claim_user,
    visible_organizations,
)
from tenants.context import organization_context
from tenants.services import OrganizationNotFound, resolve_request_organization

ADMIN_PATH_PREFIX = "/admin/"


class RequestClaimsMiddleware:
    """A fresh claim state per request (see the module docstring); after SessionMiddleware."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        session = getattr(request, "session", None)
        user_id = session.get(SESSION_KEY) if session is not None else None
        with request_claims(user_id=user_id):
            return self.get_response(request)


class CurrentOrganizationMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.organization = None
        request.membership = None
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            set_claim_user(None)
            return self.get_response(request)
        set_claim_user(user.pk)
        with ExitStack() as stack:
            if user.is_superuser:
                stack.enter_context(platform_access(EVERYWHERE))
                if request.path.startswith(ADMIN_PATH_PREFIX):
                    return self.get_response(request)
            elif user.is_staff and request.path.startswith(ADMIN_PATH_PREFIX):
                from tenants.admin import admin_organization_ids

                stack.enter_context(visible_organizations(admin_organization_ids(request)))
            return self._with_organization(request, user)

    def _with_organization(self, request, user):
        try:
            organization, membership = resolve_request_organization(request, user)
        except OrganizationNotFound as error:
            return self._not_found(request, str(error))
        request.organization = organization
        request.membership = membership
        with organization_context(organization):
            return self.get_response(request)

    @staticmethod
    def _not_found(request, message: str):
        message = (
            f"{message}: check the subdomain or the X-Organization header, and that you are a "
            f"member of that organization"
        )
        if request.path.startswith("/api/"):
            return JsonResponse({"error": message}, status=404)
        raise Http404(message)
