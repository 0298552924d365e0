"""The tenant-aware admin: organizations with their members and counts, and the one mixin
every tenant model's admin uses.

`OrganizationScopedAdmin` reads through the model's `unscoped` manager and then narrows:
a superuser sees every organization; other staff see and edit only the rows of organizations
they are members of, pick foreign keys only among those rows, and get 404 for anything else,
exactly as for an id that does not exist. Each change, add and delete view runs inside the
object's organization (tenants.context), so whatever else it reads through the scoped
managers sees that organization and nothing more.
"""

from __future__ import annotations

from contextlib import nullcontext

from django import forms
from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.contrib.admin.views.main import ChangeList
from django.db import models
from django.db.models import Count
from django.http import Http404

from routing.models import Customer, Driver, Route, RouteStop
from tenants.context import organization_context
from tenants.models import Organization, OrganizationUser


def all_organizations(model) -> models.Manager:
    """The manager that crosses organizations: `unscoped` on tenant-owned models."""
    return model.unscoped if hasattr(model, "unscoped") else model._default_manager


def is_tenant_model(model) -> bool:
    return any(field.name == "organization" for field in model._meta.fields)


def admin_organization_ids(request) -> frozenset | None:
    """The organizations this admin user may see; None for a superuser (all of them)."""
    if request.user.is_superuser:
        return None
    if not hasattr(request, "_admin_organization_ids"):
        # Membership as the API counts it: accepted, in an active organization.
        request._admin_organization_ids = frozenset(
            OrganizationUser.objects.filter(user=request.user, organization__is_active=True)
            .exclude(invitation_token__isnull=False, invitation_accepted_at__isnull=True)
            .values_list("organization_id", flat=True)
        )
    return request._admin_organization_ids


def scope_to_admin_organizations(queryset, request, *, lookup="organization"):
    ids = admin_organization_ids(request)
    if ids is None:
        return queryset
    scoped = models.Q(**{f"{lookup}__in": ids})
    if getattr(queryset.model, "shares_global_rows", False):
        scoped |= models.Q(**{f"{lookup}__isnull": True})  # shared templates, read-only
    return queryset.filter(scoped)


def rendered(response):
    """Render a TemplateResponse now, inside the organization context, not later in the
    handler after the view has returned (widgets and inlines query while rendering)."""
    if hasattr(response, "render") and not response.is_rendered:
        response.render()
    return response


class OrganizationRelatedOnlyFilter(admin.RelatedOnlyFieldListFilter):
    """A foreign-key filter offering only what the visible rows point to, read across
    organizations through `unscoped` (Django's own reads the related default manager)."""

    def field_choices(self, field, request, model_admin):
        # Two queries, not one with a subquery: each runs through `unscoped` on its own, so row
        # level security lets it across organizations (a subquery inside a query on a table
        # without `unscoped`, such as organizations, would see no tenant rows).
        pks = set(
            model_admin.get_queryset(request)
            .order_by()
            .values_list(f"{self.field_path}__pk", flat=True)
            .distinct()
        )
        queryset = all_organizations(field.related_model).filter(pk__in=pks - {None})
        ordering = self.field_admin_ordering(field, request, model_admin)
        if ordering:
            queryset = queryset.order_by(*ordering)
        return [(obj.pk, str(obj)) for obj in queryset]


class SameOrganizationForm(forms.ModelForm):
    """Refuses a foreign key to another organization's row (a superuser sees every row)."""

    def clean(self):
        cleaned = super().clean()
        organization = cleaned.get("organization") if "organization" in self.fields else None
        organization_id = organization.pk if organization else self.instance.organization_id
        if organization_id is None:
            return cleaned
        for name, value in cleaned.items():
            if (
                name != "organization"
                and isinstance(value, models.Model)
                and is_tenant_model(type(value))
                and value.organization_id not in (None, organization_id)
            ):
                self.add_error(
                    name,
                    f"{value} belongs to another organization; pick one of this organization's",
                )
        return cleaned


class _OrganizationScoped:
    """What the model admin and the inlines share: the queryset and foreign-key choices."""

    def get_queryset(self, request):
        queryset = all_organizations(self.model).get_queryset()
        ordering = self.get_ordering(request)
        if ordering:
            queryset = queryset.order_by(*ordering)
        return scope_to_admin_organizations(queryset, request)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        related = db_field.related_model
        form_organization = getattr(request, "_admin_form_organization_id", None)
        if related is Organization:
            kwargs["queryset"] = scope_to_admin_organizations(
                Organization.objects.all(), request, lookup="pk"
            )
        elif is_tenant_model(related):
            queryset = scope_to_admin_organizations(all_organizations(related).all(), request)
            if form_organization is not None:
                # Editing a row: only its own organization's rows (and shared templates).
                same = models.Q(organization=form_organization)
                if getattr(related, "shares_global_rows", False):
                    same |= models.Q(organization__isnull=True)
                queryset = queryset.filter(same)
            kwargs["queryset"] = queryset
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


