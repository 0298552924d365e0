"""The organization claim: what the application tells PostgreSQL, signed so PostgreSQL can check it.

Row level security used to trust two plain settings (`app.current_organization_id`,
`app.unscoped`) that any SQL on the application connection could set. Now each transaction of
the application role carries one setting, `app.tenancy_claim`, which PostgreSQL verifies
before any policy honours it (tenants.verification installs the SQL side):

    v1.<key id>.<backend pid>.<transaction start, µs>.<platform 0|1>.<user id>.<org ids>.<mac>

- `<mac>` is HMAC-SHA256 of everything before it under the tenancy key. Django holds the key
  (ROUTEOPTIMIZER_TENANCY_KEY, or one derived from SECRET_KEY); the database holds it in
  `tenancy_keys`, which only the owner can read, and checks it in the SECURITY DEFINER function
  `tenancy_claim()`. An attacker with SQL on the application connection can set the setting to
  anything, but cannot make a value that verifies: a forged, altered or truncated claim
  verifies as no claim, and the policies then match no row.
- `<backend pid>` and `<transaction start>` bind a claim to the one transaction it was made
  for (tenants.connection asks the transaction for its `transaction_timestamp()` first), so a
  claim seen anywhere else (another transaction of the same backend, another backend's query
  text, a log) does not verify when replayed. Seen anywhere, it is therefore no secret: it
  is sent in the message of the query it precedes (tenants.connection).
- `<org ids>`: the organizations the transaction may see: those an admin page may list for a
  staff member (`visible_organizations()`) when set; otherwise the current organization
  (tenants.context); otherwise none.
- `<platform>`: every organization and every account. Only contexts that Django itself has
  authorized may claim it (`platform_access()`: a superuser's request, the test suite's setup
  code, never anything a request can ask for), and only while no organization is current or
  for the queries of the `unscoped` escape hatch. Elsewhere `unscoped` lifts the ORM's filter
  but PostgreSQL still answers with the claim's organizations only.
- `<user id>`: the signed-in user, for the account tables (a user reads their own row, their
  own API tokens and memberships; tenants.verification).

Building a claim costs one HMAC (microseconds); sending it, no round trip of its own
(tenants.connection: the transaction's start comes with its BEGIN, the claim with its query).
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from contextvars import ContextVar
from typing import NamedTuple

from django.conf import settings

from tenants.context import current_organization_or_none

CLAIM_SETTING = "app.tenancy_claim"
CLAIM_VERSION = "v1"
# The transaction's start as the claim carries it, in the same SQL the verification uses.
TRANSACTION_START_SQL = "(extract(epoch FROM transaction_timestamp()) * 1000000)::bigint"
_KEY_INFO = b"routeoptimizer.tenancy-claim-key.v1"
_BLOCK = 64  # SHA-256's block size: the HMAC pads are this long


class ClaimInputs(NamedTuple):
    """What a transaction claims, before it is signed."""

    user_id: str
    organization_ids: tuple[str, ...]
    platform: bool


NO_CLAIM = ClaimInputs("", (), False)

_claim_user: ContextVar[str] = ContextVar("tenancy_claim_user", default="")
_visible_organizations: ContextVar[tuple[str, ...]] = ContextVar(
    "tenancy_visible_organizations", default=()
)
# False; OUTSIDE_ORGANIZATIONS (platform while no organization is current, and for `unscoped`);
# or EVERYWHERE (a superuser's request: the admin's organization contexts narrow its ORM
# queries, not what the platform may read).
OUTSIDE_ORGANIZATIONS = "outside organizations"
EVERYWHERE = "everywhere"
_platform: ContextVar[bool | str] = ContextVar("tenancy_platform", default=False)


# --- the key -------------------------------------------------------------------------------------


def tenancy_key(raw: str | None = None) -> bytes:
    """The 32-byte claim key: ROUTEOPTIMIZER_TENANCY_KEY when set, else derived from SECRET_KEY.

    Derived, not SECRET_KEY itself: the database stores (padded forms of) this key, and a copy of
    SECRET_KEY in the database would let its readers sign sessions.
    """
    secret = raw if raw is not None else settings.ROUTEOPTIMIZER_TENANCY_KEY or settings.SECRET_KEY
    if not secret:
        raise RuntimeError(
            "no tenancy key: set SECRET_KEY (or ROUTEOPTIMIZER_TENANCY_KEY) in the environment"
        )
    return hmac.new(secret.encode(), _KEY_INFO, hashlib.sha256).digest()


def key_id(key: bytes) -> str:
    """A short public name for a key: the database keeps several during a rotation."""
    return hashlib.sha256(b"key-id:" + key).hexdigest()[:16]


def key_pads(key: bytes) -> tuple[bytes, bytes]:
    """HMAC's inner and outer padded keys (RFC 2104). The database stores these, so it can
    compute HMAC-SHA256 with its built-in sha256() and needs no extension."""
    padded = key.ljust(_BLOCK, b"\0")
    return bytes(b ^ 0x36 for b in padded), bytes(b ^ 0x5C for b in padded)


# --- what the current context claims -------------------------------------------------------------


def current_claim_inputs() -> ClaimInputs:
    """The claim of the running code: see the module docstring for the rules."""
    from tenants.managers import unscoped_access_active

    organization = current_organization_or_none()
    visible = _visible_organizations.get()
    if visible:
        organizations = visible
    elif organization is not None:
        organizations = (str(organization.pk),)
    else:
        organizations = ()
    authority = _platform.get()
    platform = authority == EVERYWHERE or (
        bool(authority) and (organization is None or unscoped_access_active())
    )
    return ClaimInputs(_claim_user.get(), organizations, platform)


def sign(
    inputs: ClaimInputs, *, backend_pid: int, transaction_start: int, key: bytes | None = None
) -> str:
    """The claim text for `inputs` in the transaction of backend `backend_pid` that started at
    `transaction_start` (TRANSACTION_START_SQL), signed with `key`."""
    key = key if key is not None else tenancy_key()
    message = ".".join(
        [
            CLAIM_VERSION,
            key_id(key),
            str(backend_pid),
            str(transaction_start),
            "1" if inputs.platform else "0",
            inputs.user_id,
            ",".join(inputs.organization_ids),
        ]
    )
    mac = hmac.new(key, message.encode(), hashlib.sha256).hexdigest()
    return f"{message}.{mac}"


def _user_text(user_id) -> str:
    """A claimable user id: a UUID's canonical text, or '' (nobody) for anything else."""
    if user_id is None:
        return ""
    try:
        return str(uuid.UUID(str(user_id)))
    except ValueError:
        return ""


