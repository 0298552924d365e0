"""Django's `changepassword`, run as the owner role: accounts are the platform's to manage, and the
application role can neither list them nor touch a password hash (tenants.verification)."""

from django.contrib.auth.management.commands import changepassword

from tenants.management.base import runs_as_owner


@runs_as_owner
class Command(changepassword.Command):
    pass
