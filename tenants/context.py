"""The current organization of a request, task or command: a ContextVar, never a thread-local.

Everything tenant-owned reads it (scoped managers, row level security on the connection); the
middleware sets it per request, commands with `organization_context(...)`. Code that forgets it
gets OrganizationNotSet, never another organization's rows.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tenants.models import Organization

_current_organization: ContextVar[Organization | None] = ContextVar(
    "current_organization", default=None
)


class OrganizationNotSet(RuntimeError):
    """A tenant-owned query or write ran with no current organization."""

    def __init__(self, what: str = "this query"):
        super().__init__(
            f"{what} needs a current organization: run it inside "
            f"tenants.context.organization_context(organization), or use the model's "
            f"`unscoped` manager where crossing organizations is intended"
        )


def current_organization_or_none() -> Organization | None:
    return _current_organization.get()


def current_organization(what: str = "this query") -> Organization:
    organization = _current_organization.get()
    if organization is None:
        raise OrganizationNotSet(what)
    return organization


@contextmanager
def organization_context(organization: Organization | None) -> Iterator[Organization | None]:
    """Make `organization` current for the block (None: explicitly no organization)."""
    token = _current_organization.set(organization)
    try:
        yield organization
    finally:
        _current_organization.reset(token)
