"""API plumbing shared by every endpoint: pagination and the one error shape.

Every error the API returns is `{"error": "<one line: the problem and the fix>"}`, with
`"fields": {...}` added for invalid input. The legacy /api/customers also carries FastAPI's
`"detail"` key, which its old clients read.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db.models import ProtectedError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import exception_handler as drf_exception_handler

from billing.limits import PlanLimitReached
from routeoptimizer.client_address import client_address
from routeoptimizer.parsers import JSONParser

JSON_FIX = 'send a JSON object with "Content-Type: application/json"'


class Pagination(PageNumberPagination):
    """`?page=N&page_size=M`: {"count", "next", "previous", "results"}."""

    page_size_query_param = "page_size"
    max_page_size = 500


class ClientAddressRateThrottle(ScopedRateThrottle):
    """DRF's scoped rate throttle (`throttle_scope` on the view), counted per client address as
    routeoptimizer.client_address determines it: a new X-Forwarded-For per request is the same
    client unless trusted proxies put it there."""

    @property
    def THROTTLE_RATES(self):
        # Read when used, not once at import: the rates follow settings (and the tests' changes).
        return api_settings.DEFAULT_THROTTLE_RATES

    def get_ident(self, request):
        return client_address(request._request) or "unknown"

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


def one_line(text: str) -> str:
    return " ".join(str(text).split())


def _flatten(detail, prefix: str = "") -> list[str]:
    """Validation messages as 'field: message' lines, nested fields joined with dots."""
    if isinstance(detail, dict):
        lines = []
        for key, value in detail.items():
            name = "" if key == "non_field_errors" else f"{prefix}{key}"
            lines += _flatten(value, f"{name}." if name else "")
        return lines
    if isinstance(detail, list):
        return [line for item in detail for line in _flatten(item, prefix)]
    field = prefix.rstrip(".")
    return [f"{field}: {detail}" if field else str(detail)]


def _not_found_message(view, request) -> str:
    organization = getattr(request, "organization", None)
    model = getattr(view, "model", None)
    if model is not None and organization is not None:
        return (
            f"no {model._meta.verbose_name} with this id in organization '{organization.slug}'; "
            f"list them with GET {request.path.rsplit('/', 2)[0]}/"
        )
    return "not found: check the URL and the id"


def exception_handler(exc, context):
    view = context.get("view")
    request = context.get("request")
    extra = {}

    if isinstance(exc, RequestDataTooBig):  # Django's own limit, met when DRF reads the body
        exc = JSONParser._too_large(settings.DATA_UPLOAD_MAX_MEMORY_SIZE)
    if isinstance(exc, PlanLimitReached):  # billing.limits: the write the plan does not allow
        exc = exceptions.APIException(str(exc))
        exc.status_code = status.HTTP_402_PAYMENT_REQUIRED
    elif isinstance(exc, ProtectedError):
        blocking = {str(type(obj)._meta.verbose_name_plural) for obj in exc.protected_objects}
        exc = exceptions.APIException(
            f"still referenced by {', '.join(sorted(blocking))}; "
            f"reassign or delete those first, then retry"
        )
        exc.status_code = status.HTTP_409_CONFLICT
    elif isinstance(exc, Http404) or (
        isinstance(exc, exceptions.NotFound) and str(exc.detail) == "Not found."
    ):
        exc = exceptions.NotFound(_not_found_message(view, request))

    response = drf_exception_handler(exc, context)
    if response is None:
        return None  # an unexpected error: Django's 500 handling and logging

    if isinstance(exc, exceptions.ParseError):
        message = f"malformed JSON: {exc.detail}; {JSON_FIX}"
    elif isinstance(exc, exceptions.UnsupportedMediaType):
        message = f"unsupported media type: {exc.detail}; {JSON_FIX}"
    elif isinstance(exc, exceptions.ValidationError):
        lines = _flatten(exc.detail)
        message = "invalid input: " + "; ".join(lines) + "; fix these fields and retry"
        fields = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        extra["fields"] = fields
    elif isinstance(exc, exceptions.NotAuthenticated):
        message = (
            "authentication required: send 'Authorization: Bearer <token>'; "
            "get a token with POST /api/v1/auth/token"
        )
    elif isinstance(exc, exceptions.Throttled):
        message = f"too many requests: retry in {exc.wait or 1:.0f} seconds"
    else:
        message = (
            str(exc.detail)
            if not isinstance(exc.detail, (list, dict))
            else "; ".join(_flatten(exc.detail))
        )

    body = _encodable({"error": one_line(message), **extra})
    if getattr(view, "legacy_error_shape", False):
        body["detail"] = body["error"]
    return Response(body, status=response.status_code, headers=_headers(response))


def _encodable(value):
    """Error messages quote the input ('"a\\ud800" is not a valid choice'): a lone surrogate in
    it cannot be encoded as UTF-8, so it is shown escaped instead of failing the response."""
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, dict):
        return {_encodable(key): _encodable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_encodable(item) for item in value]
    return value


def _headers(response) -> dict:
    names = ("WWW-Authenticate", "Retry-After", "Allow")
    return {name: response[name] for name in names if name in response}
