"""CurrentOrganizationMiddleware: the organization of each request, checked, and made current.

After AuthenticationMiddleware: for a signed-in user it resolves the organization with
tenants.services.resolve_request_organization (subdomain, X-Organization header, primary
organization; membership checked every time), sets `request.organization` and
`request.membership`, and makes the organization current (the ContextVar, hence the ORM scope
and row level security) for the rest of the request, resetting it afterwards. An unknown
organization, or one the user does not belong to, is 404 (JSON under /api/).

Anonymous requests get no organization here: the API authenticates its bearer tokens inside
the view (after middleware), and its authentication calls the same resolver.
"""

from __future__ import annotations

from django.http import Http404, JsonResponse

from tenants.context import organization_context
from tenants.services import OrganizationNotFound, resolve_request_organization


class CurrentOrganizationMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.organization = None
        request.membership = None
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return self.get_response(request)
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
