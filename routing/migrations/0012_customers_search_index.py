"""Issue 13: a customer search reads the index, not the table (M031, ours).

`?search=` looks for a substring in a customer's display_name, name, address and email
(routing.api.CustomerViewSet.search_fields). Under row level security no index can serve the
substring itself (LIKE is not LEAKPROOF: routing.0011, docs/tenant-isolation.md), so a search
reads every row of the organization and filters them; with 200 organizations sharing the table
an organization's 5,000 customers lie on about 5,000 heap pages, where alone they fill about a
hundred: the search read fifty times the pages of the same search in a database of its own.

The list index (organization_id, display_name, id) now also holds the searched columns
(INCLUDE: stored in the index, not keys), and a search asks for its page's keys and its count
first (tenants.api.SearchPaginator): an index-only scan of the organization's entries,
contiguous in the index whatever the number of organizations, evaluating the LIKE on the
entries (after the policy, as before), then the page's rows by primary key. The list's default
order still walks the same index. It replaces idx_customers_org_display_name rather than adding
an index beside it: one index more on every write of customers would slow every write and every
import (docs/organizations.md) for the same order.

Locks: CREATE INDEX CONCURRENTLY, then DROP INDEX CONCURRENTLY of the index it replaces: SHARE
UPDATE EXCLUSIVE on customers for each (reads and writes go on; the build is one scan of the
table). The new index exists before the old one goes, so the list always has one.

atomic = False (CONCURRENTLY cannot run in a transaction); idempotent: a valid index is kept, an
invalid one left by an interrupted build is dropped and built again, and the drop is IF EXISTS.
Reverse: the old index built again concurrently, then the new one dropped.
"""

from django.db import migrations

from tenants.conversion.operations import CreateIndexConcurrently, DropIndexConcurrently

SEARCH_INDEX = (
    "customers",
    "idx_customers_org_display_name_search",
    "(organization_id, display_name, id) INCLUDE (name, address, email)",
)
REPLACED = ("customers", "idx_customers_org_display_name", "(organization_id, display_name, id)")


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("routing", "0011_organization_list_indexes"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                CreateIndexConcurrently(*SEARCH_INDEX),
                DropIndexConcurrently(*REPLACED),
            ],
        ),
    ]
