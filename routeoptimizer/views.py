"""Project-level views that belong to no app: the health check."""

from django.db import DatabaseError, connection
from django.http import JsonResponse


def health(request):
    """200 with the database status when PostgreSQL answers, 503 when it does not."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_setting('server_version')")
            (version,) = cursor.fetchone()
    except DatabaseError as error:
        return JsonResponse(
            {"status": "error", "database": {"status": "unavailable", "error": str(error).strip()}},
            status=503,
        )
    return JsonResponse({"status": "ok", "database": {"status": "ok", "server_version": version}})
