"""The ORM: every tenant model's default manager sees one organization, and writes stay in it."""

import pytest

from billing.models import ServicePlan, UsageRecord
from routing.models import Customer, Driver, Route, RouteStop
from tenants.context import OrganizationNotSet, organization_context
from tenants.managers import CrossOrganizationWrite
from tests.factories import CustomerFactory
from tests.isolation.conftest import TENANT_MODELS

pytestmark = pytest.mark.django_db

MODEL_IDS = [model.__name__ for model in TENANT_MODELS]


@pytest.mark.parametrize("model", TENANT_MODELS, ids=MODEL_IDS)
def test_a_query_without_an_organization_raises(model, acme):
    with pytest.raises(OrganizationNotSet, match=f"a query on {model.__name__}"):
        list(model.objects.all())
    with pytest.raises(OrganizationNotSet):
        model.objects.count()
    with pytest.raises(OrganizationNotSet):
        model.objects.filter(pk=acme.rows[model][0].pk).exists()


def test_building_a_queryset_needs_no_organization_only_running_it_does():
    # Forms, filters and serializers build querysets at import time, outside any request.
    queryset = Customer.objects.filter(display_name__startswith="A").order_by("display_name")

    assert queryset.query is not None
    with pytest.raises(OrganizationNotSet):
        list(queryset)


def test_related_managers_are_scoped_too(acme):
    customer = acme.rows[Customer][0]
    with pytest.raises(OrganizationNotSet):
        list(customer.route_stops.all())
    with organization_context(acme.organization):
        assert {stop.pk for stop in customer.route_stops.all()} == {
            stop.pk for stop in acme.rows[RouteStop] if stop.customer_id == customer.pk
        }


@pytest.mark.parametrize("model", TENANT_MODELS, ids=MODEL_IDS)
def test_each_organization_lists_and_counts_only_its_own_rows(model, acme, blue):
    for seeded in (acme, blue):
        with organization_context(seeded.organization):
            assert {row.pk for row in model.objects.all()} == seeded.ids(model)
            assert model.objects.count() == len(seeded.rows[model])
            assert set(model.objects.values_list("pk", flat=True)) == seeded.ids(model)


@pytest.mark.parametrize("model", TENANT_MODELS, ids=MODEL_IDS)
def test_the_other_organizations_id_does_not_exist(model, acme, blue):
    theirs = blue.rows[model][0]
    with organization_context(acme.organization):
        with pytest.raises(model.DoesNotExist):
            model.objects.get(pk=theirs.pk)
        assert not model.objects.filter(pk=theirs.pk).exists()
        assert model.objects.filter(pk__in=[theirs.pk]).count() == 0


def test_joins_and_subqueries_stay_in_the_organization(acme, blue):
    with organization_context(acme.organization):
        names = set(
            RouteStop.objects.filter(route__driver__in=Driver.objects.all()).values_list(
                "customer__display_name", flat=True
            )
        )
    assert names == {customer.display_name for customer in acme.rows[Customer]}


def test_new_rows_get_the_current_organization(acme):
    with organization_context(acme.organization):
        customer = Customer.objects.create(
            display_name="New",
            address="1 Elm St",
            service_type="residential",
            difficulty=1,
            service_day="friday",
        )
    assert customer.organization_id == acme.organization.pk


def test_saving_a_row_of_another_organization_is_refused(acme, blue):
    with organization_context(blue.organization):
        theirs = Customer.objects.get(pk=blue.rows[Customer][0].pk)

    with organization_context(acme.organization):
        theirs.display_name = "Taken over"
        with pytest.raises(CrossOrganizationWrite, match="refusing to save Customer"):
            theirs.save()
        with pytest.raises(CrossOrganizationWrite, match="refusing to delete Customer"):
            theirs.delete()

    with organization_context(blue.organization):
        assert (
            Customer.objects.get(pk=theirs.pk).display_name == blue.rows[Customer][0].display_name
        )


