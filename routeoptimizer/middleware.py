"""RejectMalformedRequestMiddleware: a request whose path, query string or headers hold a NUL byte
or a lone surrogate is a 400 before anything reads it.

Neither can be stored in PostgreSQL (psycopg refuses NUL in text; a surrogate is not UTF-8), so
any such value that reached a query (an X-Organization slug, a filter, the User-Agent django-axes
records on a failed sign-in) would be a 500 instead of an answer. No legitimate client sends
them. Request bodies are the parsers' and serializers' job (routeoptimizer.parsers.JSONParser, DRF's
CharField validators).
"""

from __future__ import annotations

import re

from django.http import HttpResponseBadRequest, JsonResponse

_FORBIDDEN = re.compile("[\x00\ud800-\udfff]")
MESSAGE = (
    "malformed request: the {where} holds a NUL byte or a lone surrogate; send text without them"
)


def _forbidden(value) -> bool:
    return isinstance(value, str) and _FORBIDDEN.search(value) is not None


def bad_request(request, message: str):
    """400 with one line: JSON under /api/, plain text elsewhere."""
    if request.path_info.startswith("/api/"):
        return JsonResponse({"error": message}, status=400)
    return HttpResponseBadRequest(message + "\n", content_type="text/plain; charset=utf-8")


class RejectMalformedRequestMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        where = self._malformed_part(request)
        if where is not None:
            return bad_request(request, MESSAGE.format(where=where))
        return self.get_response(request)

    @staticmethod
    def _malformed_part(request) -> str | None:
        if _forbidden(request.path_info):
            return "path"
        for name, value in request.META.items():
            if name.startswith("HTTP_") and _forbidden(value):
                return f"{name[5:].replace('_', '-').title()} header"
        if _forbidden(request.META.get("QUERY_STRING", "")):
            return "query string"
        # Decoded: %00 becomes a NUL byte only here.
        for name, values in request.GET.lists():
            if _forbidden(name) or any(_forbidden(value) for value in values):
                return "query string"
        return None
