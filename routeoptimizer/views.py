"""Project-level views that belong to no app: the health check and the error handlers."""

import logging

from django.db import DatabaseError, connection, transaction
from django.http import JsonResponse
from django.views import defaults
from django.views.decorators.cache import never_cache

logger = logging.getLogger(__name__)


# Not in the request's transaction: opening one needs the database, and a database that is down
# must be a 503 from here, not an error before this view runs.
@transaction.non_atomic_requests
@never_cache
def health(request):
    """200 {"status": "ok"} when PostgreSQL answers, 503 with one JSON line when it does not.

    Anonymous callers (load balancers) learn nothing else: no versions, no host names; the
    reason a database is unreachable goes to the log.
    """
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError as error:
        logger.error("health check: the database does not answer: %s", " ".join(str(error).split()))
        return JsonResponse(
            {"status": "unavailable", "error": "the database does not answer; see the server log"},
            status=503,
        )
    return JsonResponse({"status": "ok"})


# --- error pages: one JSON line under /api/, Django's pages elsewhere ---------------------------
# Errors raised outside a DRF view (a disallowed Host header, an unknown /api/ URL, an oversized
# form) reach these handlers; DRF views answer their own (routeoptimizer.api.exception_handler).

_API_ERRORS = {
    400: "bad request: check the Host header, the URL and the body",
    403: "forbidden",
    404: "not found: check the URL; the API is under /api/v1/ (schema: /api/v1/schema/)",
    500: "internal error: the request was not completed; it was logged, retry later",
}


def _is_api(request) -> bool:
    return request.path_info.startswith("/api/")


def bad_request(request, exception=None):
    if _is_api(request):
        return JsonResponse({"error": _API_ERRORS[400]}, status=400)
    return defaults.bad_request(request, exception)


def permission_denied(request, exception=None):
    if _is_api(request):
        return JsonResponse({"error": _API_ERRORS[403]}, status=403)
    return defaults.permission_denied(request, exception)


def page_not_found(request, exception=None):
    if _is_api(request):
        return JsonResponse({"error": _API_ERRORS[404]}, status=404)
    return defaults.page_not_found(request, exception)


def server_error(request):
    if _is_api(request):
        return JsonResponse({"error": _API_ERRORS[500]}, status=500)
    return defaults.server_error(request)
