"""The unversioned /api/customers of the old single-tenant application, kept for its clients.

Same answers as before: a JSON array of customer objects with the legacy column names
(`assigned_driver_id`, naive UTC timestamps, no organization), or one such object.

Which organization: a bearer token's, when the caller sends one. Old clients send none; they
get the organization named by ROUTEOPTIMIZER_LEGACY_API_ORGANIZATION, exactly the rows they saw
before the migration and never anyone else's, but only while that setting is on: the cutover
window of the runbook, while the old clients learn to send tokens. Off (empty, the default), a
token is mandatory here too; a deactivated organization is never served. Every caller is
throttled per client address (ROUTEOPTIMIZER_LEGACY_API_RATE).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, time

from django.conf import settings
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import ApiToken
from routeoptimizer.api import ClientAddressRateThrottle
from routing.legacy import LEGACY_COLUMNS
from routing.models import Customer
from tenants.api import OrganizationContextMixin
from tenants.claims import platform_access
from tenants.context import current_organization
from tenants.models import Organization
from tenants.permissions import Action, Resource, role_can

LEGACY_CUSTOMER_FIELDS = tuple(column.name for column in LEGACY_COLUMNS["customers"])
SUCCESSOR = "/api/v1/customers/"


def legacy_value(value):
    """A value as the old FastAPI application serialized it."""
    if isinstance(value, datetime):
        # The legacy columns are `timestamp without time zone` holding UTC: no offset.
        return value.astimezone(UTC).replace(tzinfo=None).isoformat()
    if isinstance(value, time):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def legacy_customer(row: dict) -> dict:
    return {name: legacy_value(row[name]) for name in LEGACY_CUSTOMER_FIELDS}


@extend_schema(exclude=True)  # a compatibility contract, not part of the v1 API
class LegacyCustomerView(OrganizationContextMixin, APIView):
    permission_classes = [AllowAny]
    throttle_classes = [ClientAddressRateThrottle]
    throttle_scope = "legacy_customers"
    legacy_error_shape = True  # errors carry FastAPI's "detail" key as well

    def get_request_organization(self, request):
        if isinstance(request.auth, ApiToken):  # a bearer token's organization
            if not role_can(request.organization_role, Resource.CUSTOMERS, Action.VIEW):
                raise exceptions.PermissionDenied("your role may not view customers")
            return request.organization
        slug = settings.ROUTEOPTIMIZER_LEGACY_API_ORGANIZATION
        if not slug:
            raise exceptions.NotAuthenticated()
        requested = request.META.get("HTTP_X_ORGANIZATION", "").strip()
        if requested and requested != slug:
            raise exceptions.NotFound(
                f"unknown organization '{requested}': without a token this endpoint serves "
                f"'{slug}' only; send a bearer token for that organization"
            )
        # The operator's setting names it, not the caller: Django may look it up as the platform
        # (an anonymous caller's claim sees no organization), for this one query.
        with platform_access():
            organization = Organization.objects.filter(slug=slug, is_active=True).first()
        if organization is None:
            raise exceptions.NotFound(
                f"unknown or deactivated organization '{slug}' "
                f"(ROUTEOPTIMIZER_LEGACY_API_ORGANIZATION); send a bearer token"
            )
        request.organization = organization
        return organization

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        response["Deprecation"] = "true"
        response["Link"] = f'<{SUCCESSOR}>; rel="successor-version"'
        return response

    def customers(self):
        organization = current_organization("the legacy customers API")
        return Customer.objects.filter(organization=organization).order_by("display_name", "id")

    def get(self, request, customer_id: str | None = None):
        if customer_id is None:
            rows = self.customers().values(*LEGACY_CUSTOMER_FIELDS)
            return Response([legacy_customer(row) for row in rows])
        try:
            customer_id = uuid.UUID(customer_id)
        except ValueError:
            raise exceptions.NotFound("Customer not found") from None
        row = self.customers().filter(id=customer_id).values(*LEGACY_CUSTOMER_FIELDS).first()
        if row is None:
            raise exceptions.NotFound("Customer not found")
        return Response(legacy_customer(row))
