"""One-time tokens (email verification, password reset, invitations): only hashes are stored."""

import hashlib
import hmac
import secrets


def new_token() -> tuple[str, str]:
    """A fresh token to hand to the user, and the hash to store in its place."""
    token = secrets.token_urlsafe(32)
    return token, hash_token(token)


def hash_token(token: str) -> str:
    # SHA-256 is enough: the token carries 256 bits of entropy, so there is nothing to brute-force.
    return hashlib.sha256(token.encode()).hexdigest()


def token_matches(token: str, stored_hash: str | None) -> bool:
    return bool(stored_hash) and hmac.compare_digest(hash_token(token), stored_hash)
