"""What tenants' management commands share: the owner's connection and `--organization`.

- `runs_as_owner`: a class decorator for commands that migrate or maintain the database
  (migrate, contract_tenancy, rollback_tenancy, validate_tenancy, ...). The command connects as
  the owner role (MIGRATION_DATABASE_URL) instead of the application role, with
  `app.unscoped = on` for its session (tenants.roles).
- `OrganizationCommand`: a base for commands about one organization; it adds
  `--organization <slug or id>` and turns an unknown one into a one-line CommandError.
"""

from __future__ import annotations

import functools

from django.core.management.base import BaseCommand, CommandError
from django.db import DEFAULT_DB_ALIAS

from tenants.roles import owner_connection


def runs_as_owner(command_class):
    """The decorated command runs connected as the owner role."""
    execute = command_class.execute

    @functools.wraps(execute)
    def execute_as_owner(self, *args, **options):
        with owner_connection(options.get("database") or DEFAULT_DB_ALIAS):
            return execute(self, *args, **options)

    command_class.execute = execute_as_owner
    command_class.runs_as_owner = True
    return command_class


class OrganizationCommand(BaseCommand):
    """A command about one organization: `--organization <slug or id>` (required)."""

    def add_arguments(self, parser):
        parser.add_argument(
            "--organization",
            required=True,
            help="The organization: its slug (e.g. demo) or its id.",
        )

    def get_organization(self, value: str):
        from tenants.selectors import organization_by_slug_or_id

        organization = organization_by_slug_or_id(value)
        if organization is None:
            raise CommandError(
                f"no organization with slug or id {value!r}: list them in the admin "
                f"(/admin/tenants/organization/) or create one with create_organization"
            )
        return organization

    def execute(self, *args, **options):
        if options.get("organization") is not None:
            options["organization"] = self.get_organization(options["organization"])
        return super().execute(*args, **options)
