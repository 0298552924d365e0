"""`flush`, as the owner: TRUNCATE is the owner's, the application role may not empty tables.

The test suite's transactional tests flush the test database after each test through this.
"""

from django.core.management.commands.flush import Command as DjangoFlushCommand

from tenants.management.base import runs_as_owner


@runs_as_owner
class Command(DjangoFlushCommand):
    pass
