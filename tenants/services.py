"""Tenancy services: which organization a request is for, and onboarding a new organization."""

from __future__ import annotations

import datetime
import re
import uuid
from decimal import Decimal
from typing import NamedTuple

from django.apps import apps
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from tenants.context import organization_context
from tenants.models import Organization, OrganizationUser, PlanTier, Role, SubscriptionStatus

ORGANIZATION_HEADER = "HTTP_X_ORGANIZATION"


class OrganizationNotFound(Exception):
    """The request names an unknown or inactive organization, or one the user is not a member
    of. Both get the same answer (404), so nobody learns which organizations exist."""


class RequestOrganization(NamedTuple):
    organization: Organization | None
    membership: OrganizationUser | None


def subdomain_slug(host: str) -> str | None:
    """`acme` for `acme.<ROUTEOPTIMIZER_BASE_DOMAIN>[:port]`; None for the bare base domain and
    for hosts outside it."""
    host = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    host = host.lower().rstrip(".")
    base = settings.ROUTEOPTIMIZER_BASE_DOMAIN.lower().strip(".")
    if not host.endswith(f".{base}"):
        return None
    label = host[: -len(base) - 1]
    return label if label and "." not in label else None


# What a slug can be (Organization.slug is a SlugField of at most 100 characters). Anything else
# (a NUL byte, a lone surrogate, a 10,000-character header) is unknown without asking the
# database, which would refuse some of those values with an error instead of "no row".
_SLUG = re.compile(r"[-a-zA-Z0-9_]{1,100}")


def _named_organization(slug: str) -> Organization:
    if not isinstance(slug, str) or not _SLUG.fullmatch(slug):
        raise OrganizationNotFound("unknown organization (not a valid slug)")
    organization = (
        Organization.objects.filter(slug__iexact=slug, is_active=True).order_by("slug").first()
    )
    if organization is None:
        raise OrganizationNotFound(f"unknown organization {slug!r}")
    return organization


def active_membership(user, organization: Organization) -> OrganizationUser | None:
    """The user's membership of the organization; None for inactive users and for invitations
    not accepted yet."""
    if user is None or not user.is_authenticated or not user.is_active:
        return None
    return _accepted(OrganizationUser.objects.filter(organization=organization, user=user)).first()


def _accepted(memberships):
    """Memberships that count: an invitation not accepted yet opens nothing."""
    return memberships.exclude(invitation_token__isnull=False, invitation_accepted_at__isnull=True)


class NoUsableMembership(Exception):
    """The user has no accepted membership of an active organization: nothing to sign in to."""


class AmbiguousOrganization(Exception):
    """The user belongs to several organizations, none of them primary: they must name one."""


def sign_in_membership(user, *, slug: str | None = None) -> OrganizationUser:
    """The membership a password sign-in (POST /api/v1/auth/token) issues a token for, by the
    rule that authenticates that token afterwards: an active user's accepted membership of an
    active organization (active_membership).

    `slug` names the organization (case-insensitively); without it, the primary organization,
    or the only one. Raises NoUsableMembership when the user has no such membership at all
    (callers answer exactly as for a wrong password, so a correct password of an account that
    opens nothing is not confirmed), OrganizationNotFound when `slug` names an organization the
    user cannot use (or none), and AmbiguousOrganization when several are left to choose from.
    """
    if user is None or not user.is_active:
        raise NoUsableMembership
    usable = list(
        _accepted(OrganizationUser.objects.filter(user=user, organization__is_active=True))
        .select_related("organization")
        .order_by("-is_primary_org", "organization__slug")[:2]
    )
    if not usable:
        raise NoUsableMembership
    if slug:
        membership = active_membership(user, _named_organization(slug))
        if membership is None:
            raise OrganizationNotFound(f"unknown organization {slug!r}")
        return membership
    if usable[0].is_primary_org or len(usable) == 1:
        return usable[0]
    raise AmbiguousOrganization


