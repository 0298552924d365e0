"""The base viewset keeps the organization scope where subclasses cannot lose it."""

import pytest

from routing.models import Customer
from tenants.api import OrganizationScopedViewSet
from tenants.context import current_organization_or_none
from tenants.permissions import Resource


@pytest.mark.parametrize("method", ["get_queryset", "get_object"])
def test_subclasses_may_not_override_the_scoping_methods(method):
    with pytest.raises(TypeError, match=f"overrides {method}\\(\\)"):
        type(
            "LeakyViewSet",
            (OrganizationScopedViewSet,),
            {"model": Customer, "resource": Resource.CUSTOMERS, method: lambda self: None},
        )


def test_an_override_in_a_mixin_is_caught_too():
    class AllCustomers:
        def get_queryset(self):
            return Customer._base_manager.all()

    with pytest.raises(TypeError, match="dangerously_get_queryset"):

        class LeakyViewSet(AllCustomers, OrganizationScopedViewSet):
            model = Customer
            resource = Resource.CUSTOMERS


def test_narrowing_and_the_named_escape_hatch_are_allowed():
    class ActiveCustomers(OrganizationScopedViewSet):
        model = Customer
        resource = Resource.CUSTOMERS

        def safely_get_queryset(self, queryset):
            return queryset.filter(is_active=True)

    class EveryOrganizationsCustomers(OrganizationScopedViewSet):
        model = Customer
        resource = Resource.CUSTOMERS

        def dangerously_get_queryset(self):
            return Customer._base_manager.all()

    assert ActiveCustomers.queryset.model is Customer
    assert EveryOrganizationsCustomers.queryset.model is Customer


@pytest.mark.django_db
def test_the_organization_is_current_during_the_request_and_not_after(client_as, acme):
    response = client_as(acme).get("/api/v1/customers/")

    assert response.status_code == 200
    assert current_organization_or_none() is None
