"""Reads on accounts that are more than a one-line query."""

from __future__ import annotations

from accounts.models import ApiToken
from accounts.tokens import hash_token


def api_token_for_key(token: str) -> ApiToken | None:
    """The row of a presented bearer token (usable or not); its user and organization are read
    afterwards, as the token's user (accounts.authentication).

    The application role cannot list API tokens (row level security shows a user their own):
    the lookup goes through tenancy_api_token(), which answers for one hash only.
    """
    rows = list(ApiToken.objects.raw("SELECT * FROM tenancy_api_token(%s)", [hash_token(token)]))
    return rows[0] if rows else None
