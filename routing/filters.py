"""List filters of the API (`?service_day=monday&is_active=true`).

Foreign keys filter by id (UUIDFilter), not django-filter's ModelChoiceFilter: that one builds
its choices from the related model's default manager when the class is defined, outside any
organization. The queryset being filtered is the organization's already, so another
organization's id simply matches nothing.
"""

import django_filters

from routing.models import Customer, Driver, Route, RouteStop


class CustomerFilter(django_filters.FilterSet):
    assigned_driver = django_filters.UUIDFilter(field_name="assigned_driver_id")

    class Meta:
        model = Customer
        fields = ["service_day", "service_type", "status", "is_active", "assigned_driver"]


class DriverFilter(django_filters.FilterSet):
    class Meta:
        model = Driver
        fields = ["is_active"]


class RouteFilter(django_filters.FilterSet):
    driver = django_filters.UUIDFilter(field_name="driver_id")

    class Meta:
        model = Route
        fields = ["driver", "service_day"]


class RouteStopFilter(django_filters.FilterSet):
    route = django_filters.UUIDFilter(field_name="route_id")
    customer = django_filters.UUIDFilter(field_name="customer_id")

    class Meta:
        model = RouteStop
        fields = ["route", "customer"]
