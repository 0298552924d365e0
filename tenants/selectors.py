"""Reads about organizations that more than one caller needs."""

from __future__ import annotations

import uuid

from tenants.models import Organization


def organization_by_slug_or_id(value: str) -> Organization | None:
    """The organization whose slug (case-insensitive) or id is `value`, None if there is none."""
    value = (value or "").strip()
    if not value:
        return None
    try:
        return Organization.objects.filter(pk=uuid.UUID(value)).first()
    except ValueError:
        return Organization.objects.filter(slug__iexact=value).first()
