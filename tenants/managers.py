"""Fail-closed scoping for tenant-owned models, and `unscoped`, the one way across organizations.

`objects` (the default manager) filters every query by the current organization and raises
OrganizationNotSet when there is none; its querysets refuse to create, update or move rows into
another organization. A model instance saves or deletes only in its own organization.

`unscoped` is the one explicit, greppable escape hatch, for code that must cross organizations
(maintenance commands, the superuser admin, validation). It lifts both layers at once: no
organization filter in the ORM, and, while its queries run, `app.unscoped = on` on the
transaction so PostgreSQL's row level security lets them through as well (tenants.connection,
tenants.rls). Instances it loads may be saved and deleted whatever the current organization.
Nothing else sets that flag: raw SQL and `objects` stay inside the current organization.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from django.db import models
from django.db.models.expressions import Combinable

from tenants.context import current_organization

# True while an `unscoped` query or write runs; tenants.connection puts it on the transaction.
_unscoped_access: ContextVar[bool] = ContextVar("unscoped_access", default=False)

# Set on instances loaded or created through `unscoped`: they may cross organizations.
_UNSCOPED_MARK = "_loaded_unscoped"


def unscoped_access_active() -> bool:
    """Whether the running query comes from the `unscoped` escape hatch."""
    return _unscoped_access.get()


@contextmanager
def _unscoped() -> Iterator[None]:
    token = _unscoped_access.set(True)
    try:
        yield
    finally:
        _unscoped_access.reset(token)


class CrossOrganizationWrite(PermissionError):
    """A write through the scoped path would put or change a row in another organization."""


def _same_organization(organization_id, organization) -> bool:
    return organization_id is not None and str(organization_id) == str(organization.pk)


def _value_organization_id(value):
    return value.pk if isinstance(value, models.Model) else value


class OrganizationScopedQuerySet(models.QuerySet):
    """The current organization's rows; writes into another organization are refused."""

    def _check_rows(self, objs, action: str) -> None:
        organization = current_organization(f"{action} {self.model.__name__} rows")
        for obj in objs:
            if obj.organization_id is None:
                obj.organization = organization
            elif not _same_organization(obj.organization_id, organization):
                raise CrossOrganizationWrite(
                    f"refusing to {action} a {self.model.__name__} of organization "
                    f"{obj.organization_id} while the current organization is {organization.pk}; "
                    f"use {self.model.__name__}.unscoped where crossing organizations is intended"
                )

    def bulk_create(self, objs, *args, **kwargs):
        objs = list(objs)
        self._check_rows(objs, "bulk_create")
        return super().bulk_create(objs, *args, **kwargs)

    def bulk_update(self, objs, fields, *args, **kwargs):
        objs = list(objs)
        self._check_rows(objs, "bulk_update")
        return super().bulk_update(objs, fields, *args, **kwargs)

    def update(self, **kwargs):
        for name in ("organization", "organization_id"):
            if name in kwargs:
                organization = current_organization(f"updating {self.model.__name__} rows")
                value = _value_organization_id(kwargs[name])
                if isinstance(value, Combinable) or not _same_organization(value, organization):
                    raise CrossOrganizationWrite(
                        f"refusing to move {self.model.__name__} rows out of organization "
                        f"{organization.pk}; use {self.model.__name__}.unscoped where crossing "
                        f"organizations is intended"
                    )
        return super().update(**kwargs)

    update.alters_data = True


class CurrentOrganizationId(models.Expression):
    """The current organization's id, read when the query is compiled, i.e. run.

    Building a queryset never needs an organization (frameworks build them at import time to
    introspect: forms, filters, serializers); running one does, and raises OrganizationNotSet
    without it. A queryset runs in the organization current when it runs, as row level
    security does.
    """

    output_field = models.UUIDField()

    def __init__(self, model_name: str):
        super().__init__()
        self.model_name = model_name

    def as_sql(self, compiler, connection):
        organization = current_organization(f"a query on {self.model_name}")
        return "%s", [organization.pk]


