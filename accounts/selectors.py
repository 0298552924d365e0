"""Reads on accounts that are more than a one-line query."""

from __future__ import annotations

import functools

from django.db import connection

from accounts.models import ApiToken
from accounts.tokens import hash_token
from tenants.models import OrganizationUser
from tenants.selectors import membership_from_row, request_membership_parts

# What authenticating a request reads of its token (accounts.authentication, api_token_record_use,
# revocation by id); the other columns load on access.
API_TOKEN_FIELDS = ("id", "user_id", "organization_id", "last_used_at", "expires_at", "revoked_at")
# tenancy_api_token_membership()'s name for a column of the membership, user and organization:
# `<prefix>_<attname>` (so a user's id is the token's user_id, an organization's its
# organization_id).
_PREFIXES = ("membership", "user", "organization")


def api_token_for_key(token: str) -> tuple[ApiToken | None, OrganizationUser | None]:
    """The row of a presented bearer token (usable or not) and, while it is usable, the accepted
    membership of its user in its organization with that user and organization (only the
    columns a request reads); None for what is not there.

    One query: the application role cannot list API tokens (row level security shows a user
    their own) nor read accounts before it knows whose request this is, so the lookup goes
    through tenancy_api_token_membership(), which answers for one hash only and shows the
    token's holder its own rows (tenants.verification)."""
    with connection.cursor() as cursor:
        cursor.execute(_token_membership_sql(), [hash_token(token)])
        row = cursor.fetchone()
    if row is None:
        return None, None
    token_names = _api_token_attnames()
    api_token = ApiToken.from_db(connection.alias, token_names, row[: len(token_names)])
    rest = row[len(token_names) :]
    found = rest[request_membership_parts()[0][1].index("id")] is not None
    return api_token, membership_from_row(rest) if found else None


@functools.cache
def _api_token_attnames() -> tuple[str, ...]:
    # from_db takes a subset of the fields in the model's own order.
    return tuple(f.attname for f in ApiToken._meta.concrete_fields if f.attname in API_TOKEN_FIELDS)


@functools.cache
def _token_membership_sql() -> str:
    columns = list(_api_token_attnames())
    for prefix, (_model, names) in zip(_PREFIXES, request_membership_parts(), strict=True):
        columns += [f"{prefix}_{name}" for name in names]
    return f"SELECT {', '.join(columns)} FROM tenancy_api_token_membership(%s)"
