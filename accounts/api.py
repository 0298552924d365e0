"""POST /api/v1/auth/token issues a bearer token for one organization; DELETE revokes it."""

from __future__ import annotations

from django.contrib.auth import authenticate
from django.contrib.auth.signals import user_login_failed
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.services import api_token_issue, api_token_revoke
from accounts.signin import lockout_response
from routeoptimizer.api import ClientAddressRateThrottle
from tenants.api import OrganizationContextMixin
from tenants.context import organization_context
from tenants.models import OrganizationUser
from tenants.services import (
    AmbiguousOrganization,
    NoUsableMembership,
    OrganizationNotFound,
    sign_in_membership,
)


class TokenRequestSerializer(serializers.Serializer):
    email = serializers.EmailField(max_length=255)
    # Bounded: hashing a megabyte-long password is work an anonymous caller should not get.
    password = serializers.CharField(
        trim_whitespace=False, max_length=4096, style={"input_type": "password"}
    )
    organization = serializers.SlugField(
        required=False,
        max_length=100,
        help_text="Slug of the organization; default: your primary one.",
    )
    name = serializers.CharField(
        required=False, default="", max_length=100, help_text="A label, e.g. 'dispatch board'."
    )


class TokenResponseSerializer(serializers.Serializer):
    token = serializers.CharField(help_text="Shown once; send it as 'Authorization: Bearer ...'.")
    token_type = serializers.CharField()
    organization = serializers.SlugField()
    role = serializers.CharField()
    expires_at = serializers.DateTimeField(allow_null=True)


WRONG_CREDENTIALS = "wrong email or password; check both, or reset the password"


def _wrong_credentials() -> Response:
    return Response(
        {"error": WRONG_CREDENTIALS},
        status=status.HTTP_401_UNAUTHORIZED,
        headers={"WWW-Authenticate": 'Bearer realm="api"'},
    )


def _membership(user, slug: str | None) -> OrganizationUser:
    """The membership to issue a token for, by the rule that authenticates tokens
    (tenants.services.sign_in_membership); NoUsableMembership passes through."""
    try:
        return sign_in_membership(user, slug=slug)
    except OrganizationNotFound:
        # Unknown and not-a-member read the same: no probing for other organizations.
        raise exceptions.NotFound(
            f"unknown organization '{slug}' (or you are not a member); "
            f"check the slug, or leave organization out to use your primary organization"
        ) from None
    except AmbiguousOrganization:
        raise exceptions.NotFound(
            "no primary organization for this user; send organization (a slug) in the body"
        ) from None


class AuthTokenView(OrganizationContextMixin, APIView):
    throttle_scope = "auth_token"
    # Revoking one's own token is not a change of the organization's data: allowed read-only,
    # and allowed to a canceled or suspended organization's members too (billing.access).
    writes_need_subscription = False
    open_whatever_the_subscription = frozenset({"DELETE"})

    def get_authenticators(self):
        # Issuing takes a password, not a token: a stale Authorization header must not get in
        # the way. Revoking takes the token being revoked.
        if getattr(self.request, "method", None) == "POST":
            return []
        return super().get_authenticators()

    def get_authenticate_header(self, request):
        return 'Bearer realm="api"'  # wrong credentials are 401, even where no token is read

    def get_permissions(self):
        if self.request.method == "POST":
            return [AllowAny()]
        return [IsAuthenticated()]

    def get_throttles(self):
        return [ClientAddressRateThrottle()] if self.request.method == "POST" else []

    @extend_schema(
        request=TokenRequestSerializer,
        responses={
            201: TokenResponseSerializer,
            401: OpenApiResponse(description="Wrong email or password."),
            404: OpenApiResponse(description="Unknown organization, or not a member."),
            429: OpenApiResponse(description="Too many failed sign-ins: locked out for a while."),
        },
        auth=[],
        summary="Issue a bearer token for one organization",
    )
    def post(self, request):
        form = TokenRequestSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        # django-axes (first in AUTHENTICATION_BACKENDS) refuses a locked-out account or client
        # address before the password is checked, and counts every failure.
        # A refusal is returned, not raised: DRF rolls the request's transaction back on a raised
        # APIException, and axes' record of this failure is in that transaction.
        user = authenticate(request._request, email=data["email"], password=data["password"])
        if getattr(request._request, "axes_locked_out", False):
            return lockout_response(request._request)
        if user is None:
            return _wrong_credentials()
        try:
            membership = _membership(user, data.get("organization"))
        except NoUsableMembership:
            # A pending invitation, a deactivated organization, no membership: the password
            # opens nothing, so it is not confirmed either; counted like a wrong one.
            user_login_failed.send(
                sender=__name__, credentials={"email": user.email}, request=request._request
            )
            if getattr(request._request, "axes_locked_out", False):
                return lockout_response(request._request)
            return _wrong_credentials()
        if refused := _closed(membership.organization):
            # A canceled or suspended organization answers nobody: no new token either.
            return refused
        with organization_context(membership.organization):  # the token row is that one's
            token, api_token = api_token_issue(
                user=user, organization=membership.organization, name=data["name"]
            )
        body = {
            "token": token,
            "token_type": "Bearer",
            "organization": membership.organization.slug,
            "role": membership.role,
            "expires_at": api_token.expires_at,
        }
        return Response(TokenResponseSerializer(body).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        request=None,
        responses={204: OpenApiResponse(description="The presented token is revoked.")},
        summary="Revoke the presented bearer token",
    )
    def delete(self, request):
        api_token_revoke(api_token=request.auth)
        return Response(status=status.HTTP_204_NO_CONTENT)


def _closed(organization) -> Response | None:
    """The subscription's refusal (billing.plans.check_access, as a read: a past-due
    organization still signs in to read), or None when the organization is open."""
    from billing.limits import enabled
    from billing.plans import AccessRefused, check_access

    if not enabled():
        return None
    try:
        check_access(organization, write=False)
    except AccessRefused as refused:
        return Response({"error": str(refused)}, status=refused.status)
    return None
