"""API representations of customers, drivers, routes and stops (organization read-only)."""

from routing.models import Customer, Driver, Route, RouteStop
from tenants.api import OrganizationScopedSerializer

TIMESTAMPS = ("created_at", "updated_at")


class DriverSerializer(OrganizationScopedSerializer):
    class Meta:
        model = Driver
        fields = [
            "id",
            "organization",
            "name",
            "email",
            "phone",
            "color",
            "start_location_address",
            "start_latitude",
            "start_longitude",
            "end_location_address",
            "end_latitude",
            "end_longitude",
            "working_hours_start",
            "working_hours_end",
            "max_customers_per_day",
            "is_active",
            "notes",
            *TIMESTAMPS,
        ]
        read_only_fields = TIMESTAMPS


class CustomerSerializer(OrganizationScopedSerializer):
    # The eight billing columns of the legacy table are not part of the API: plan step M001
    # moves them to billing (service plans, agreements, payment methods).
    class Meta:
        model = Customer
        fields = [
            "id",
            "organization",
            "display_name",
            "name",
            "first_name",
            "last_name",
            "email",
            "phone",
            "alt_email",
            "alt_phone",
            "invoice_email",
            "management_company",
            "address",
            "latitude",
            "longitude",
            "service_type",
            "service_day",
            "service_days_per_week",
            "service_schedule",
            "difficulty",
            "visit_duration",
            "locked",
            "time_window_start",
            "time_window_end",
            "assigned_driver",
            "status",
            "is_active",
            "notes",
            *TIMESTAMPS,
        ]
        read_only_fields = TIMESTAMPS


class RouteSerializer(OrganizationScopedSerializer):
    class Meta:
        model = Route
        fields = [
            "id",
            "organization",
            "driver",
            "service_day",
            "total_duration_minutes",
            "total_distance_miles",
            "total_customers",
            "optimization_algorithm",
            "optimization_score",
            *TIMESTAMPS,
        ]
        read_only_fields = TIMESTAMPS


class RouteStopSerializer(OrganizationScopedSerializer):
    class Meta:
        model = RouteStop
        fields = [
            "id",
            "organization",
            "route",
            "customer",
            "sequence",
            "estimated_arrival_time",
            "estimated_service_duration",
            "estimated_drive_time_from_previous",
            "estimated_distance_from_previous",
            "created_at",
        ]
        read_only_fields = ["created_at"]
