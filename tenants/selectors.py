"""Reads about organizations that more than one caller needs."""

from __future__ import annotations

import functools
import uuid

from django.db import connection

from tenants.models import Organization, OrganizationUser

# What a request reads of its membership, its user and its organization (permissions, the role,
# the serializers' organization slug); other columns load on first access. A check that reads
# another column on every request (plan limits, the subscription) belongs here, not in a second
# query; a bearer token's request reads them through tenancy_api_token_membership()
# (tenants.verification), whose result columns must then name it too (a new migration).
REQUEST_MEMBERSHIP_FIELDS = ("id", "role", "user_id", "organization_id")
REQUEST_USER_FIELDS = (
    "id",
    "email",
    "first_name",
    "last_name",
    "is_active",
    "is_staff",
    "is_superuser",
)
# The subscription's two columns: billing.access checks them on every API request.
REQUEST_ORGANIZATION_FIELDS = (
    "id",
    "name",
    "slug",
    "is_active",
    "subscription_status",
    "trial_ends_at",
)


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
    and the user's active flags are the caller's to check: their messages differ.

    Bearer tokens get the same in their own lookup (accounts.selectors); this serves what has no
    token row to start from. The SQL is written once (`_membership_sql`) rather than compiled by
    the ORM each time; the instances are built as the ORM builds them (`from_db`), the other
    columns deferred."""
    statement = _membership_sql()
    with connection.cursor() as cursor:
        cursor.execute(statement, [user_id, organization_id])
        row = cursor.fetchone()
    return None if row is None else membership_from_row(row)


@functools.cache
def request_membership_parts():
    """((model, attnames), ...) of the membership, its user and its organization as a request
    reads them: attnames in each model's own field order, the order from_db takes a subset in."""
    from django.contrib.auth import get_user_model

    wanted = (
        (OrganizationUser, REQUEST_MEMBERSHIP_FIELDS),
        (get_user_model(), REQUEST_USER_FIELDS),
        (Organization, REQUEST_ORGANIZATION_FIELDS),
    )
    return tuple(
        (model, tuple(f.attname for f in model._meta.concrete_fields if f.attname in names))
        for model, names in wanted
    )


def membership_from_row(row) -> OrganizationUser:
    """The membership, with its user and organization, from a row holding
    request_membership_parts()' columns in that order."""
    objects, start = [], 0
    for model, names in request_membership_parts():
        objects.append(model.from_db(connection.alias, names, row[start : start + len(names)]))
        start += len(names)
    membership, user, organization = objects
    membership.user, membership.organization = user, organization
    return membership


@functools.cache
def _membership_sql() -> str:
    parts = request_membership_parts()
    user_model, organization_model = parts[1][0], parts[2][0]
    aliases = ("m", "u", "o")
    columns = ", ".join(
        f'{alias}."{model._meta.get_field(name).column}"'
        for alias, (model, names) in zip(aliases, parts, strict=True)
        for name in names
    )
    return (
        f'SELECT {columns} FROM "{OrganizationUser._meta.db_table}" m '
        f'JOIN "{user_model._meta.db_table}" u ON u."id" = m."user_id" '
        f'JOIN "{organization_model._meta.db_table}" o ON o."id" = m."organization_id" '
        f'WHERE m."user_id" = %s AND m."organization_id" = %s '
        f'AND (m."invitation_token" IS NULL OR m."invitation_accepted_at" IS NOT NULL) LIMIT 1'
    )
