"""PostgreSQL refuses a row of one organization referencing another's, on the application
connection with the organization set the way a request sets it: composite foreign keys
(routing.0010, billing.0006) and the service plan trigger (billing.0007)."""

import uuid

import pytest
from django.db import IntegrityError, connection, transaction
from psycopg import sql

from billing.models import CustomerServiceAgreement, PaymentMethod, ServicePlan
from routing.models import Customer, Driver, Route, RouteStop
from tenants.context import organization_context

pytestmark = pytest.mark.django_db

# (table, column, model whose row is referenced)
REFERENCES = [
    ("route_stops", "route_id", Route),
    ("route_stops", "customer_id", Customer),
    ("routes", "driver_id", Driver),
    ("customers", "assigned_driver_id", Driver),
    ("customer_service_agreements", "customer_id", Customer),
    ("customer_service_agreements", "service_plan_id", ServicePlan),
    ("payment_methods", "customer_id", Customer),
]
MODEL_OF = {
    "route_stops": RouteStop,
    "routes": Route,
    "customers": Customer,
    "customer_service_agreements": CustomerServiceAgreement,
    "payment_methods": PaymentMethod,
}


def refusal(statement, params) -> str:
    """The error PostgreSQL raises for `statement`; fails the test if it succeeds."""
    with (
        pytest.raises(IntegrityError) as raised,
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        # The billing keys are DEFERRABLE INITIALLY DEFERRED, like Django's: check now.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute(statement, params)
    return str(raised.value)


def update(table: str, column: str) -> sql.Composable:
    return sql.SQL("UPDATE {} SET {} = %s WHERE id = %s").format(
        sql.Identifier(table), sql.Identifier(column)
    )


@pytest.mark.parametrize(("table", "column", "parent"), REFERENCES, ids=lambda v: str(v))
def test_updating_a_reference_to_another_organizations_row_is_refused(
    acme, blue, table, column, parent
):
    own = acme.rows[MODEL_OF[table]][0].pk
    theirs = blue.rows[parent][0].pk

    with organization_context(acme.organization):
        error = refusal(update(table, column), [theirs, own])
        # No oracle: an id that exists nowhere gets the same refusal.
        nowhere = refusal(update(table, column), [uuid.uuid4(), own])

    assert "foreign key" in error or "service plan" in error, error
    assert error.split("DETAIL")[0] == nowhere.split("DETAIL")[0]


def test_inserting_a_stop_on_another_organizations_route_is_refused(acme, blue):
    with organization_context(acme.organization):
        error = refusal(
            "INSERT INTO route_stops (id, organization_id, route_id, customer_id, sequence, "
            "created_at) VALUES (%s, %s, %s, %s, 1, now())",
            [uuid.uuid4(), acme.organization.pk, blue.rows[Route][0].pk, acme.rows[Customer][0].pk],
        )

    assert "fk_route_stops_route_in_organization" in error


def test_an_agreement_may_use_a_global_template_or_its_own_plan(acme, blue, global_template):
    agreement = acme.rows[CustomerServiceAgreement][0]
    with organization_context(acme.organization):
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE customer_service_agreements SET service_plan_id = %s WHERE id = %s",
                [global_template.pk, agreement.pk],
            )
            cursor.execute(
                "UPDATE customer_service_agreements SET service_plan_id = %s WHERE id = %s",
                [acme.rows[ServicePlan][0].pk, agreement.pk],
            )
        error = refusal(
            "UPDATE customer_service_agreements SET service_plan_id = %s WHERE id = %s",
            [blue.rows[ServicePlan][0].pk, agreement.pk],
        )

    assert "global template or a service plan of the agreement's organization" in error


def test_the_orm_gets_an_integrity_error_too(acme, blue):
    stop = acme.rows[RouteStop][0]
    with (
        organization_context(acme.organization),
        pytest.raises(IntegrityError),
        transaction.atomic(),
    ):
        RouteStop.objects.filter(pk=stop.pk).update(route_id=blue.rows[Route][0].pk)