def test_moving_a_row_into_another_organization_is_refused(acme, blue):
    with organization_context(acme.organization):
        mine = Customer.objects.get(pk=acme.rows[Customer][0].pk)
        mine.organization = blue.organization
        with pytest.raises(CrossOrganizationWrite):
            mine.save()
        with pytest.raises(CrossOrganizationWrite, match="refusing to move Customer rows"):
            Customer.objects.filter(pk=mine.pk).update(organization=blue.organization)
        with pytest.raises(CrossOrganizationWrite):
            Customer.objects.update(organization_id=blue.organization.pk)
        assert Customer.objects.filter(pk=mine.pk).exists()


def test_creating_into_another_organization_is_refused(acme, blue):
    fields = {
        "address": "1 Elm St",
        "service_type": "residential",
        "difficulty": 1,
        "service_day": "friday",
    }
    with organization_context(acme.organization):
        with pytest.raises(CrossOrganizationWrite):
            Customer.objects.create(display_name="x", organization=blue.organization, **fields)
        with pytest.raises(CrossOrganizationWrite, match="bulk_create"):
            Customer.objects.bulk_create(
                [
                    Customer(display_name="ok", **fields),
                    Customer(display_name="x", organization=blue.organization, **fields),
                ]
            )
        with pytest.raises(CrossOrganizationWrite):
            Customer.objects.get_or_create(
                display_name="x", organization=blue.organization, defaults=fields
            )
    with organization_context(blue.organization):
        assert not Customer.objects.filter(display_name__in=["x", "ok"]).exists()


def test_bulk_create_fills_in_the_current_organization(acme):
    with organization_context(acme.organization):
        created = Customer.objects.bulk_create(
            [
                Customer(
                    display_name=f"Bulk {n}",
                    address="1 Elm St",
                    service_type="residential",
                    difficulty=1,
                    service_day="friday",
                )
                for n in range(3)
            ]
        )
        assert {c.organization_id for c in created} == {acme.organization.pk}
        assert Customer.objects.filter(display_name__startswith="Bulk").count() == 3


def test_a_write_without_an_organization_raises(acme):
    with pytest.raises(OrganizationNotSet, match="save a Customer"):
        Customer(
            display_name="x",
            address="1 Elm St",
            service_type="residential",
            difficulty=1,
            service_day="friday",
        ).save()


def test_unscoped_is_the_one_way_across_organizations(acme, blue):
    for model in TENANT_MODELS:
        assert model.unscoped.count() == len(acme.rows[model]) + len(blue.rows[model])
        assert {row.pk for row in model.unscoped.all()} == acme.ids(model) | blue.ids(model)

    # Rows loaded through it may be changed whatever the current organization.
    with organization_context(acme.organization):
        theirs = Route.unscoped.get(pk=blue.rows[Route][0].pk)
        theirs.total_customers = 42
        theirs.save()
    with organization_context(blue.organization):
        assert Route.objects.get(pk=theirs.pk).total_customers == 42


def test_usage_records_are_scoped_like_the_rest(acme, blue):
    with organization_context(blue.organization):
        assert set(UsageRecord.objects.values_list("organization_id", flat=True)) == {
            blue.organization.pk
        }


def test_global_service_plan_templates_are_read_by_all_and_written_by_none(
    acme, blue, global_template
):
    for seeded in (acme, blue):
        with organization_context(seeded.organization):
            assert set(ServicePlan.objects.values_list("pk", flat=True)) == seeded.ids(
                ServicePlan
            ) | {global_template.pk}
            template = ServicePlan.objects.get(pk=global_template.pk)
            template.name = "Hijacked"
            with pytest.raises(CrossOrganizationWrite, match="shared template"):
                template.save()
            with pytest.raises(CrossOrganizationWrite):
                template.delete()
    with organization_context(acme.organization):
        assert ServicePlan.objects.get(pk=global_template.pk).name == "Global weekly template"


def test_the_organization_is_read_when_the_query_runs(acme, blue):
    queryset = Customer.objects.all()
    with organization_context(acme.organization):
        assert {c.pk for c in queryset.all()} == acme.ids(Customer)
    with organization_context(blue.organization):
        assert {c.pk for c in queryset.all()} == blue.ids(Customer)


def test_factories_still_create_in_the_organization_they_are_given(acme):
    customer = CustomerFactory(organization=acme.organization)
    assert customer.organization_id == acme.organization.pk