class OrganizationScopedAdmin(_OrganizationScoped, admin.ModelAdmin):
    """The admin of a tenant-owned model (see the module docstring). Subclasses add their
    columns; `organization` is listed, filtered on and searched by name automatically."""

    form = SameOrganizationForm

    def get_list_display(self, request):
        columns = list(super().get_list_display(request))
        if "organization" not in columns:
            columns.insert(1, "organization")
        return columns

    def get_list_filter(self, request):
        filters = list(super().get_list_filter(request))
        if "organization" not in filters:
            filters.insert(0, "organization")
        return [self._scoped_filter(spec) for spec in filters]

    def _scoped_filter(self, spec):
        # Django's foreign-key filter lists every row of the related table, every organization's.
        if isinstance(spec, str) and "__" not in spec:
            field = self.model._meta.get_field(spec)
            if field.is_relation and field.many_to_one:
                return (spec, OrganizationRelatedOnlyFilter)
        return spec

    def get_search_fields(self, request):
        fields = list(super().get_search_fields(request))
        return [*fields, "organization__name"] if fields else fields

    def get_list_select_related(self, request):
        related = super().get_list_select_related(request)
        if related is True or related is False:
            return ["organization"] if related is False else True
        return list({*related, "organization"})

    def get_object(self, request, object_id, from_field=None):
        obj = super().get_object(request, object_id, from_field)
        if obj is None:
            # Django would redirect to the index ("perhaps it was deleted?"); another
            # organization's row must be indistinguishable from a row that never existed.
            raise Http404(f"no {self.opts.verbose_name} with this id in your organizations")
        return obj

    def get_form(self, request, obj=None, change=False, **kwargs):
        request._admin_form_organization_id = getattr(obj, "organization_id", None)
        return super().get_form(request, obj, change, **kwargs)

    def get_changeform_initial_data(self, request):
        initial = super().get_changeform_initial_data(request)
        ids = admin_organization_ids(request)
        if ids is not None and len(ids) == 1 and "organization" not in initial:
            (initial["organization"],) = ids
        return initial

    def has_change_permission(self, request, obj=None):
        # Shared templates (organization NULL) belong to no organization: superusers only.
        if obj is not None and obj.organization_id is None and not request.user.is_superuser:
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        if obj is not None and obj.organization_id is None and not request.user.is_superuser:
            return False
        return super().has_delete_permission(request, obj)

    # -- every view that reads or writes one row runs inside that row's organization ---------

    def _view_organization(self, request, object_id):
        if object_id is not None:
            return self.get_object(request, unquote(object_id)).organization
        if request.method == "POST" and request.POST.get("organization"):
            allowed = scope_to_admin_organizations(Organization.objects.all(), request, lookup="pk")
            try:
                # None when not allowed or not an id: the form's choice validation says so.
                return allowed.filter(pk=request.POST["organization"]).first()
            except (ValueError, forms.ValidationError):
                return None
        ids = admin_organization_ids(request)
        if ids is not None and len(ids) == 1:
            return Organization.objects.get(pk=next(iter(ids)))
        return None

    def _in_organization(self, organization):
        return organization_context(organization) if organization else nullcontext()

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        with self._in_organization(self._view_organization(request, object_id)):
            return rendered(super().changeform_view(request, object_id, form_url, extra_context))

    def delete_view(self, request, object_id, extra_context=None):
        with self._in_organization(self._view_organization(request, object_id)):
            return rendered(super().delete_view(request, object_id, extra_context))

    def history_view(self, request, object_id, extra_context=None):
        self.get_object(request, unquote(object_id))  # 404 outside the user's organizations
        return super().history_view(request, object_id, extra_context)

    def save_model(self, request, obj, form, change):
        with organization_context(obj.organization):
            super().save_model(request, obj, form, change)

    def save_formset(self, request, form, formset, change):
        parent = form.instance
        with organization_context(parent.organization):
            instances = formset.save(commit=False)
            for obj in formset.deleted_objects:
                obj.delete()
            for obj in instances:
                if is_tenant_model(type(obj)) and obj.organization_id is None:
                    obj.organization = parent.organization
                obj.save()
            formset.save_m2m()

    def delete_queryset(self, request, queryset):
        # One organization at a time, so cascades are collected inside that organization.
        for organization_id in set(queryset.values_list("organization_id", flat=True)):
            organization = Organization.objects.filter(pk=organization_id).first()
            with self._in_organization(organization):
                queryset.filter(organization_id=organization_id).delete()


class OrganizationScopedInline(_OrganizationScoped):
    """Mix into a TabularInline/StackedInline of a tenant model: scoped rows and choices."""

    def get_formset(self, request, obj=None, **kwargs):
        if obj is not None and hasattr(obj, "organization_id"):
            request._admin_form_organization_id = obj.organization_id
        elif isinstance(obj, Organization):
            request._admin_form_organization_id = obj.pk
        return super().get_formset(request, obj, **kwargs)


