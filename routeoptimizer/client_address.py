"""The client's address of a request: the socket's, or what a configured number of trusted
proxies say it is; never a header value the client chose.

Every per-client limit (sign-in lockouts through django-axes, the API's throttles) reads it from
here. With ROUTEOPTIMIZER_TRUSTED_PROXIES = 0 (the default) it is REMOTE_ADDR and
X-Forwarded-For is ignored. With N > 0, the application runs behind N proxies that each append
the address they received the request from to X-Forwarded-For, so the N-th entry from the right
is the one the outermost trusted proxy saw: whatever the client put in front of it is ignored.
A header with fewer than N entries (or an entry that is not an IP address) did not come through
those proxies: REMOTE_ADDR then.
"""

from __future__ import annotations

import ipaddress

from django.conf import settings


def _address(value: str) -> str | None:
    value = value.strip()
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return None


def client_address(request) -> str | None:
    """The client's IP address as a string (None only when the server gave no REMOTE_ADDR)."""
    meta = request.META
    remote = _address(meta.get("REMOTE_ADDR", "") or "")
    proxies = settings.ROUTEOPTIMIZER_TRUSTED_PROXIES
    if proxies <= 0:
        return remote
    entries = [entry for entry in meta.get("HTTP_X_FORWARDED_FOR", "").split(",") if entry.strip()]
    if len(entries) < proxies:
        return remote
    return _address(entries[-proxies]) or remote
