"""The race for the last free slot, on two real connections: exactly one insert wins.

Committed rows (transaction=True: each thread's connection must see them), so this file holds
the one test that needs it; its data is a single organization with a handful of customers.
"""

import threading

import pytest
from django.db import connections, transaction

from billing import limits
from billing.limits import PlanLimitReached
from routing.models import Customer
from tenants.claims import platform_access, request_claims
from tenants.context import organization_context
from tenants.models import Organization
from tests.factories import CustomerFactory, OrganizationFactory

CUSTOMER = {
    "display_name": "Racing customer",
    "address": "1 Race Rd",
    "service_type": "residential",
    "difficulty": 1,
    "service_day": "monday",
}


@pytest.mark.django_db(transaction=True)
def test_two_connections_racing_for_the_last_customer_slot_cannot_both_win():
    with organization_context(None), platform_access():
        organization = OrganizationFactory(slug="racing", max_customers=3)
    for _ in range(2):
        CustomerFactory(organization=organization)

    first_checked = threading.Event()
    outcomes = {}

    def first():
        # Passes the check (2 of 3), then holds its transaction open before inserting: without
        # the organization's lock, the second connection would count 2 as well and insert too.
        try:
            with request_claims(), organization_context(organization), transaction.atomic():
                limits.enforce(organization, limits.CUSTOMERS)
                first_checked.set()
                second_started.wait(5)
                threading.Event().wait(0.3)  # the second is now waiting on the lock (or not)
                Customer(organization=organization, **CUSTOMER).save()
            outcomes["first"] = "created"
        except PlanLimitReached as refused:
            outcomes["first"] = str(refused)

    second_started = threading.Event()

    def second():
        first_checked.wait(5)
        try:
            with request_claims(), organization_context(organization), transaction.atomic():
                second_started.set()
                Customer(organization=organization, **CUSTOMER).save()
            outcomes["second"] = "created"
        except PlanLimitReached as refused:
            outcomes["second"] = str(refused)

    def run(target):
        try:
            target()
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(f,)) for f in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)

    assert outcomes.get("first") == "created", outcomes
    assert "allows 3 customers (max_customers) and has 3" in outcomes["second"]
    with organization_context(None), platform_access():
        assert Customer.unscoped.filter(organization=organization).count() == 3
        assert Organization.objects.get(pk=organization.pk).max_customers == 3
