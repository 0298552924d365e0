"""Writes on accounts: API tokens issued and revoked."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from accounts.models import ApiToken, User
from accounts.tokens import hash_token, new_token
from tenants.models import Organization

# A recognizable prefix lets secret scanners (and people) tell a leaked token for what it is.
API_TOKEN_PREFIX = "ro_"


def api_token_issue(
    *,
    user: User,
    organization: Organization,
    name: str = "",
    lifetime: timedelta | None = None,
) -> tuple[str, ApiToken]:
    """A new token for `user` in `organization`: the token to hand over once, and its row.

    The caller has checked the membership. `lifetime` defaults to ROUTEOPTIMIZER_API_TOKEN_DAYS
    (0: the token lives until revoked).
    """
    if lifetime is None and settings.ROUTEOPTIMIZER_API_TOKEN_DAYS:
        lifetime = timedelta(days=settings.ROUTEOPTIMIZER_API_TOKEN_DAYS)
    secret, _ = new_token()
    token = API_TOKEN_PREFIX + secret
    now = timezone.now()
    api_token = ApiToken(
        user=user,
        organization=organization,
        key_hash=hash_token(token),
        name=name,
        created_at=now,
        expires_at=now + lifetime if lifetime else None,
    )
    api_token.full_clean()
    api_token.save()
    return token, api_token


def api_token_revoke(*, api_token: ApiToken) -> None:
    """Revoke the token from now on (idempotent; the row stays for the audit trail)."""
    if api_token.revoked_at is None:
        api_token.revoked_at = timezone.now()
        api_token.save(update_fields=["revoked_at"])


# Recording every use would write on every request; once a minute is precise enough.
LAST_USED_PRECISION = timedelta(minutes=1)


def api_token_record_use(*, api_token: ApiToken) -> None:
    now = timezone.now()
    if api_token.last_used_at is None or now - api_token.last_used_at > LAST_USED_PRECISION:
        ApiToken.objects.filter(pk=api_token.pk).update(last_used_at=now)
        api_token.last_used_at = now
