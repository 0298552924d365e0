"""The contract step: run once the old application is gone (see tenants.rls.contract_tenancy).

One maintenance command at a time, like migrate (tenants.conversion.advisory: --nowait,
--lock-wait)."""

from django.core.management.base import BaseCommand, CommandError
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections

from tenants.conversion.advisory import MaintenanceLockBusy, maintenance_lock, session_settings
from tenants.conversion.diagnosis import describe, is_connection_failure
from tenants.management.base import runs_as_owner
from tenants.management.commands.migrate import add_lock_arguments
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
        add_lock_arguments(parser)

    def handle(self, *args, undo, database, nowait, lock_wait, lock_timeout, **options):
        connection = connections[database]
        try:
            session_settings(connection, "contract_tenancy", lock_timeout)
            with maintenance_lock(
                connection,
                "contract_tenancy",
                nowait=nowait,
                wait=lock_wait,
                progress=self.stdout.write,
            ):
                changes = contract_tenancy(connection, undo=undo, progress=self.stdout.write)
        except (ContractError, MaintenanceLockBusy) as error:
            raise CommandError(str(error)) from error
        except DatabaseError as error:
            if is_connection_failure(error):
                raise
            raise CommandError(describe(error, "contract_tenancy")) from error
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
