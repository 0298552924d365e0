"""Reads about organizations that more than one caller needs."""

from __future__ import annotations

import uuid

from tenants.models import Organization, OrganizationUser

# What a request reads of its user and its organization (permissions, the role, the serializers'
# organization slug); other columns load on first access. A check that reads another column on
# every request (plan limits, the subscription) belongs here, not in a second query.
REQUEST_USER_FIELDS = (
    "id",
    "email",
    "first_name",
    "last_name",
    "is_active",
    "is_staff",
    "is_superuser",
)
REQUEST_ORGANIZATION_FIELDS = ("id", "name", "slug", "is_active")


def organization_by_slug_or_id(value: str) -> Organization | None:
    """The organization whose slug (case-insensitive) or id is `value`, None if there is none."""
    value = (value or "").strip()
    if not value:
        return None
    try:
        return Organization.objects.filter(pk=uuid.UUID(value)).first()
    except ValueError:
        return Organization.objects.filter(slug__iexact=value).first()


def accepted_membership(user_id, organization_id) -> OrganizationUser | None:
    """The accepted membership of `user_id` in `organization_id`, with its user and organization,
    in one query of only the columns a request reads and without ordering (the model's default
    order joins organizations and users again); None when there is none. The organization's
    and the user's active flags are the caller's to check: their messages differ."""
    rows = (
        OrganizationUser.objects.filter(user_id=user_id, organization_id=organization_id)
        .exclude(invitation_token__isnull=False, invitation_accepted_at__isnull=True)
        .select_related("user", "organization")
        .only(
            "id",
            "role",
            "user_id",
            "organization_id",
            *(f"user__{name}" for name in REQUEST_USER_FIELDS),
            *(f"organization__{name}" for name in REQUEST_ORGANIZATION_FIELDS),
        )
        .order_by()[:1]
    )
    return next(iter(rows), None)
