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
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from tenants.claims import EVERYWHERE, claim_user, platform_access
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
    # No ordering: `.first()` would order by the model's default (organization, user), which
    # joins both tables again for one row.
    memberships = _accepted(OrganizationUser.objects.filter(organization=organization, user=user))
    return next(iter(memberships.order_by()[:1]), None)


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

        organization = new_trial_organization(name=name, slug=slug, now=now)

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


def new_trial_organization(*, name: str, slug: str, now) -> Organization:
    """Save a new organization on a trial of the starter plan (the caller's transaction; the
    caller has checked the slug is free). Also import_organization's."""
    organization = Organization(
        name=name.strip(),
        slug=slug,
        subscription_status=SubscriptionStatus.TRIAL,
    )
    # The starter plan's limits and features (billing.plans: the tiers, defined once).
    from billing.plans import apply_plan

    apply_plan(organization, PlanTier.STARTER)
    organization.trial_ends_at = now + datetime.timedelta(days=organization.trial_days)
    _save(organization)
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
    # Subscriptions are the platform's to write (billing.0011's guard): onboarding is.
    with organization_context(organization), platform_access(EVERYWHERE):
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


# --- members: invitations, roles, removal ------------------------------------------------------

# How long an invitation link works; inviting again replaces the link.
INVITATION_LIFETIME = datetime.timedelta(days=7)


class MembershipError(Exception):
    """A membership change refused; the message is one line naming the rule."""


class Invitation(NamedTuple):
    membership: OrganizationUser
    token: str  # handed over once (the email); only its SHA-256 is stored
    new_account: bool


class InvitationInvalid(Exception):
    """Unknown, used, expired, or for an organization that is no longer active: one answer."""


def _pending(membership: OrganizationUser) -> bool:
    return bool(membership.invitation_token) and membership.invitation_accepted_at is None


def organization_invite_member(
    *, organization: Organization, email: str, role: str, invited_by
) -> Invitation:
    """Invite `email` to `organization` with `role`.

    An existing account (email compared case-insensitively) gets a pending membership to
    accept; a new address gets an account with an unusable password, which accepting sets. The
    token is stored hashed (accounts.tokens), expires after INVITATION_LIFETIME and works once.
    Inviting someone already invited replaces their invitation (a new link, a new expiry);
    inviting an accepted member is refused. The caller has checked that `invited_by` may grant
    `role` (tenants.permissions.may_grant_role).
    """
    from accounts.models import account_id_for_email
    from accounts.tokens import new_token

    User = get_user_model()
    email = User.objects.normalize_email(email.strip())
    token, token_hash = new_token()
    with transaction.atomic():
        # An account of another organization is hidden from the inviter's claim: its id is
        # found by email, and it becomes visible once invited (tenants.verification).
        account = account_id_for_email(email)
        new_account = account is None
        _enforce_member_limit(organization, account)
        if new_account:
            # No password, no privilege: the account the invitee completes by accepting. Made by
            # tenancy_account_create(): the application role inserts no account itself.
            User(email=email).full_clean(exclude=["password"], validate_unique=False)
            with connection.cursor() as cursor:
                cursor.execute("SELECT tenancy_account_create(%s)", [email])
                account = cursor.fetchone()[0]
        user = User(pk=account, email=email)
        user._state.adding = False
        existing = (
            OrganizationUser.objects.select_for_update()
            .filter(organization=organization, user=user)
            .first()
        )
        if existing is not None and not _pending(existing):
            raise MembershipError(f"{email} is a member of {organization} already")
        if existing is not None:
            existing.delete()  # a new invitation: new token, new created_at (the expiry's start)
        membership = OrganizationUser(
            organization=organization,
            user=user,
            role=role,
            invitation_token=token_hash,
            invited_by=invited_by if getattr(invited_by, "pk", None) else None,
        )
        # The account exists (found by email); the inviter's claim cannot read it before it is
        # invited, so Django's own existence check of the key would say it does not.
        membership.full_clean(exclude=["user"])
        membership.save()
        membership.user = User.objects.get(pk=account)
    return Invitation(membership, token, new_account)