@contextmanager
def _set(var: ContextVar, value) -> Iterator[None]:
    token = var.set(value)
    try:
        yield
    finally:
        var.reset(token)


def claim_user(user_id) -> AbstractContextManager[None]:
    """Claim `user_id` (None: nobody) as the signed-in user for the block."""
    return _set(_claim_user, _user_text(user_id))


def set_claim_user(user_id) -> None:
    """Claim `user_id` from now on, within the enclosing `request_claims()` block (sign-in)."""
    _claim_user.set(_user_text(user_id))


def visible_organizations(organization_ids: Iterable) -> AbstractContextManager[None]:
    """While no organization is current, let the block see these organizations (the admin's
    lists for a staff member of several)."""
    return _set(_visible_organizations, tuple(sorted(str(pk) for pk in organization_ids)))


def platform_access(allowed: bool | str = True) -> AbstractContextManager[None]:
    """Authorize (or forbid) the platform claim for the block: every organization and account
    while no organization is current (True), or even inside one (EVERYWHERE: a superuser's
    request). Only for code Django trusts to cross organizations."""
    return _set(_platform, OUTSIDE_ORGANIZATIONS if allowed is True else allowed)


@contextmanager
def request_claims(user_id=None) -> Iterator[None]:
    """A fresh claim state for one request: its user, no visible organizations, no platform;
    whatever the caller's context held (a test's setup, a previous request) does not leak in."""
    tokens = [
        _claim_user.set(_user_text(user_id)),
        _visible_organizations.set(()),
        _platform.set(False),
    ]
    try:
        yield
    finally:
        for var, token in zip(
            (_claim_user, _visible_organizations, _platform), tokens, strict=True
        ):
            var.reset(token)
