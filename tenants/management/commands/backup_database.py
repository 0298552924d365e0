"""backup_database: a verified custom-format pg_dump, optionally restore-tested.

The work is tenants.conversion.backup's."""

from django.core.management.base import BaseCommand, CommandError
from django.db import connections

from tenants.conversion.backup import BackupError, backup_database
from tenants.management.base import runs_as_owner


# The owner role: pg_dump must read every table, every organization's rows.
@runs_as_owner
class Command(BaseCommand):
    help = (
        "Dump the database with pg_dump (custom format, timestamped name, default directory "
        "ROUTEOPTIMIZER_DATA_DIR/backups), verify it with pg_restore --list and, with "
        "--restore-test, restore it into a scratch database and compare every table's row "
        "count. Exit 1 when the backup or its test fails, 2 when it cannot be attempted."
    )
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument(
            "--output",
            help="File to write, or a directory for the timestamped file "
            "(default: ROUTEOPTIMIZER_DATA_DIR/backups/).",
        )
        parser.add_argument(
            "--restore-test",
            action="store_true",
            help="Restore the dump into a scratch database, compare row counts, drop it.",
        )
        parser.add_argument("--database", default="default", help="Database alias.")

    def handle(self, *args, **options):
        settings_dict = connections[options["database"]].settings_dict
        try:
            result = backup_database(
                settings_dict,
                output=options["output"],
                restore_test=options["restore_test"],
                progress=self.stdout.write,
            )
        except BackupError as error:
            raise CommandError(str(error), returncode=error.exit_code) from error
        test = result.restore_test
        if test is not None and not test.passed:
            for mismatch in test.mismatches:
                self.stdout.write(self.style.ERROR(f"  - {mismatch}"))
            raise CommandError(
                f"the restore test failed: {len(test.mismatches)} tables differ from the source "
                f"(listed above); the backup {result.path} is not to be trusted",
                returncode=1,
            )
        if test is not None:
            self.stdout.write(
                f"restore test passed: {test.tables} tables, {test.rows:,} rows, every count "
                f"equal to the source's; scratch database {test.database} dropped "
                f"({test.duration_seconds:.1f}s)"
            )
        self.stdout.write(
            self.style.SUCCESS(
                f"Backup written and verified: {result.path} ({result.size:,} bytes, "
                f"{result.duration_seconds:.1f}s). Restore it into a new, empty database: "
                f"createdb <new> && pg_restore --dbname=<new> {result.path}"
            )
        )
