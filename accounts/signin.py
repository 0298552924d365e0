"""Sign-in throttling (django-axes) as this project needs it: who an attempt is for, and what a
locked-out caller sees.

django-axes counts failed sign-ins in the database (its AccessAttempt table, so every worker
and every restart sees the same counts) per account and per client address
(AXES_LOCKOUT_PARAMETERS in settings), for every caller of django.contrib.auth.authenticate:
the admin's login form and POST /api/v1/auth/token. The client address is
routeoptimizer.client_address's (trusted proxies only). Settings point axes at the functions
below.
"""

from __future__ import annotations

from django.conf import settings
from django.http import JsonResponse
from django.shortcuts import render

LOCKOUT_TEMPLATE = "accounts/signin_locked_out.html"


def signin_username(request, credentials: dict | None) -> str | None:
    """The account an attempt is for, as axes counts it: the email, case-folded (emails are
    case-insensitive here, so `OWNER@acme.test` and `owner@acme.test` are one account).

    The admin's form sends it as `username`, the token endpoint as `email`. Bounded and free of
    NUL bytes, since axes stores it in a 255-character column.
    """
    credentials = credentials or {}
    value = credentials.get("email") or credentials.get("username")
    if value is None and request is not None:
        value = request.POST.get("username") or request.POST.get("email")
    if not isinstance(value, str):
        return None
    value = value.replace("\0", "").strip().lower()
    return value[:255] or None


def lockout_minutes() -> int:
    return max(1, round(settings.AXES_COOLOFF_TIME.total_seconds() / 60))


def lockout_message() -> str:
    return (
        f"too many failed sign-ins for this account or from this address: try again in "
        f"{lockout_minutes()} minutes"
    )


def lockout_response(request, original_response=None, credentials=None):
    """429 for a locked-out sign-in: one JSON line under /api/, a page in the admin."""
    retry_after = str(int(settings.AXES_COOLOFF_TIME.total_seconds()))
    if request.path.startswith("/api/"):
        response = JsonResponse({"error": lockout_message()}, status=429)
    else:
        response = render(
            request,
            LOCKOUT_TEMPLATE,
            {"title": "Too many failed sign-ins", "message": lockout_message()},
            status=429,
        )
    response["Retry-After"] = retry_after
    return response
