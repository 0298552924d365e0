"""The billing endpoints of /api/v1/: the Stripe webhook, and an organization's usage."""

from __future__ import annotations

import datetime

from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions
from rest_framework.permissions import AllowAny, BasePermission, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from billing import webhooks
from billing.selectors import organization_usage
from tenants.api import OrganizationContextMixin
from tenants.models import Role

MAX_WEBHOOK_BYTES = 256 * 1024  # Stripe's events are a few kilobytes


class BillingWebhookView(APIView):
    """POST /api/v1/billing/webhook: Stripe-signed events (billing.webhooks). Anonymous: the
    signature is the only authority, and without a valid one nothing is read or written."""

    authentication_classes = []
    permission_classes = [AllowAny]
    # The exact bytes Stripe signed (request.body); nothing parses them before the signature.
    parser_classes = []

    @extend_schema(
        request={"application/json": OpenApiTypes.OBJECT},
        responses={
            200: OpenApiResponse(description="Applied, a duplicate, outdated or ignored."),
            400: OpenApiResponse(description="Bad signature, stale timestamp, malformed JSON."),
        },
        auth=[],
        summary="Stripe billing webhook (Stripe-Signature: t=...,v1=...)",
    )
    def post(self, request):
        body = request.body
        if len(body) > MAX_WEBHOOK_BYTES:
            return Response({"error": "the event is larger than 256 KB: not a Stripe event"}, 413)
        try:
            answer = webhooks.handle(body, request.META.get(webhooks.SIGNATURE_HEADER))
        except webhooks.WebhookRefused as refused:
            return Response({"error": str(refused)}, status=refused.status)
        return Response(answer)


class IsOwner(BasePermission):
    def has_permission(self, request, view) -> bool:
        role = getattr(request, "organization_role", None)
        if role != Role.OWNER:
            raise exceptions.PermissionDenied(
                f"your role '{role}' may not read the organization's usage: it is the owners'"
            )
        return True


# Periods between these years: arithmetic on them (a default `from` 30 days before `to`) never
# leaves what datetime can hold.
_YEARS = range(1970, 10000 - 1)


def _moment(name: str, value: str | None, default: datetime.datetime) -> datetime.datetime:
    if not value:
        return default
    problem = exceptions.ValidationError(
        {name: f"{value!r} is not a date (YYYY-MM-DD) or an ISO 8601 date-time from 1970 on"}
    )
    try:
        # parse_date / parse_datetime raise ValueError for well-formed impossible dates
        # (2024-02-30), and return None for what is not a date at all.
        moment = parse_datetime(value) if "T" in value or " " in value else None
        if moment is None:
            day = parse_date(value) if len(value) == 10 else None
            if day is None:
                raise problem
            moment = datetime.datetime.combine(day, datetime.time(), tzinfo=datetime.UTC)
    except ValueError:
        raise problem from None
    if moment.year not in _YEARS:
        raise problem
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment, datetime.UTC)
    return moment


class UsageView(OrganizationContextMixin, APIView):
    """GET /api/v1/usage?from=&to=: the organization's usage per metric (owners)."""

    permission_classes = [IsAuthenticated, IsOwner]

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "from",
                str,
                description="Start (inclusive), YYYY-MM-DD or ISO "
                "8601; default: 30 days before `to`.",
            ),
            OpenApiParameter("to", str, description="End (exclusive); default: now."),
        ],
        responses={200: OpenApiResponse(description="{organization, from, to, usage: {...}}")},
        summary="The organization's usage per metric for a period",
    )
    def get(self, request):
        end = _moment("to", request.query_params.get("to"), timezone.now())
        start = _moment("from", request.query_params.get("from"), end - datetime.timedelta(days=30))
        if start >= end:
            raise exceptions.ValidationError({"from": "must be before 'to'"})
        if end - start > datetime.timedelta(days=366):
            raise exceptions.ValidationError({"from": "a period is at most 366 days"})
        usage = organization_usage(organization=request.organization, start=start, end=end)
        return Response(
            {
                "organization": request.organization.slug,
                "from": usage.start.isoformat(),
                "to": usage.end.isoformat(),
                "usage": usage.totals,
            }
        )
