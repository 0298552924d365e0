"""Bearer-token authentication for the API: `Authorization: Bearer <token>`.

A token names one user and one organization. Authentication hashes the presented token, finds
it, checks it is neither revoked nor expired and that the user is still an active member of the
organization, then binds the request to that organization and role (`request.organization`,
`request.organization_role`); tenants.api makes it the current organization for the request.
Which organization a request is for is decided in one place for sessions and tokens alike,
tenants.services.resolve_request_organization (subdomain, `X-Organization` header, membership
checked every time), with the token's organization as the default. A request that names
another organization than the token's gets 404, as if that organization did not exist.
"""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header

from accounts.selectors import api_token_for_key
from accounts.services import api_token_record_use
from tenants.claims import platform_access, set_claim_user
from tenants.context import organization_context
from tenants.models import Organization, Role
from tenants.selectors import accepted_membership
from tenants.services import (
    ORGANIZATION_HEADER,
    OrganizationNotFound,
    resolve_request_organization,
    subdomain_slug,
)

NEW_TOKEN_HINT = "get a new one with POST /api/v1/auth/token"


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

        # One query: the token, and while it is usable its membership with its user and
        # organization, only the columns used.
        api_token, membership = api_token_for_key(key)
        if api_token is None or not api_token.is_usable():
            raise exceptions.AuthenticationFailed(
                f"invalid, expired or revoked token; {NEW_TOKEN_HINT}"
            )
        # From here on the request is the token's user's: PostgreSQL shows it that account, its
        # memberships and the organizations it belongs to (tenants.claims).
        set_claim_user(api_token.user_id)
        if membership is None:
            # Gone, or the database's clock already says expired where ours does not: asked
            # again as the user, as before (the rare path may cost a query more).
            membership = accepted_membership(api_token.user_id, api_token.organization_id)
        if membership is None or not membership.user.is_active:
            # The organization is hidden once the membership is gone; its slug, which the token's
            # holder knew, is still worth naming.
            with platform_access():
                slug, active = (
                    Organization.objects.filter(pk=api_token.organization_id)
                    .values_list("slug", "is_active")
                    .first()
                ) or (None, True)
            if membership is not None or active:
                raise exceptions.AuthenticationFailed(
                    f"this token's user is no longer an active member of organization '{slug}'; "
                    f"ask an owner to re-invite you, then {NEW_TOKEN_HINT}"
                )
            membership_organization_slug = slug
        else:
            membership_organization_slug = membership.organization.slug
            active = membership.organization.is_active
        if not active:
            raise exceptions.AuthenticationFailed(
                f"organization '{membership_organization_slug}' is deactivated; an operator can "
                f"reactivate it in the admin"
            )
        user, organization = membership.user, membership.organization
        api_token.user, api_token.organization = user, organization
        named = subdomain_slug(request.get_host()) or request.META.get(ORGANIZATION_HEADER, "")
        named = named.strip()
        if named:
            # The request names an organization: the one resolver decides, as for sessions.
            self._check_named_organization(request, user, organization, named)
        request.organization = organization
        request.organization_role = Role(membership.role)
        with organization_context(organization):  # the token row is that organization's
            api_token_record_use(api_token=api_token)
        return user, api_token

    @staticmethod
    def _check_named_organization(request, user, organization, named: str) -> None:
        try:
            resolved, _ = resolve_request_organization(request, user, default=organization)
        except OrganizationNotFound:
            if named.lower() in ("", organization.slug.lower()):  # the membership is gone
                raise exceptions.AuthenticationFailed(
                    f"this token's user is no longer an active member of organization "
                    f"'{organization.slug}'; ask an owner to re-invite you, then {NEW_TOKEN_HINT}"
                ) from None
            resolved = None
        if resolved is None or resolved.pk != organization.pk:
            # Exactly the answer an unknown organization gets: the token's holder learns
            # nothing about organizations it does not belong to.
            raise exceptions.NotFound(
                f"unknown organization '{named}': this token is for '{organization.slug}'; "
                f"drop the X-Organization header (or subdomain) or use a token for that "
                f"organization"
            )

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
