"""Customers, drivers, routes and route stops, field for field on the legacy tables."""

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone

from billing import limits, usage
from routing.fields import UTCDateTimeField
from tenants.managers import OrganizationOwned
from tenants.models import MapProvider


class ServiceDay(models.TextChoices):
    MONDAY = "monday"
    TUESDAY = "tuesday"
    WEDNESDAY = "wednesday"
    THURSDAY = "thursday"
    FRIDAY = "friday"
    SATURDAY = "saturday"
    SUNDAY = "sunday"


class Driver(limits.PlanLimited, OrganizationOwned):
    plan_limit = limits.TECHS

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey(
        "tenants.Organization", on_delete=models.PROTECT, db_index=False, related_name="drivers"
    )
    name = models.CharField(max_length=200)
    email = models.CharField(max_length=255, null=True, blank=True)
    phone = models.CharField(max_length=20, null=True, blank=True)
    start_location_address = models.CharField(max_length=500)
    start_latitude = models.FloatField(null=True, blank=True)
    start_longitude = models.FloatField(null=True, blank=True)
    end_location_address = models.CharField(max_length=500)
    end_latitude = models.FloatField(null=True, blank=True)
    end_longitude = models.FloatField(null=True, blank=True)
    working_hours_start = models.TimeField()
    working_hours_end = models.TimeField()
    max_customers_per_day = models.IntegerField()
    is_active = models.BooleanField(default=True)
    notes = models.CharField(max_length=1000, null=True, blank=True)
    created_at = UTCDateTimeField(default=timezone.now)
    updated_at = UTCDateTimeField(auto_now=True)
    color = models.CharField(max_length=7, default="#3498db", db_default="#3498db")
    # Geocoding metadata (plan M016, routing.0008): which provider geocoded the
    # address, who and when; NULL where nobody has yet.
    geocoding_provider = models.CharField(
        max_length=50, choices=MapProvider.choices, null=True, blank=True
    )
    geocoded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        db_column="geocoded_by",
        db_index=False,
        related_name="geocoded_drivers",
    )
    geocoded_at = UTCDateTimeField(null=True, blank=True)

    class Meta:
        db_table = "drivers"
        ordering = ["name"]
        indexes = [
            models.Index(fields=["name"], name="ix_drivers_name"),
            models.Index(fields=["organization"], name="idx_drivers_org"),
            models.Index(fields=["geocoding_provider"], name="idx_drivers_geocoding_provider"),
            models.Index(
                fields=["geocoded_by"],
                name="idx_drivers_geocoded_by",
                condition=models.Q(geocoded_by__isnull=False),
            ),
        ]

    def __str__(self):
        return self.name


class Customer(limits.PlanLimited, OrganizationOwned):
    plan_limit = limits.CUSTOMERS

    class ServiceType(models.TextChoices):
        RESIDENTIAL = "residential"
        COMMERCIAL = "commercial"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey(
        "tenants.Organization", on_delete=models.PROTECT, db_index=False, related_name="customers"
    )
    name = models.CharField(max_length=200, null=True, blank=True)
    address = models.CharField(max_length=500)
    latitude = models.FloatField(null=True, blank=True)
    longitude = models.FloatField(null=True, blank=True)
    service_type = models.CharField(max_length=20, choices=ServiceType.choices)
    difficulty = models.IntegerField()
    service_day = models.CharField(max_length=20, choices=ServiceDay.choices)
    locked = models.BooleanField(default=False)
    time_window_start = models.TimeField(null=True, blank=True)
    time_window_end = models.TimeField(null=True, blank=True)
    notes = models.CharField(max_length=1000, null=True, blank=True)
    is_active = models.BooleanField(default=True)
    created_at = UTCDateTimeField(default=timezone.now)
    updated_at = UTCDateTimeField(auto_now=True)
    service_days_per_week = models.IntegerField(default=1)
    service_schedule = models.CharField(max_length=50, null=True, blank=True)
    assigned_driver = models.ForeignKey(
        Driver,
        on_delete=models.PROTECT,  # the legacy constraint is NO ACTION
        null=True,
        blank=True,
        db_index=False,
        related_name="assigned_customers",
    )
    visit_duration = models.IntegerField(default=15, db_default=15)
    first_name = models.CharField(max_length=100, null=True, blank=True)
    last_name = models.CharField(max_length=100, null=True, blank=True)
    display_name = models.CharField(max_length=200)
    email = models.CharField(max_length=255, null=True, blank=True)
    phone = models.CharField(max_length=20, null=True, blank=True)
    alt_email = models.CharField(max_length=255, null=True, blank=True)
    alt_phone = models.CharField(max_length=20, null=True, blank=True)
    invoice_email = models.CharField(max_length=255, null=True, blank=True)
    management_company = models.CharField(max_length=200, null=True, blank=True)
    status = models.CharField(max_length=20, default="active", db_default="active")
    # The eight billing columns of the "bad" migration left in routing.0006 (plan step M001):
    # their values live in billing (agreements, payment methods), see billing.legacy.
    # Geocoding metadata (plan M015, routing.0007): which provider geocoded the
    # address, who and when; NULL where nobody has yet.
    geocoding_provider = models.CharField(
        max_length=50, choices=MapProvider.choices, null=True, blank=True
    )
    geocoded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        db_column="geocoded_by",
        db_index=False,
        related_name="geocoded_customers",
    )
    geocoded_at = UTCDateTimeField(null=True, blank=True)

    class Meta:
        db_table = "customers"
        ordering = ["display_name"]
        indexes = [
            models.Index(fields=["display_name"], name="ix_customers_display_name"),
            models.Index(fields=["service_day"], name="ix_customers_service_day"),
            models.Index(fields=["service_type"], name="ix_customers_service_type"),
            models.Index(fields=["organization"], name="idx_customers_org"),
            models.Index(fields=["geocoding_provider"], name="idx_customers_geocoding_provider"),
            models.Index(
                fields=["geocoded_by"],
                name="idx_customers_geocoded_by",
                condition=models.Q(geocoded_by__isnull=False),
            ),
        ]

    def __str__(self):
        return self.display_name

    def record_usage(self, *, created: bool) -> None:
        usage.customer_saved(self, created=created)


