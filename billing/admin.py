"""Admin for billing: plans, agreements and payment methods per organization; usage read-only."""

from django.contrib import admin

from billing.models import (
    CustomerServiceAgreement,
    OrganizationSubscription,
    PaymentMethod,
    ServicePlan,
    UsageRecord,
)
from tenants.admin import OrganizationScopedAdmin
from tenants.permissions import Resource

# Every billing row belongs to an organization: OrganizationScopedAdmin limits staff who are not
# superusers to their own organizations' rows and foreign-key choices (tenants.admin), and to
# what their role may (tenants.permissions: billing is the owner's, the subscription the
# platform's, usage a report). Global service-plan templates are listed to superusers only.


@admin.register(ServicePlan)
class ServicePlanAdmin(OrganizationScopedAdmin):
    resource = Resource.BILLING
    list_display = ["name", "organization", "billing_frequency", "base_rate", "is_active"]
    list_filter = ["organization", "billing_frequency", "is_active"]
    search_fields = ["name", "description", "organization__name"]
    list_select_related = ["organization"]
    readonly_fields = ["created_at", "updated_at"]


@admin.register(CustomerServiceAgreement)
class CustomerServiceAgreementAdmin(OrganizationScopedAdmin):
    resource = Resource.BILLING
    list_display = [
        "customer",
        "organization",
        "service_plan",
        "custom_rate",
        "effective_date",
        "end_date",
    ]
    list_filter = ["organization", ("end_date", admin.EmptyFieldListFilter)]
    search_fields = ["customer__display_name", "service_plan__name", "rate_notes"]
    list_select_related = ["customer", "organization", "service_plan"]
    raw_id_fields = ["customer", "service_plan"]
    date_hierarchy = "effective_date"
    readonly_fields = ["created_at", "updated_at"]


@admin.register(PaymentMethod)
class PaymentMethodAdmin(OrganizationScopedAdmin):
    resource = Resource.BILLING
    list_display = [
        "customer",
        "organization",
        "payment_type",
        "brand",
        "last_four",
        "is_primary",
        "is_active",
    ]
    list_filter = ["organization", "payment_type", "is_primary", "is_active"]
    search_fields = ["customer__display_name", "stripe_customer_id", "brand", "last_four"]
    list_select_related = ["customer", "organization"]
    raw_id_fields = ["customer"]
    readonly_fields = ["created_at", "updated_at"]


@admin.register(OrganizationSubscription)
class OrganizationSubscriptionAdmin(OrganizationScopedAdmin):
    resource = Resource.SUBSCRIPTION
    list_display = [
        "organization",
        "plan_tier",
        "status",
        "monthly_price",
        "current_period_end",
        "cancel_at_period_end",
    ]
    list_filter = ["organization", "plan_tier", "status", "cancel_at_period_end"]
    search_fields = ["organization__name", "stripe_subscription_id"]
    list_select_related = ["organization"]
    readonly_fields = ["created_at", "updated_at"]


@admin.register(UsageRecord)
class UsageRecordAdmin(OrganizationScopedAdmin):
    """Browsable, never editable: the table is append-only (a trigger rejects UPDATE/DELETE)."""

    resource = Resource.USAGE

    list_display = ["recorded_at", "organization", "metric", "quantity"]
    list_filter = ["organization", "metric"]
    search_fields = ["organization__name", "metric"]
    list_select_related = ["organization"]
    date_hierarchy = "recorded_at"

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
