"""The API's JSON parser: DRF's, bounded in size and depth.

Its own module: DRF imports DEFAULT_PARSER_CLASSES while rest_framework.views initializes, so
this must not import rest_framework.views (routeoptimizer.api does).
"""

from __future__ import annotations

import json

from django.conf import settings
from rest_framework import exceptions, parsers, status

# Deeper JSON than this is no resource of this API; refusing it early also keeps recursive code
# (validation, error rendering) far from Python's recursion limit.
MAX_JSON_DEPTH = 32
TOO_DEEP = f"JSON nested deeper than {MAX_JSON_DEPTH} levels"


class RequestBodyTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "request_too_large"


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser with bounds: at most DATA_UPLOAD_MAX_MEMORY_SIZE bytes (DRF reads the
    body itself, so Django's own limit does not apply) and MAX_JSON_DEPTH levels of nesting.
    Either is one 4xx line instead of a worker busy for seconds or a RecursionError's 500."""

    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        request = (parser_context or {}).get("request")
        declared = request.META.get("CONTENT_LENGTH") if request is not None else None
        if limit is not None and str(declared or "0").isdigit() and int(declared or 0) > limit:
            raise self._too_large(limit)
        body = stream.read(limit + 1) if limit is not None else stream.read()
        if limit is not None and len(body) > limit:
            raise self._too_large(limit)
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            data = json.loads(body.decode(encoding), parse_constant=_refuse_constant)
        except RecursionError:
            raise exceptions.ParseError(TOO_DEEP) from None
        except ValueError as error:  # UnicodeDecodeError included
            raise exceptions.ParseError(f"JSON parse error - {error}") from None
        if _depth_exceeds(data, MAX_JSON_DEPTH):
            raise exceptions.ParseError(TOO_DEEP)
        return data

    @staticmethod
    def _too_large(limit: int) -> RequestBodyTooLarge:
        return RequestBodyTooLarge(
            f"request body too large: at most {limit} bytes; send less, or page through it"
        )


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not JSON")


def _depth_exceeds(data, limit: int) -> bool:
    """Whether `data` nests more than `limit` lists/objects deep (iterative: no recursion)."""
    pending = [(data, 1)]
    while pending:
        value, depth = pending.pop()
        if isinstance(value, dict):
            children = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        if depth > limit:
            return True
        pending.extend((child, depth + 1) for child in children)
    return False
