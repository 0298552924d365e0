"""Bearer-token authentication for the API: `Authorization: Bearer <token>`.

A token names one user and one organization. Authentication hashes the presented token, finds
it, checks it is neither revoked nor expired and that the user is still an active member of the
organization, then binds the request to that organization and role (`request.organization`,
`request.organization_role`); tenants.api makes it the current organization for the request.
A request that also names an organization (`X-Organization: <slug>`) must name the token's own,
or it gets 404 as if that organization did not exist.
"""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header

from accounts.selectors import api_token_for_key
from accounts.services import api_token_record_use
from tenants.permissions import organization_role

NEW_TOKEN_HINT = "get a new one with POST /api/v1/auth/token"
ORGANIZATION_HEADER = "HTTP_X_ORGANIZATION"


class BearerTokenAuthentication(BaseAuthentication):
    keyword = b"bearer"

    def authenticate(self, request):
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != self.keyword:
            return None  # not ours: other authenticators, or anonymous
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed(
                "malformed Authorization header: send 'Authorization: Bearer <token>' "
                "with the token and nothing else"
            )
        try:
            key = parts[1].decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed(
                f"malformed token: tokens are ASCII; {NEW_TOKEN_HINT}"
            ) from None

        api_token = api_token_for_key(key)
        if api_token is None or not api_token.is_usable():
            raise exceptions.AuthenticationFailed(
                f"invalid, expired or revoked token; {NEW_TOKEN_HINT}"
            )
        user, organization = api_token.user, api_token.organization
        role = organization_role(user, organization)
        if role is None:
            raise exceptions.AuthenticationFailed(
                f"this token's user is no longer an active member of organization "
                f"'{organization.slug}'; ask an owner to re-invite you, then {NEW_TOKEN_HINT}"
            )

        requested = request.META.get(ORGANIZATION_HEADER, "").strip()
        if requested and requested != organization.slug:
            # Exactly the answer an unknown organization gets: the token's holder learns
            # nothing about organizations it does not belong to.
            raise exceptions.NotFound(
                f"unknown organization '{requested}': this token is for '{organization.slug}'; "
                f"drop the X-Organization header or use a token for that organization"
            )

        request.organization = organization
        request.organization_role = role
        api_token_record_use(api_token=api_token)
        return user, api_token

    def authenticate_header(self, request):
        return 'Bearer realm="api"'


class BearerTokenScheme(OpenApiAuthenticationExtension):
    """How drf-spectacular describes this authentication in the OpenAPI schema."""

    target_class = "accounts.authentication.BearerTokenAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A token from POST /api/v1/auth/token, bound to one organization.",
        }
