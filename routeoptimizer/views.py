"""Project-level views that belong to no app: the health check."""

import logging

from django.db import DatabaseError, connection, transaction
from django.http import JsonResponse
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
