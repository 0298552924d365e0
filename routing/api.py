"""The /api/v1/ resources: the request organization's customers, drivers, routes and stops."""

from routing.filters import CustomerFilter, DriverFilter, RouteFilter, RouteStopFilter
from routing.models import Customer, Driver, Route, RouteStop
from routing.serializers import (
    CustomerSerializer,
    DriverSerializer,
    RouteSerializer,
    RouteStopSerializer,
)
from tenants.api import OrganizationScopedViewSet
from tenants.permissions import Resource


class CustomerViewSet(OrganizationScopedViewSet):
    model = Customer
    resource = Resource.CUSTOMERS
    serializer_class = CustomerSerializer
    filterset_class = CustomerFilter
    search_fields = ["display_name", "name", "address", "email"]
    ordering_fields = ["display_name", "service_day", "created_at", "updated_at"]
    ordering = ["display_name", "id"]


class DriverViewSet(OrganizationScopedViewSet):
    model = Driver
    resource = Resource.DRIVERS
    serializer_class = DriverSerializer
    filterset_class = DriverFilter
    search_fields = ["name", "email"]
    ordering_fields = ["name", "created_at"]
    ordering = ["name", "id"]


class RouteViewSet(OrganizationScopedViewSet):
    model = Route
    resource = Resource.ROUTES
    serializer_class = RouteSerializer
    filterset_class = RouteFilter
    ordering_fields = ["service_day", "created_at"]
    ordering = ["service_day", "id"]


class RouteStopViewSet(OrganizationScopedViewSet):
    model = RouteStop
    resource = Resource.ROUTE_STOPS
    serializer_class = RouteStopSerializer
    filterset_class = RouteStopFilter
    ordering_fields = ["sequence", "created_at"]
    ordering = ["route_id", "sequence", "id"]