def resolve_request_organization(
    request, user, *, default: Organization | None = None
) -> RequestOrganization:
    """The one place that decides which organization a request is for, and checks that `user`
    is a member of it, every time.

    In order: the subdomain (`<slug>.<ROUTEOPTIMIZER_BASE_DOMAIN>`), the `X-Organization: <slug>`
    header, `default` (the API passes its token's organization), the user's primary
    organization. A subdomain and a header naming different organizations are refused rather
    than one silently winning. An unknown or inactive organization, or one the user does not
    belong to, raises OrganizationNotFound (404 for the caller). Nothing named and no primary
    organization: (None, None).

    Callers that bind a request to one organization (an API token) must still compare the
    result with theirs: a token for A used with `X-Organization: B` resolves to B (if the user
    is a member of B) and must be answered 404.
    """
    from_host = subdomain_slug(request.get_host())
    from_header = request.META.get(ORGANIZATION_HEADER, "").strip() or None
    if from_host and from_header and from_host.lower() != from_header.lower():
        raise OrganizationNotFound(
            f"the subdomain names organization {from_host!r} but X-Organization names "
            f"{from_header!r}: send one of them"
        )
    named = from_host or from_header
    if named:
        organization = _named_organization(named)
    elif default is not None:
        organization = default
    else:
        if user is None or not user.is_authenticated:
            return RequestOrganization(None, None)
        primary = (
            OrganizationUser.objects.filter(
                user=user, is_primary_org=True, organization__is_active=True
            )
            .select_related("organization")
            .first()
        )
        if primary is None:
            return RequestOrganization(None, None)
        organization = primary.organization
    # Checked on every path, the token's organization included: a deactivated organization
    # answers nobody.
    membership = active_membership(user, organization) if organization.is_active else None
    if membership is None:
        raise OrganizationNotFound(f"unknown organization {organization.slug!r}")
    return RequestOrganization(organization, membership)


# --- onboarding --------------------------------------------------------------------------------


class OrganizationCreateError(Exception):
    """Onboarding refused; the message is one line naming the problem and the fix."""


def organization_create(
    *, name: str, slug: str, owner_email: str, owner_password: str | None = None
) -> Organization:
    """A new organization on a trial of the starter plan, its owner and its trial subscription,
    in one transaction: on any error nothing is created.

    The owner is the user with `owner_email` (case-insensitive) if there is one, or a new user
    (an unusable password unless `owner_password` is given). A new owner's membership is their
    primary organization; an existing user's stays where it was unless they have none.
    """
    try:
        return _organization_create(
            name=name, slug=slug, owner_email=owner_email, owner_password=owner_password
        )
    except IntegrityError as error:
        # Checked first, so only a concurrent onboarding of the same slug or email gets here.
        reason = " ".join(str(error.__cause__ or error).split())
        raise OrganizationCreateError(
            f"the slug or the owner's email was taken while this ran ({reason}): run it again "
            f"to see which"
        ) from error


def _organization_create(*, name, slug, owner_email, owner_password) -> Organization:
    User = get_user_model()
    slug = slug.strip().lower()
    owner_email = User.objects.normalize_email(owner_email.strip())
    now = timezone.now()
    with transaction.atomic():
        if Organization.objects.filter(slug__iexact=slug).exists():
            raise OrganizationCreateError(
                f"an organization with slug {slug!r} exists already: choose another --slug"
            )
        owner = User.objects.filter(email__iexact=owner_email).first()
        if owner is not None and owner_password:
            raise OrganizationCreateError(
                f"a user with email {owner_email!r} exists already, and --owner-password would "
                f"replace their password: leave it out to make them the owner, or use another "
                f"--owner-email"
            )
        if owner is not None and not owner.is_active:
            raise OrganizationCreateError(
                f"the user with email {owner_email!r} is deactivated: reactivate them first, or "
                f"use another --owner-email"
            )

        organization = Organization(
            name=name.strip(),
            slug=slug,
            plan_tier=PlanTier.STARTER,
            subscription_status=SubscriptionStatus.TRIAL,
        )
        organization.trial_ends_at = now + datetime.timedelta(days=organization.trial_days)
        _save(organization)

        if owner is None:
            owner = User(email=owner_email)
            owner.set_password(owner_password or None)
            _save(owner)
        has_primary = OrganizationUser.objects.filter(user=owner, is_primary_org=True).exists()
        _save(
            OrganizationUser(
                organization=organization,
                user=owner,
                role=Role.OWNER,
                is_primary_org=not has_primary,
                invitation_accepted_at=now,
            )
        )
        _create_trial_subscription(organization, now=now)
    return organization


def _save(instance) -> None:
    try:
        instance.full_clean()
    except ValidationError as error:
        problems = "; ".join(
            f"{field}: {' '.join(messages)}" for field, messages in error.message_dict.items()
        )
        raise OrganizationCreateError(
            f"invalid {type(instance)._meta.verbose_name}: {problems}"
        ) from error
    instance.save()


def _create_trial_subscription(organization: Organization, *, now) -> None:
    """The trial's row in organization_subscriptions, when the billing app provides it."""
    try:
        Subscription = apps.get_model("billing", "OrganizationSubscription")
    except LookupError:
        return
    trial_end = organization.trial_ends_at
    with organization_context(organization):
        _save(
            Subscription(
                organization=organization,
                # No Stripe subscription exists during the trial; the id is unique, so the
                # placeholder names the organization until billing replaces it.
                stripe_subscription_id=f"trial_{uuid.UUID(str(organization.pk)).hex}",
                plan_tier=PlanTier.STARTER,
                status="trialing",
                monthly_price=Decimal("0.00"),
                current_period_start=now,
                current_period_end=trial_end,
                trial_start=now,
                trial_end=trial_end,
            )
        )
