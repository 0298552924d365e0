"""Admin for customers, drivers, routes and stops: organization-scoped (tenants.admin)."""

from django.contrib import admin

from routing.models import Customer, Driver, Route, RouteStop
from tenants.admin import OrganizationScopedAdmin, OrganizationScopedInline
from tenants.permissions import Resource


@admin.register(Customer)
class CustomerAdmin(OrganizationScopedAdmin):
    resource = Resource.CUSTOMERS
    list_display = [
        "display_name",
        "organization",
        "service_day",
        "service_type",
        "assigned_driver",
        "status",
        "is_active",
    ]
    list_filter = ["service_day", "service_type", "status", "is_active", "assigned_driver"]
    search_fields = ["display_name", "name", "first_name", "last_name", "address", "email", "phone"]
    list_select_related = ["organization", "assigned_driver"]
    # geocoded_by offers the organization's members only (tenants.admin); set by geocoding.
    readonly_fields = ["created_at", "updated_at"]


@admin.register(Driver)
class DriverAdmin(OrganizationScopedAdmin):
    resource = Resource.DRIVERS
    list_display = ["name", "organization", "email", "phone", "max_customers_per_day", "is_active"]
    list_filter = ["is_active"]
    search_fields = ["name", "email", "phone"]
    list_select_related = ["organization"]
    readonly_fields = ["created_at", "updated_at"]


class RouteStopInline(OrganizationScopedInline, admin.TabularInline):
    resource = Resource.ROUTE_STOPS
    model = RouteStop
    fields = ["sequence", "customer", "estimated_arrival_time", "estimated_service_duration"]
    ordering = ["sequence"]
    extra = 0

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("customer")


@admin.register(Route)
class RouteAdmin(OrganizationScopedAdmin):
    resource = Resource.ROUTES
    list_display = [
        "__str__",
        "organization",
        "driver",
        "service_day",
        "total_customers",
        "total_distance_miles",
        "total_duration_minutes",
    ]
    list_filter = ["service_day", "driver"]
    search_fields = ["driver__name", "optimization_algorithm"]
    list_select_related = ["organization", "driver"]
    readonly_fields = ["created_at", "updated_at"]
    inlines = [RouteStopInline]


@admin.register(RouteStop)
class RouteStopAdmin(OrganizationScopedAdmin):
    resource = Resource.ROUTE_STOPS
    list_display = ["__str__", "organization", "route", "customer", "sequence"]
    list_filter = ["route__service_day"]
    search_fields = ["customer__display_name", "route__driver__name"]
    list_select_related = ["organization", "route__driver", "customer"]
    readonly_fields = ["created_at"]
