"""Plan limits, enforced at the write: one check per limit, which every path reaches.

- `customers` (max_customers), `drivers` (max_techs): every row of the organization counts.
- `members` (max_users): accepted memberships and pending invitations alike (an invitation
  holds a seat: accepting it must not fail later).
- `routes per service day` (max_routes_per_day): the organization's routes on one service day
  (routes are a weekly schedule, one per driver and day); creating a route, or moving one to a
  day that is full, is refused.

NULL in the column: unlimited. Rows above a limit that was lowered stay; only new ones are
refused (`count >= maximum` refuses the next).

Race-free: the check locks the organization's row (`SELECT ... FOR NO KEY UPDATE`) before it
counts, in the transaction that inserts (a request is one transaction, ATOMIC_REQUESTS), so two
requests racing for the last slot run one after the other and the second sees the first's row.
FOR NO KEY UPDATE does not conflict with the FOR KEY SHARE that foreign-key checks take, so
other writes referencing the organization go on; it serializes this organization's limited
inserts only, and only while the inserting transaction lasts. bench/plan_limits.py measures it.

Paths: routing.models' Customer, Driver and Route call `enforce_on_save` from `save()` (the API,
the admin and any service or command that saves them); tenants.services.organization_invite_member
calls `enforce` for members; forms call `refusal` to show the same line as a form error before
anything is saved. `bulk_create` bypasses `save()`: nothing in the application uses it for
these models.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.apps import apps
from django.conf import settings
from django.db import connection, transaction
from psycopg import sql


@dataclass(frozen=True)
class Limit:
    name: str  # what the message calls the rows
    column: str  # the organization's column holding the maximum
    model: str  # app_label.Model whose rows count


CUSTOMERS = Limit("customers", "max_customers", "routing.Customer")
TECHS = Limit("drivers (technicians)", "max_techs", "routing.Driver")
MEMBERS = Limit("members (users and pending invitations)", "max_users", "tenants.OrganizationUser")
ROUTES_PER_DAY = Limit("routes per service day", "max_routes_per_day", "routing.Route")


class PlanLimitReached(Exception):
    """A write the organization's plan does not allow; the message is the one line to show."""

    def __init__(self, message: str, *, limit: Limit, count: int, maximum: int):
        super().__init__(message)
        self.limit, self.count, self.maximum = limit, count, maximum


def enabled() -> bool:
    """ROUTEOPTIMIZER_PLANS_ENFORCED (default on): limits, the status check and metering; off
    only for the benchmarks' comparison."""
    return getattr(settings, "ROUTEOPTIMIZER_PLANS_ENFORCED", True)


def _count(organization, limit: Limit, *, service_day=None, exclude_pk=None) -> int:
    model = apps.get_model(limit.model)
    manager = getattr(model, "unscoped", model._default_manager)
    rows = manager.filter(organization_id=organization.pk)
    if service_day is not None:
        rows = rows.filter(service_day=service_day)
    if exclude_pk is not None:
        rows = rows.exclude(pk=exclude_pk)
    return rows.count()


def _lock_and_read(organization, column: str):
    """Lock the organization's row and read `column` (one of the limit columns) as committed:
    one round trip."""
    with connection.cursor() as cursor:
        cursor.execute(
            sql.SQL("SELECT {} FROM organizations WHERE id = %s FOR NO KEY UPDATE").format(
                sql.Identifier(column)
            ),
            [organization.pk],
        )
        row = cursor.fetchone()
    return row[0] if row else None


def _message(organization, limit: Limit, count: int, maximum: int, service_day=None) -> str:
    from billing.plans import next_tier_allowing

    where = f" on {service_day}" if service_day else ""
    upgrade = next_tier_allowing(organization.plan_tier, limit.column, count)
    if upgrade is not None:
        allowed = getattr(upgrade, limit.column)
        how = (
            f"upgrade to the {upgrade.tier} plan ("
            f"{'unlimited' if allowed is None else allowed} {limit.name})"
        )
    else:
        how = "ask the platform to raise the organization's limit"
    return (
        f"plan limit reached: organization '{organization.slug}' ({organization.plan_tier} plan) "
        f"allows {maximum} {limit.name}{where} ({limit.column}) and has {count}; remove one, or "
        f"{how}"
    )


def refusal(organization, limit: Limit, *, service_day=None, exclude_pk=None) -> str | None:
    """The one-line reason a new row would exceed `limit`, or None; no lock (forms ask this
    first; the save asks `enforce`, which locks)."""
    maximum = getattr(organization, limit.column)
    if maximum is None or not enabled():
        return None
    count = _count(organization, limit, service_day=service_day, exclude_pk=exclude_pk)
    if count < maximum:
        return None
    return _message(organization, limit, count, maximum, service_day)


