"""Reads on accounts that are more than a one-line query."""

from __future__ import annotations

from accounts.models import ApiToken
from accounts.tokens import hash_token


def api_token_for_key(token: str) -> ApiToken | None:
    """The row of a presented bearer token (usable or not), with its user and organization."""
    return (
        ApiToken.objects.select_related("user", "organization")
        .filter(key_hash=hash_token(token))
        .first()
    )
