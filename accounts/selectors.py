"""Reads on accounts that are more than a one-line query."""

from __future__ import annotations

from accounts.models import ApiToken
from accounts.tokens import hash_token

# What authenticating a request reads of its token (accounts.authentication, api_token_record_use,
# revocation by id); the other columns load on access.
API_TOKEN_COLUMNS = "id, user_id, organization_id, last_used_at, expires_at, revoked_at"


def api_token_for_key(token: str) -> ApiToken | None:
    """The row of a presented bearer token (usable or not); its user and organization are read
    afterwards, as the token's user (accounts.authentication).

    The application role cannot list API tokens (row level security shows a user their own):
    the lookup goes through tenancy_api_token(), which answers for one hash only.
    """
    rows = list(
        ApiToken.objects.raw(
            f"SELECT {API_TOKEN_COLUMNS} FROM tenancy_api_token(%s)", [hash_token(token)]
        )
    )
    return rows[0] if rows else None