def enforce(organization, limit: Limit, *, service_day=None, exclude_pk=None) -> None:
    """Raise PlanLimitReached unless one more row fits `limit`. Call inside the transaction that
    inserts the row: the organization's row stays locked until it ends."""
    if not enabled():
        return
    # The maximum as committed now, read under the lock: not the request's copy, which a
    # superuser may have changed meanwhile.
    maximum = _lock_and_read(organization, limit.column)
    if maximum is None:
        return
    count = _count(organization, limit, service_day=service_day, exclude_pk=exclude_pk)
    if count >= maximum:
        raise PlanLimitReached(
            _message(organization, limit, count, maximum, service_day),
            limit=limit,
            count=count,
            maximum=maximum,
        )


def organization_of(instance):
    """The instance's organization: loaded already, visible to the claim, or (for code Django
    authorized as the platform, writing through `unscoped` inside another organization's
    context) visible outside any organization. None: the writer cannot see it, and PostgreSQL
    refuses the row anyway."""
    from tenants.context import organization_context
    from tenants.models import Organization

    organization = instance._state.fields_cache.get("organization")
    if organization is None:
        organization = Organization.objects.filter(pk=instance.organization_id).first()
    if organization is None:
        with organization_context(None):
            organization = Organization.objects.filter(pk=instance.organization_id).first()
    return organization


def enforce_on_save(instance) -> None:
    """For the limited models' save(): a new row (and a route moved to another service day)
    must fit the organization's plan. Runs inside the save's transaction."""
    if not enabled() or instance.organization_id is None:
        return
    limit = instance.plan_limit
    if limit is not ROUTES_PER_DAY and not instance._state.adding:
        return
    if limit is ROUTES_PER_DAY and not instance._state.adding:
        # Moving a route: only when it lands on a day it was not on.
        loaded = instance.loaded_value("service_day")
        if loaded is None or loaded == instance.service_day:
            return
    organization = organization_of(instance)
    if organization is None:
        return
    if limit is ROUTES_PER_DAY:
        exclude = None if instance._state.adding else instance.pk
        enforce(organization, limit, service_day=instance.service_day, exclude_pk=exclude)
    else:
        enforce(organization, limit)


class PlanLimited:
    """Mixin for models whose rows an organization's plan limits (`plan_limit`), and whose
    creation is metered (`record_usage(created)`): the check, the save and the usage record are
    one transaction."""

    plan_limit: Limit

    def save(self, *args, **kwargs):
        if not connection.in_atomic_block:
            with transaction.atomic():
                return self._save_limited(*args, **kwargs)
        # Already in a transaction (a request, the admin, a service): no savepoint, and a
        # refusal raised before anything is written leaves that transaction usable.
        return self._save_limited(*args, **kwargs)

    def _save_limited(self, *args, **kwargs):
        adding = self._state.adding
        enforce_on_save(self)
        super().save(*args, **kwargs)
        self.record_usage(created=adding)
        self._loaded_values = self._tracked_values()

    # Fields whose value as loaded from the database the save compares with (a route moved to
    # another day, a route re-optimized).
    tracked_fields: tuple[str, ...] = ()
    _loaded_values: dict = {}

    @classmethod
    def from_db(cls, db, field_names, values):
        instance = super().from_db(db, field_names, values)
        instance._loaded_values = instance._tracked_values()
        return instance

    def _tracked_values(self) -> dict:
        return {name: self.__dict__.get(name) for name in self.tracked_fields}

    def loaded_value(self, name: str):
        return self._loaded_values.get(name)

    def record_usage(self, *, created: bool) -> None:
        """Usage the save meters (billing.usage); nothing by default."""


def form_limit_refusal(instance, organization_id, cleaned: dict) -> str | None:
    """For the admin's forms: the line refusing `instance` (not saved yet, with the form's
    `cleaned` data) under its organization's plan, or None."""
    from tenants.models import Organization

    if not isinstance(instance, PlanLimited) or organization_id is None or not enabled():
        return None
    organization = cleaned.get("organization")
    if not isinstance(organization, Organization) or organization.pk != organization_id:
        organization = Organization.objects.filter(pk=organization_id).first()
    if organization is None:
        return None
    limit = instance.plan_limit
    if limit is ROUTES_PER_DAY:
        day = cleaned.get("service_day", instance.service_day)
        if instance._state.adding:
            return refusal(organization, limit, service_day=day)
        if day and day != instance.loaded_value("service_day"):
            return refusal(organization, limit, service_day=day, exclude_pk=instance.pk)
        return None
    return refusal(organization, limit) if instance._state.adding else None
