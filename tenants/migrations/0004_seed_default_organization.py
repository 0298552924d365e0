"""Plan step M005: the default organization (slug `demo`) and its owner, idempotently.

The owner's email comes from settings (ROUTEOPTIMIZER_OWNER_EMAIL, default brian@example.com);
no password is hard-coded: the owner gets an unusable password unless
ROUTEOPTIMIZER_OWNER_PASSWORD is set, and `manage.py changepassword <email>` sets one. The owner
is a superuser: this is the operator's account for the admin. Running it again (or after the
rows exist) creates nothing twice.

Locks: row locks on the new tables only.
"""

from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.db import migrations
from django.utils import timezone

DEFAULT_ORGANIZATION = {
    "name": "Demo Organization",
    "subdomain": "demo",
    "plan_tier": "professional",
    "subscription_status": "active",
    "max_users": 10,
    "max_customers": 500,
    "max_techs": 10,
    "is_active": True,
}
PLAN_OWNER_EMAIL = "brian@example.com"


def seed_default_organization(apps, schema_editor):
    Organization = apps.get_model("tenants", "Organization")
    OrganizationUser = apps.get_model("tenants", "OrganizationUser")
    User = apps.get_model("accounts", "User")
    database = schema_editor.connection.alias
    now = timezone.now()

    organization, _ = Organization.objects.using(database).get_or_create(
        slug="demo", defaults={**DEFAULT_ORGANIZATION, "onboarded_at": now}
    )
    email = settings.ROUTEOPTIMIZER_OWNER_EMAIL
    owner = User.objects.using(database).filter(email__iexact=email).first()
    if owner is None:
        owner = User.objects.using(database).create(
            email=email,
            password=make_password(settings.ROUTEOPTIMIZER_OWNER_PASSWORD or None),
            first_name="Brian" if email == PLAN_OWNER_EMAIL else "",
            is_staff=True,
            is_superuser=True,
            email_verified_at=now,
        )
    OrganizationUser.objects.using(database).get_or_create(
        organization=organization,
        user=owner,
        defaults={
            "role": "owner",
            "is_primary_org": not OrganizationUser.objects.using(database)
            .filter(user=owner, is_primary_org=True)
            .exists(),
        },
    )


def remove_default_organization(apps, schema_editor):
    Organization = apps.get_model("tenants", "Organization")
    User = apps.get_model("accounts", "User")
    database = schema_editor.connection.alias
    organization = Organization.objects.using(database).filter(slug="demo").first()
    if organization is None:
        return
    owner_ids = list(
        organization.memberships.filter(role="owner").values_list("user_id", flat=True)
    )
    organization.delete()  # cascades to its memberships
    # The owner goes too unless they belong to another organization by now.
    User.objects.using(database).filter(id__in=owner_ids, memberships__isnull=True).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("tenants", "0003_organization_users"),
    ]

    operations = [
        migrations.RunPython(seed_default_organization, remove_default_organization),
    ]