# -- organizations and memberships -------------------------------------------------------------

COUNTED = {
    "customers_count": Customer,
    "drivers_count": Driver,
    "routes_count": Route,
    "route_stops_count": RouteStop,
}


def organization_counts(organization_ids) -> dict:
    """{organization id: {"customers_count": n, ...}} for many organizations at once: one
    grouped query per counted table, whatever the number of organizations (no N+1).

    Each query runs through the table's `unscoped` manager, so row level security counts every
    organization's rows; a correlated subquery inside the query on organizations would not get
    that and would count only the current organization's.
    """
    organization_ids = list(organization_ids)
    counts = {pk: dict.fromkeys(COUNTED, 0) for pk in organization_ids}
    for name, model in COUNTED.items():
        rows = (
            all_organizations(model)
            .filter(organization__in=organization_ids)
            .order_by()
            .values("organization")
            .annotate(n=Count("*"))
        )
        for row in rows:
            counts[row["organization"]][name] = row["n"]
    return counts


def _with_counts(organizations):
    counts = organization_counts(o.pk for o in organizations)
    for organization in organizations:
        for name, value in counts[organization.pk].items():
            setattr(organization, name, value)
    return organizations


class OrganizationChangeList(ChangeList):
    def get_results(self, request):
        super().get_results(request)
        self.result_list = _with_counts(list(self.result_list))


def _count_column(name: str, label: str):
    def column(self, organization):
        return getattr(organization, name)

    column.short_description = label
    column.__name__ = name
    return column


class OrganizationUserInline(OrganizationScopedInline, admin.TabularInline):
    model = OrganizationUser
    fk_name = "organization"
    verbose_name = "member"
    verbose_name_plural = "members"
    fields = ["user", "role", "is_primary_org", "invitation_accepted_at", "created_at"]
    readonly_fields = ["created_at"]
    autocomplete_fields = ["user"]
    extra = 0

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("user")


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "slug",
        "plan_tier",
        "subscription_status",
        "is_active",
        *COUNTED,
    ]
    list_filter = ["plan_tier", "subscription_status", "is_active"]
    search_fields = ["name", "slug", "subdomain", "billing_email"]
    readonly_fields = [*COUNTED, "created_at", "updated_at"]
    inlines = [OrganizationUserInline]
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    fieldsets = [
        (None, {"fields": ["name", "slug", "subdomain", "is_active", "timezone"]}),
        ("Data", {"fields": list(COUNTED)}),
        (
            "Plan and limits",
            {
                "classes": ["collapse"],
                "fields": [
                    "plan_tier",
                    "subscription_status",
                    "trial_ends_at",
                    "trial_days",
                    "max_users",
                    "max_customers",
                    "max_techs",
                    "max_routes_per_day",
                    "features_enabled",
                ],
            },
        ),
        (
            "Billing",
            {
                "classes": ["collapse"],
                "fields": [
                    "billing_email",
                    "billing_address",
                    "stripe_customer_id",
                    "stripe_subscription_id",
                ],
            },
        ),
        (
            "Branding and maps",
            {
                "classes": ["collapse"],
                "fields": [
                    "logo_url",
                    "primary_color",
                    "default_map_provider",
                    "google_maps_api_key",
                ],
            },
        ),
        (
            "Dates",
            {"classes": ["collapse"], "fields": ["onboarded_at", "created_at", "updated_at"]},
        ),
    ]

    customers_count = _count_column("customers_count", "customers")
    drivers_count = _count_column("drivers_count", "drivers")
    routes_count = _count_column("routes_count", "routes")
    route_stops_count = _count_column("route_stops_count", "route stops")

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        return scope_to_admin_organizations(queryset, request, lookup="pk")

    def get_changelist(self, request, **kwargs):
        return OrganizationChangeList

    def get_object(self, request, object_id, from_field=None):
        obj = super().get_object(request, object_id, from_field)
        if obj is None:
            raise Http404("no organization with this id among yours")
        return _with_counts([obj])[0]

    def history_view(self, request, object_id, extra_context=None):
        self.get_object(request, unquote(object_id))
        return super().history_view(request, object_id, extra_context)

    def has_add_permission(self, request):
        # Onboarding (organization, owner, subscription) is `manage.py create_organization`.
        return request.user.is_superuser and super().has_add_permission(request)

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser and super().has_delete_permission(request, obj)


@admin.register(OrganizationUser)
class OrganizationUserAdmin(OrganizationScopedAdmin):
    list_display = ["user", "organization", "role", "is_primary_org", "created_at"]
    list_filter = ["role", "is_primary_org"]
    search_fields = ["user__email", "user__first_name", "user__last_name"]
    list_select_related = ["user", "organization"]
    autocomplete_fields = ["user"]
    readonly_fields = ["invited_by", "created_at", "updated_at"]
