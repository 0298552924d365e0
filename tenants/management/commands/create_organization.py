"""Onboard a new organization: see tenants.services.organization_create."""

from django.core.management.base import BaseCommand, CommandError

from tenants.management.base import runs_as_owner
from tenants.services import OrganizationCreateError, organization_create


@runs_as_owner
class Command(BaseCommand):
    help = (
        "Create an organization on a trial of the starter plan, with its owner (a new user, or "
        "the existing one with that email) and its trial subscription, in one transaction."
    )

    def add_arguments(self, parser):
        parser.add_argument("--name", required=True, help="The organization's name.")
        parser.add_argument(
            "--slug", required=True, help="Its slug: <slug>.<base domain> and X-Organization."
        )
        parser.add_argument("--owner-email", required=True, help="The owner's email.")
        parser.add_argument(
            "--owner-password",
            help="A password for a new owner (omitted: an unusable one; set it later with "
            "`manage.py changepassword <email>`).",
        )

    def handle(self, *args, name, slug, owner_email, owner_password, **options):
        try:
            organization = organization_create(
                name=name, slug=slug, owner_email=owner_email, owner_password=owner_password
            )
        except OrganizationCreateError as error:
            raise CommandError(f"{error}; nothing was created") from error
        self.stdout.write(
            self.style.SUCCESS(
                f"Created organization {organization.name!r} (slug {organization.slug}, id "
                f"{organization.pk}) on a starter trial until "
                f"{organization.trial_ends_at:%Y-%m-%d}, owned by {owner_email}."
            )
        )
