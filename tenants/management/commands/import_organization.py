"""import_organization: a legacy database becomes one organization.

The work is tenants.conversion.importing's."""

import json

from django.core.management.base import BaseCommand, CommandError

from tenants.conversion.importing import (
    BATCH_ROWS,
    ImportRefused,
    elapsed,
    id_mapping,
    import_organization,
)
from tenants.management.base import runs_as_owner


@runs_as_owner
class Command(BaseCommand):
    help = (
        "Import another single-tenant RouteOptimizer database (read in one read-only snapshot, "
        "never written) as a new organization of the shared database, in one transaction, "
        "proved row by row; other organizations keep working."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--from",
            dest="source",
            required=True,
            metavar="URI",
            help="libpq URI of the legacy database (postgresql://user:pw@host:port/dbname).",
        )
        parser.add_argument("--slug", required=True, help="The new organization's slug.")
        parser.add_argument("--name", required=True, help="The new organization's name.")
        parser.add_argument(
            "--owner-email",
            required=True,
            help="Its owner: a new account, invited by email (no password set).",
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Print what would be imported (counts, id clashes, billing rows); change nothing.",
        )
        parser.add_argument(
            "--remap-ids",
            action="store_true",
            help="Give rows whose id exists already in the shared database new ids (references "
            "follow; the mapping is kept in tenancy_import_id_map).",
        )
        parser.add_argument(
            "--batch-rows",
            type=int,
            default=BATCH_ROWS,
            metavar="N",
            help=f"Write the rows in slices of about N (default {BATCH_ROWS:,}), all in the "
            f"import's one transaction; a progress line every few seconds between slices.",
        )
        parser.add_argument(
            "--report",
            metavar="PATH",
            help="Also write the import's report as JSON (counts, proof, every remapped id).",
        )

    def handle(
        self,
        *args,
        source,
        slug,
        name,
        owner_email,
        dry_run,
        remap_ids,
        batch_rows,
        report,
        **options,
    ):
        if batch_rows < 1:
            raise CommandError(
                f"--batch-rows {batch_rows} is not a number of rows: give 1 or more "
                f"(default {BATCH_ROWS:,})"
            )
        try:
            result = import_organization(
                source_uri=source,
                slug=slug,
                name=name,
                owner_email=owner_email,
                dry_run=dry_run,
                remap_ids=remap_ids,
                batch_rows=batch_rows,
                progress=self.stdout.write,
            )
        except ImportRefused as error:
            raise CommandError(str(error)) from error

        counts = ", ".join(f"{count} {table}" for table, count in result.source.counts.items())
        billing = ", ".join(f"{count} {what}" for what, count in result.billing.items())
        clashes = (
            ", ".join(f"{count} {table}" for table, count in result.clashes.items() if count)
            or "none"
        )
        if result.dry_run:
            self.stdout.write(
                f"Dry run, nothing changed. Would import as {result.slug!r}: {counts}."
            )
            self.stdout.write(f"  billing (M001): {billing}")
            remap = (
                (
                    " (--remap-ids would give them new ids)"
                    if remap_ids
                    else " (refused without --remap-ids)"
                )
                if clashes != "none"
                else ""
            )
            self.stdout.write(f"  ids existing already in the shared database: {clashes}{remap}")
            return
        mapping = id_mapping(result.organization_id)
        if report:
            with open(report, "w", encoding="utf-8") as handle:
                json.dump(
                    {
                        "organization": {"id": result.organization_id, "slug": result.slug},
                        "source": result.source.description,
                        "rows": result.source.counts,
                        "billing": result.billing,
                        "clashes": result.clashes,
                        "proof": result.proof,
                        "id_map": mapping,
                        "seconds": round(result.seconds, 3),
                    },
                    handle,
                    indent=2,
                )
        rate = result.rows / result.seconds if result.seconds else 0
        self.stdout.write(
            self.style.SUCCESS(
                f"Imported {counts} as organization {result.slug!r} ({result.organization_id}) "
                f"in {elapsed(result.seconds)} ({rate:,.0f} rows/s); proved equal to the source."
            )
        )
        if mapping:
            remapped = sum(len(ids) for ids in mapping.values())
            self.stdout.write(
                f"  {remapped} ids remapped (tenancy_import_id_map"
                f"{', and ' + report if report else ''})"
            )
