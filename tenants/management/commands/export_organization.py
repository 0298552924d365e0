"""export_organization: one organization as a standalone legacy database.

The work is tenants.conversion.exporting's."""

from django.core.management.base import BaseCommand, CommandError

from tenants.conversion.exporting import ExportRefused, export_organization
from tenants.management.base import runs_as_owner


@runs_as_owner
class Command(BaseCommand):
    help = (
        "Write one organization's customers, drivers, routes and stops as a standalone legacy "
        "RouteOptimizer database (legacy schema, billing columns rebuilt, imported ids given "
        "back), into an empty database (--to) or a plain SQL file for psql (--to-file)."
    )

    def add_arguments(self, parser):
        parser.add_argument("slug", help="The organization's slug.")
        destination = parser.add_mutually_exclusive_group(required=True)
        destination.add_argument(
            "--to", dest="to_uri", metavar="URI", help="libpq URI of an empty database."
        )
        destination.add_argument(
            "--to-file", metavar="PATH", help="A new plain SQL file (load it with psql -f)."
        )

    def handle(self, *args, slug, to_uri, to_file, **options):
        try:
            result = export_organization(
                slug=slug, to_uri=to_uri, to_file=to_file, progress=self.stdout.write
            )
        except ExportRefused as error:
            raise CommandError(str(error)) from error
        counts = ", ".join(f"{count} {table}" for table, count in result.counts.items())
        billing = "with" if result.billing_columns else "without"
        self.stdout.write(
            self.style.SUCCESS(
                f"Exported organization {result.slug!r} to {result.destination}: {counts} "
                f"({billing} the billing columns) in {result.seconds:.1f}s."
            )
        )
