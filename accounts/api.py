"""POST /api/v1/auth/token issues a bearer token for one organization; DELETE revokes it."""

from __future__ import annotations

from django.contrib.auth import authenticate
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from accounts.services import api_token_issue, api_token_revoke
from tenants.api import OrganizationContextMixin
from tenants.context import organization_context
from tenants.models import OrganizationUser


class TokenRequestSerializer(serializers.Serializer):
    email = serializers.EmailField()
    password = serializers.CharField(trim_whitespace=False, style={"input_type": "password"})
    organization = serializers.SlugField(
        required=False, help_text="Slug of the organization; default: your primary one."
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


def _membership(user, slug: str | None) -> OrganizationUser:
    memberships = OrganizationUser.objects.select_related("organization").filter(user=user)
    if slug:
        membership = memberships.filter(organization__slug=slug).first()
        if membership is None:
            # Unknown and not-a-member read the same: no probing for other organizations.
            raise exceptions.NotFound(
                f"unknown organization '{slug}' (or you are not a member); "
                f"check the slug, or leave organization out to use your primary organization"
            )
        return membership
    membership = memberships.filter(is_primary_org=True).first()
    if membership is None:
        only = list(memberships[:2])
        if len(only) == 1:
            return only[0]
        raise exceptions.NotFound(
            "no primary organization for this user; send organization (a slug) in the body"
            if only
            else "this user belongs to no organization; ask an owner to invite you"
        )
    return membership


class AuthTokenView(OrganizationContextMixin, APIView):
    throttle_scope = "auth_token"

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
        return [ScopedRateThrottle()] if self.request.method == "POST" else []

    @extend_schema(
        request=TokenRequestSerializer,
        responses={
            201: TokenResponseSerializer,
            401: OpenApiResponse(description="Wrong email or password."),
            404: OpenApiResponse(description="Unknown organization, or not a member."),
        },
        auth=[],
        summary="Issue a bearer token for one organization",
    )
    def post(self, request):
        form = TokenRequestSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        user = authenticate(request._request, email=data["email"], password=data["password"])
        if user is None:
            raise exceptions.AuthenticationFailed(
                "wrong email or password; check both, or reset the password"
            )
        membership = _membership(user, data.get("organization"))
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