def _enforce_member_limit(organization: Organization, account) -> None:
    """A new invitation takes a seat of the plan's max_users (billing.limits), unless it
    replaces the account's pending one; an accepted member is refused later, as before."""
    from billing.limits import MEMBERS, enforce

    existing = None
    if account is not None:
        existing = (
            OrganizationUser.objects.filter(organization=organization, user_id=account)
            .values_list("pk", "invitation_token", "invitation_accepted_at")
            .first()
        )
    if existing is not None and not (existing[1] and existing[2] is None):
        return
    enforce(organization, MEMBERS, exclude_pk=existing[0] if existing else None)


def member_limit_refusal(organization: Organization, email: str) -> str | None:
    """The form's early answer to an invitation beyond the plan's max_users (no lock)."""
    from billing.limits import MEMBERS, refusal

    pending = (
        OrganizationUser.objects.filter(organization=organization, user__email__iexact=email)
        .filter(invitation_token__isnull=False, invitation_accepted_at__isnull=True)
        .values_list("pk", flat=True)
        .first()
    )
    return refusal(organization, MEMBERS, exclude_pk=pending)


def is_member(organization: Organization, email: str) -> bool:
    """Whether `email` (case-insensitive) has an accepted membership of `organization`."""
    return (
        OrganizationUser.objects.filter(organization=organization, user__email__iexact=email)
        .exclude(invitation_token__isnull=False, invitation_accepted_at__isnull=True)
        .exists()
    )


def invitation_send(*, invitation: Invitation, accept_url: str) -> None:
    """The invitation email: the link goes to the invitee only, never to the inviter's screen
    (whoever holds the link of a new account sets its password)."""
    from django.core.mail import send_mail

    membership = invitation.membership
    action = "set your password and join" if invitation.new_account else "accept and join"
    send_mail(
        subject=f"You are invited to {membership.organization} on RouteOptimizer",
        message=(
            f"{membership.invited_by or 'An administrator'} invited you to "
            f"{membership.organization} as {membership.role}.\n\n"
            f"Open this link to {action} (valid for {INVITATION_LIFETIME.days} days, once):\n"
            f"{accept_url}\n"
        ),
        from_email=None,
        recipient_list=[membership.user.email],
    )


def invitation_for_token(token: str) -> OrganizationUser:
    """The pending, unexpired invitation of `token` in an active organization, or
    InvitationInvalid (the same for every reason)."""
    from accounts.tokens import hash_token

    if not token or len(token) > 100 or "\x00" in token:
        raise InvitationInvalid("this invitation link is not valid (used, expired or mistyped)")
    # The token is the authority here, and its holder has no claim yet: Django looks the one
    # invitation of this hash up as the platform, for this query only.
    with organization_context(None), platform_access():
        membership = _pending_invitation(hash_token(token))
        if membership is not None:
            # Read now, as the platform: whether the account has a password decides the page
            # (the invitee's own claim reads it again when accepting).
            membership.user.has_usable_password()
    if membership is None or not membership.user.is_active:
        raise InvitationInvalid("this invitation link is not valid (used, expired or mistyped)")
    return membership


def _pending_invitation(token_hash: str) -> OrganizationUser | None:
    return (
        OrganizationUser.objects.select_related("organization", "user")
        .filter(
            invitation_token=token_hash,
            invitation_accepted_at__isnull=True,
            organization__is_active=True,
            created_at__gt=timezone.now() - INVITATION_LIFETIME,
        )
        .first()
    )


def invitation_accept(*, token: str, password: str | None = None, user=None) -> OrganizationUser:
    """Accept the invitation of `token`: once, before it expires.

    A new account (no usable password) gives `password` (the caller validated it). An existing
    account proves it is theirs: `user` signed in as the invitee, or their current `password`.
    Anything else raises InvitationInvalid, and nothing changes.
    """
    found = invitation_for_token(token)
    # From here on, as the invitee: their own account and membership (tenants.claims).
    with claim_user(found.user_id), transaction.atomic():
        membership = OrganizationUser.objects.select_for_update().get(pk=found.pk)
        if not _pending(membership):
            raise InvitationInvalid("this invitation link is not valid (used, expired or mistyped)")
        invitee = membership.user
        if not invitee.has_usable_password():
            if not password:
                raise InvitationInvalid("choose a password to accept the invitation")
            invitee.set_password(password)
            invitee.save()
        elif not (
            (user is not None and user.is_authenticated and user.pk == invitee.pk)
            or (password and invitee.check_password(password))
        ):
            raise InvitationInvalid(
                "sign in as the invited account (or give its password) to accept"
            )
        membership.invitation_token = None
        membership.invitation_accepted_at = timezone.now()
        if not OrganizationUser.objects.filter(user=invitee, is_primary_org=True).exists():
            membership.is_primary_org = True
        membership.save()
    return membership


