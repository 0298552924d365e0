"""Fail-closed scoping for tenant-owned models.

`objects` (the default manager) filters every query by the current organization and raises
OrganizationNotSet when there is none. `unscoped` is the one explicit, greppable escape hatch
for code that must cross organizations (commands, the superuser admin, migrations, validation).
"""

from __future__ import annotations

from django.db import models

from tenants.context import current_organization


class OrganizationScopedQuerySet(models.QuerySet):
    pass


class OrganizationScopedManager(models.Manager.from_queryset(OrganizationScopedQuerySet)):
    """The default manager of tenant-owned models: only the current organization's rows."""

    def get_queryset(self):
        organization = current_organization(f"a query on {self.model.__name__}")
        return super().get_queryset().filter(organization=organization)


class UnscopedManager(models.Manager):
    """Every organization's rows. Use only where crossing organizations is the point."""


class OrganizationOwned(models.Model):
    """Base for tenant-owned models: a scoped default manager; the organization checked on save."""

    objects = OrganizationScopedManager()
    unscoped = UnscopedManager()

    class Meta:
        abstract = True
        # Related lookups and the admin's unscoped paths go through `unscoped` explicitly;
        # the default manager stays the scoped one.
        default_manager_name = "objects"
        base_manager_name = "unscoped"

    def save(self, *args, **kwargs):
        organization = current_organization(f"saving a {type(self).__name__}")
        if self.organization_id is None:
            self.organization = organization
        elif self.organization_id != organization.id:
            raise PermissionError(
                f"refusing to save {type(self).__name__} {self.pk} into organization "
                f"{self.organization_id} while the current organization is {organization.id}"
            )
        super().save(*args, **kwargs)
