"""Subscription status drives access: trials end, past due is read-only, canceled and suspended
answer nobody; `manage.py expire_trials` moves ended trials, idempotently."""

import datetime
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from billing.models import OrganizationSubscription
from routing.models import Customer
from tenants.claims import platform_access
from tenants.context import organization_context
from tenants.models import Organization, Role
from tests.billing.conftest import set_columns
from tests.factories import OrganizationSubscriptionFactory

NEW_CUSTOMER = {
    "display_name": "New customer",
    "address": "9 Pool Lane",
    "service_type": "residential",
    "difficulty": 1,
    "service_day": "friday",
}


def test_past_due_reads_work_and_writes_answer_one_line(acme, client_as):
    set_columns(acme.organization, subscription_status="past_due")
    client = client_as(acme)
    assert client.get("/api/v1/customers/").status_code == 200
    customer = acme.rows[Customer][0]

    for response in (
        client.post("/api/v1/customers/", NEW_CUSTOMER, format="json"),
        client.patch(f"/api/v1/customers/{customer.pk}/", {"notes": "x"}, format="json"),
        client.delete(f"/api/v1/customers/{customer.pk}/"),
    ):
        assert response.status_code == 402
        assert set(response.json()) == {"error"}
        assert "read-only because its subscription is past due" in response.json()["error"]
    assert Customer.unscoped.filter(organization=acme.organization).count() == 3
    # Revoking one's own token is still allowed.
    assert client.delete("/api/v1/auth/token").status_code == 204


def test_a_trial_ends_on_time_even_before_expire_trials_runs(acme, client_as):
    set_columns(
        acme.organization,
        subscription_status="trial",
        trial_ends_at=timezone.now() - datetime.timedelta(minutes=1),
    )
    client = client_as(acme, Role.MANAGER)
    assert client.get("/api/v1/drivers/").status_code == 200
    response = client.post("/api/v1/customers/", NEW_CUSTOMER, format="json")
    assert response.status_code == 402
    assert "its trial ended on" in response.json()["error"]


def test_a_running_trial_writes(acme, client_as):
    set_columns(
        acme.organization,
        subscription_status="trial",
        trial_ends_at=timezone.now() + datetime.timedelta(days=3),
    )
    response = client_as(acme).post("/api/v1/customers/", NEW_CUSTOMER, format="json")
    assert response.status_code == 201


@pytest.mark.parametrize(
    ("status", "code", "words"),
    [("canceled", 402, "canceled its subscription"), ("suspended", 403, "suspended")],
)
def test_canceled_and_suspended_answer_nobody(acme, client_as, status, code, words):
    set_columns(acme.organization, subscription_status=status)
    for role, paths in (
        (Role.OWNER, ("/api/v1/customers/", "/api/v1/routes/", "/api/v1/usage")),
        (Role.READONLY, ("/api/v1/customers/", "/api/customers")),
    ):
        client = client_as(acme, role)
        for path in paths:
            response = client.get(path)
            assert response.status_code == code, path
            # The legacy endpoint repeats the line under "detail" for its old clients.
            assert set(response.json()) - {"detail"} == {"error"}
            assert words in response.json()["error"]


@pytest.mark.parametrize("status", ["canceled", "suspended"])
def test_a_closed_organizations_member_can_still_revoke_their_token(acme, client_as, status):
    """Revoking the presented token is how a member cuts off a leaked credential: it stays
    possible whatever the subscription, while everything else answers 402/403."""
    client = client_as(acme, Role.TECHNICIAN)
    set_columns(acme.organization, subscription_status=status)
    assert client.get("/api/v1/customers/").status_code in (402, 403)

    assert client.delete("/api/v1/auth/token").status_code == 204

    response = client.get("/api/v1/customers/")
    assert response.status_code == 401  # the token is gone, not merely refused
    assert "revoked" in response.json()["error"]


def test_the_status_check_adds_no_query(acme, client_as, settings):
    client = client_as(acme)
    client.get("/api/v1/customers/?page_size=1")  # warm up (content types, schema caches)

    def queries(enforced: bool) -> int:
        settings.ROUTEOPTIMIZER_PLANS_ENFORCED = enforced
        with CaptureQueriesContext(connection) as captured:
            assert client.get("/api/v1/customers/?page_size=1").status_code == 200
        return len(captured)

    # The meter writes only when due (60 s by default): the request itself queries no more.
    assert queries(True) == queries(False)


def _trial_organization(slug, ends_at):
    with organization_context(None), platform_access():
        organization = Organization.objects.create(
            name=slug.title(), slug=slug, subscription_status="trial", trial_ends_at=ends_at
        )
    with organization_context(organization):
        OrganizationSubscriptionFactory(
            organization=organization,
            status="trialing",
            stripe_subscription_id=f"trial_{slug}",
            trial_start=ends_at - datetime.timedelta(days=14),
            trial_end=ends_at,
        )
    return organization


@pytest.mark.django_db(transaction=True)  # the command connects as the owner: committed rows
def test_expire_trials_moves_ended_trials_only_and_is_idempotent():
    now = timezone.now()
    ended = _trial_organization("ended", now - datetime.timedelta(hours=1))
    running = _trial_organization("running", now + datetime.timedelta(hours=1))

    out = StringIO()
    call_command("expire_trials", stdout=out)
    assert "1 trial(s) ended" in out.getvalue() and "ended" in out.getvalue()

    with organization_context(None), platform_access():
        assert Organization.objects.get(pk=ended.pk).subscription_status == "past_due"
        assert Organization.objects.get(pk=running.pk).subscription_status == "trial"
        statuses = dict(
            OrganizationSubscription.unscoped.values_list("organization__slug", "status")
        )
    assert statuses["ended"] == "past_due"
    assert statuses["running"] == "trialing"

    again = StringIO()
    call_command("expire_trials", stdout=again)
    assert "nothing to do" in again.getvalue()


def test_the_admin_is_read_only_for_past_due_and_closed_for_canceled(acme, client):
    from django.contrib.auth.models import Permission

    owner = acme.members[Role.OWNER]
    owner.is_staff = True
    owner.save()
    owner.user_permissions.set(Permission.objects.all())
    client.force_login(owner)
    customer = acme.rows[Customer][0]
    change = f"/admin/routing/customer/{customer.pk}/change/"

    set_columns(acme.organization, subscription_status="past_due")
    page = client.get(change)
    assert page.status_code == 200
    assert b'name="_save"' not in page.content  # shown, not editable
    assert client.get("/admin/routing/customer/add/").status_code == 403

    set_columns(acme.organization, subscription_status="canceled")
    assert client.get(change).status_code == 404