class OrganizationScopedManager(models.Manager.from_queryset(OrganizationScopedQuerySet)):
    """The default manager of tenant-owned models: only the current organization's rows.

    Models whose rows without an organization are shared templates (`shares_global_rows`)
    also list those, read-only: saving or deleting them needs `unscoped`.
    """

    def get_queryset(self):
        queryset = super().get_queryset()
        current = models.Q(organization_id=CurrentOrganizationId(self.model.__name__))
        if getattr(self.model, "shares_global_rows", False):
            return queryset.filter(current | models.Q(organization__isnull=True))
        return queryset.filter(current)


class UnscopedQuerySet(models.QuerySet):
    """Every organization's rows, in the ORM and through row level security."""

    @staticmethod
    def _mark(objs):
        for obj in objs:
            if isinstance(obj, models.Model):
                setattr(obj, _UNSCOPED_MARK, True)
        return objs

    def _fetch_all(self):
        with _unscoped():
            super()._fetch_all()
        if self._result_cache:
            self._mark(self._result_cache)

    def iterator(self, chunk_size=None):
        rows = super().iterator(chunk_size)
        while True:
            # Set for each fetch only, never across a `yield`: the caller's code between two
            # rows must not run with the escape hatch open.
            with _unscoped():
                try:
                    row = next(rows)
                except StopIteration:
                    return
            self._mark([row])
            yield row

    def create(self, **kwargs):
        obj = self.model(**kwargs)
        setattr(obj, _UNSCOPED_MARK, True)
        self._for_write = True
        obj.save(force_insert=True, using=self.db)
        return obj

    create.alters_data = True


def _unscoped_method(name: str):
    def method(self, *args, **kwargs):
        with _unscoped():
            return getattr(super(UnscopedQuerySet, self), name)(*args, **kwargs)

    method.__name__ = name
    method.__doc__ = getattr(models.QuerySet, name).__doc__
    if getattr(getattr(models.QuerySet, name), "alters_data", False):
        method.alters_data = True
    return method


for _name in (
    "count",
    "exists",
    "contains",
    "aggregate",
    "explain",
    "update",
    "_update",
    "delete",
    "_raw_delete",
    "bulk_create",
    "bulk_update",
):
    setattr(UnscopedQuerySet, _name, _unscoped_method(_name))


class UnscopedManager(models.Manager.from_queryset(UnscopedQuerySet)):
    """Every organization's rows. Use only where crossing organizations is the point."""


class OrganizationOwned(models.Model):
    """Base for tenant-owned models: a scoped default manager; the organization checked on save.

    A new row without an organization gets the current one; a row of another organization is
    refused on save and delete unless it came through `unscoped`.
    """

    # `objects` first: the default manager. The base manager (related-object access such as
    # `stop.route`) stays Django's plain one: no organization filter in the ORM, and only the
    # current organization in PostgreSQL; from rows loaded through `unscoped`, follow relations
    # with select_related or through `unscoped` as well.
    objects = OrganizationScopedManager()
    unscoped = UnscopedManager()

    # True on models whose rows without an organization are global templates every organization
    # reads (billing.ServicePlan); only `unscoped` writes them.
    shares_global_rows = False

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        if self.loaded_unscoped:
            with _unscoped():
                return super().save(*args, **kwargs)
        self._check_organization("save")
        return super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        if self.loaded_unscoped:
            with _unscoped():
                return super().delete(*args, **kwargs)
        self._check_organization("delete")
        return super().delete(*args, **kwargs)

    def refresh_from_db(self, *args, **kwargs):
        if self.loaded_unscoped:
            with _unscoped():
                return super().refresh_from_db(*args, **kwargs)
        return super().refresh_from_db(*args, **kwargs)

    @property
    def loaded_unscoped(self) -> bool:
        return getattr(self, _UNSCOPED_MARK, False)

    def _check_organization(self, action: str):
        organization = current_organization(f"{action} a {type(self).__name__}")
        if self.organization_id is None:
            if not self._state.adding:
                raise CrossOrganizationWrite(
                    f"refusing to {action} {type(self).__name__} {self.pk}: it belongs to no "
                    f"organization (a shared template); use {type(self).__name__}.unscoped"
                )
            self.organization = organization
        elif not _same_organization(self.organization_id, organization):
            raise CrossOrganizationWrite(
                f"refusing to {action} {type(self).__name__} {self.pk} of organization "
                f"{self.organization_id} while the current organization is {organization.pk}; "
                f"use {type(self).__name__}.unscoped where crossing organizations is intended"
            )
