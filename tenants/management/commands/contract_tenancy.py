"""The contract step: run once the old application is gone (see tenants.rls.contract_tenancy)."""

from django.core.management.base import BaseCommand, CommandError
from django.db import DEFAULT_DB_ALIAS, connections

from tenants.management.base import runs_as_owner
from tenants.rls import ContractError, contract_tenancy


@runs_as_owner
class Command(BaseCommand):
    help = (
        "Contract the tenancy migration once the old application no longer runs: drop the "
        "organization_id column defaults of the legacy tables and FORCE row level security on "
        "every tenant table. --undo puts both back (for instance to run the old application "
        "again)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--undo",
            action="store_true",
            help="Restore the column defaults and stop forcing row level security.",
        )
        parser.add_argument("--database", default=DEFAULT_DB_ALIAS)

    def handle(self, *args, undo, database, **options):
        try:
            changes = contract_tenancy(connections[database], undo=undo, progress=self.stdout.write)
        except ContractError as error:
            raise CommandError(str(error)) from error
        if not changes:
            state = "expanded (not contracted)" if undo else "contracted"
            self.stdout.write(f"Nothing to do: the database is {state} already.")
        elif undo:
            self.stdout.write(
                self.style.SUCCESS(
                    "Undone: the old application can write again (its rows land in the default "
                    "organization); run contract_tenancy again once it is gone."
                )
            )
        else:
            self.stdout.write(
                self.style.SUCCESS(
                    "Contracted: every write names its organization and row level security "
                    "binds the owner too. `contract_tenancy --undo` reverses it."
                )
            )