class Route(limits.PlanLimited, OrganizationOwned):
    plan_limit = limits.ROUTES_PER_DAY
    # A route moved to another service day counts there; a change of these is a re-optimization.
    tracked_fields = (
        "service_day",
        "total_duration_minutes",
        "total_distance_miles",
        "total_customers",
        "optimization_algorithm",
        "optimization_score",
    )

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey(
        "tenants.Organization", on_delete=models.PROTECT, db_index=False, related_name="routes"
    )
    driver = models.ForeignKey(
        Driver, on_delete=models.CASCADE, db_index=False, related_name="routes"
    )
    service_day = models.CharField(max_length=20, choices=ServiceDay.choices)
    total_duration_minutes = models.IntegerField(null=True, blank=True)
    total_distance_miles = models.FloatField(null=True, blank=True)
    total_customers = models.IntegerField(null=True, blank=True)
    optimization_algorithm = models.CharField(max_length=100, null=True, blank=True)
    optimization_score = models.FloatField(null=True, blank=True)
    created_at = UTCDateTimeField(default=timezone.now)
    updated_at = UTCDateTimeField(auto_now=True)

    class Meta:
        db_table = "routes"
        ordering = ["service_day", "driver__name"]
        indexes = [
            models.Index(fields=["driver"], name="ix_routes_driver_id"),
            models.Index(fields=["service_day"], name="ix_routes_service_day"),
            models.Index(fields=["organization"], name="idx_routes_org"),
        ]

    def __str__(self):
        return f"{self.driver} - {self.service_day}"

    def record_usage(self, *, created: bool) -> None:
        usage.route_saved(self, created=created)


class RouteStop(OrganizationOwned):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey(
        "tenants.Organization", on_delete=models.PROTECT, db_index=False, related_name="route_stops"
    )
    route = models.ForeignKey(Route, on_delete=models.CASCADE, db_index=False, related_name="stops")
    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, db_index=False, related_name="route_stops"
    )
    sequence = models.IntegerField()
    estimated_arrival_time = models.TimeField(null=True, blank=True)
    estimated_service_duration = models.IntegerField(null=True, blank=True)
    estimated_drive_time_from_previous = models.IntegerField(null=True, blank=True)
    estimated_distance_from_previous = models.FloatField(null=True, blank=True)
    created_at = UTCDateTimeField(default=timezone.now)

    class Meta:
        db_table = "route_stops"
        ordering = ["route", "sequence"]
        indexes = [
            models.Index(fields=["customer"], name="ix_route_stops_customer_id"),
            models.Index(fields=["route"], name="ix_route_stops_route_id"),
            models.Index(fields=["organization"], name="idx_route_stops_org"),
        ]

    def __str__(self):
        return f"{self.route} #{self.sequence}"