def _owners_left(membership: OrganizationUser) -> int:
    """Accepted owners of the membership's organization other than this membership."""
    return (
        OrganizationUser.objects.filter(organization_id=membership.organization_id, role=Role.OWNER)
        .exclude(pk=membership.pk)
        .exclude(invitation_token__isnull=False, invitation_accepted_at__isnull=True)
        .count()
    )


def membership_refusal(
    *, membership: OrganizationUser, actor_role, new_role=None, removing: bool = False
) -> str | None:
    """Why `actor_role` may not give `membership` `new_role` (or remove it), None if it may.

    The rules of tenants.permissions: only owners and admins manage members, nobody grants a
    role above their own or acts on a member above them; and no organization loses its last
    owner (superusers included: removing the organization is the way to end it).
    """
    from tenants.permissions import may_grant_role, may_manage_member

    if not may_manage_member(actor_role, membership.role):
        return f"your role may not change a member who is {membership.role}"
    if new_role is not None and not may_grant_role(actor_role, new_role):
        return f"your role may not grant '{new_role}': pick a role up to your own"
    leaves_owners = removing or (new_role is not None and new_role != Role.OWNER)
    if (
        membership.role == Role.OWNER
        and not _pending(membership)
        and leaves_owners
        and _owners_left(membership) == 0
    ):
        return (
            f"{membership.user} is the last owner of {membership.organization}: make another "
            f"member owner first"
        )
    return None


def membership_change_role(
    *, membership: OrganizationUser, role: str, actor_role
) -> OrganizationUser:
    with transaction.atomic():
        current = OrganizationUser.objects.select_for_update().get(pk=membership.pk)
        # Lock the organization's owners too, so two demotions cannot both pass the check.
        list(
            OrganizationUser.objects.select_for_update()
            .filter(organization_id=current.organization_id, role=Role.OWNER)
            .values_list("pk", flat=True)
        )
        refusal = membership_refusal(membership=current, actor_role=actor_role, new_role=role)
        if refusal:
            raise MembershipError(refusal)
        current.role = role
        current.save(update_fields=["role", "updated_at"])
    membership.role = role
    return current


def organization_remove_member(*, membership: OrganizationUser, actor_role) -> None:
    with transaction.atomic():
        current = OrganizationUser.objects.select_for_update().filter(pk=membership.pk).first()
        if current is None:
            return
        list(
            OrganizationUser.objects.select_for_update()
            .filter(organization_id=current.organization_id, role=Role.OWNER)
            .values_list("pk", flat=True)
        )
        refusal = membership_refusal(membership=current, actor_role=actor_role, removing=True)
        if refusal:
            raise MembershipError(refusal)
        current.delete()


def account_managed_by(*, target, actor_roles: dict | None) -> bool:
    """Whether staff holding `actor_roles` ({organization id: role}; None: a superuser) may
    change `target`'s password, email, active flag or delete the account.

    Only when every organization the account belongs to (accepted or invited) is one where the
    staff member manages members and holds a role at least the account's: an account that also
    belongs to another organization is that organization's too, and only the user themself or
    a superuser changes it.
    """
    from tenants.permissions import may_manage_member

    if actor_roles is None:
        return True
    if target.is_superuser:
        return False
    # The staff member's claim hides the account's other organizations; PostgreSQL tells
    # whether there are any (tenants.verification), nothing more.
    with connection.cursor() as cursor:
        cursor.execute("SELECT tenancy_account_elsewhere(%s)", [target.pk])
        if cursor.fetchone()[0]:
            return False
    memberships = list(
        OrganizationUser.objects.filter(user=target).values_list("organization_id", "role")
    )
    return bool(memberships) and all(
        may_manage_member(actor_roles.get(organization_id), role)
        for organization_id, role in memberships
    )


def last_owner_of_any(user) -> bool:
    """Whether removing `user` would leave an organization without an accepted owner."""
    for membership in OrganizationUser.objects.filter(user=user, role=Role.OWNER).exclude(
        invitation_token__isnull=False, invitation_accepted_at__isnull=True
    ):
        if _owners_left(membership) == 0:
            return True
    return False
