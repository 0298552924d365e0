"""The tenant-aware admin: organizations with their members and counts, and the one mixin
every tenant model's admin uses.

`OrganizationScopedAdmin` reads through the model's `unscoped` manager and then narrows:
a superuser sees every organization; other staff see and edit only the rows of organizations
they are members of, pick foreign keys only among those rows, and get 404 for anything else,
exactly as for an id that does not exist. Each change, add and delete view runs inside the
object's organization (tenants.context), so whatever else it reads through the scoped
managers sees that organization and nothing more.

Within their organizations, staff do what their role may (tenants.permissions, the matrix the
API uses too): every admin names its `resource`, and each page, action and row asks the role
the staff member holds in that row's organization. Django's model permissions stay a ceiling
the platform sets; the role decides below it. Members are invited by email, never picked
(tenants.services.organization_invite_member); the platform's fields (plan, limits, status,
trial, Stripe) are read-only to organization staff.
"""

from __future__ import annotations

import smtplib
from contextlib import nullcontext

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.admin.views.main import ChangeList
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.validators import validate_slug
from django.db import models
from django.db.models import Count
from django.forms.models import construct_instance
from django.http import Http404
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from billing.limits import form_limit_refusal
from routing.models import Customer, Driver, Route, RouteStop
from tenants import services
from tenants.admin_site import SAFE_FORMFIELDS, GuardedRawIdWidget
from tenants.claims import platform_access
from tenants.context import current_organization_or_none, organization_context
from tenants.models import Organization, OrganizationUser, Role
from tenants.permissions import (
    Action,
    Resource,
    may_grant_role,
    may_manage_member,
    own_rows_q,
    role_can,
    role_rank,
)

# One message for a value that is taken (in this organization or another) and for one that is
# simply invalid: a uniqueness error must not tell anyone what other organizations use.
UNAVAILABLE = "this value cannot be used: choose another"


def taken_anywhere(queryset) -> bool:
    """Whether any organization holds the value `queryset` looks for: a uniqueness check.

    The staff member's claim sees their organizations only, so the question is asked as the
    platform, for this one query; its answer becomes the one message a taken and an invalid
    value share, so it tells nobody what another organization uses.
    """
    with organization_context(None), platform_access():
        return queryset.exists()


def all_organizations(model) -> models.Manager:
    """The manager that crosses organizations: `unscoped` on tenant-owned models."""
    return model.unscoped if hasattr(model, "unscoped") else model._default_manager


def is_tenant_model(model) -> bool:
    return any(field.name == "organization" for field in model._meta.fields)


def admin_organization_roles(request) -> dict | None:
    """{organization id: role} of this admin user's memberships; None for a superuser."""
    if request.user.is_superuser:
        return None
    if not hasattr(request, "_admin_organization_roles"):
        from billing.plans import CLOSED, effective_status

        # Membership as the API counts it: accepted, in an active organization whose
        # subscription is not canceled or suspended (billing.plans); past due (an ended trial
        # included) is read-only, in the admin as in the API.
        memberships = (
            OrganizationUser.objects.filter(user=request.user, organization__is_active=True)
            .exclude(invitation_token__isnull=False, invitation_accepted_at__isnull=True)
            .exclude(organization__subscription_status__in=CLOSED)
            .select_related("organization")
        )
        request._admin_organization_roles = {}
        request._admin_read_only = set()
        for membership in memberships:
            request._admin_organization_roles[membership.organization_id] = membership.role
            if effective_status(membership.organization) == "past_due":
                request._admin_read_only.add(membership.organization_id)
    return request._admin_organization_roles


def admin_organization_ids(request) -> frozenset | None:
    """The organizations this admin user may see; None for a superuser (all of them)."""
    roles = admin_organization_roles(request)
    return None if roles is None else frozenset(roles)


def admin_role(request, organization_id):
    """The admin user's role in that organization (None: not a member); superusers: owner."""
    roles = admin_organization_roles(request)
    if roles is None:
        return Role.OWNER
    return roles.get(organization_id) if organization_id is not None else None


def admin_may(request, resource: Resource | None, action: Action, organization_id=None) -> bool:
    """Whether the role matrix lets this admin user do `action` on `resource` in that
    organization, or (organization_id None) in at least one of theirs. Superusers: always."""
    roles = admin_organization_roles(request)
    if roles is None:
        return True
    if resource is None:  # no role decides (the user's own API tokens): membership is enough
        return bool(roles) if organization_id is None else organization_id in roles
    if action != Action.VIEW:  # a past-due organization is read-only (billing.plans)
        roles = {pk: role for pk, role in roles.items() if pk not in request._admin_read_only}
    if organization_id is None:
        return any(role_can(role, resource, action) for role in roles.values())
    return role_can(roles.get(organization_id), resource, action)


def admin_organizations_allowing(request, resource, action):
    """The organizations (a queryset) in which this admin user may do `action` on `resource`."""
    queryset = Organization.objects.all()
    roles = admin_organization_roles(request)
    if roles is None:
        return queryset
    return queryset.filter(pk__in=[pk for pk in roles if admin_may(request, resource, action, pk)])


def organization_id_of(obj):
    if obj is None:
        return None
    if isinstance(obj, Organization):
        return obj.pk
    return getattr(obj, "organization_id", None)


def organization_members(organization_ids=None):
    """Users with an accepted membership in those organizations (all of them: every user)."""
    users = get_user_model()._default_manager.all()
    if organization_ids is None:
        return users
    return users.filter(
        pk__in=OrganizationUser.objects.filter(organization__in=organization_ids)
        .exclude(invitation_token__isnull=False, invitation_accepted_at__isnull=True)
        .values("user")
    )


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
    """Refuses a foreign key to another organization's row (a superuser sees every row), and
    checks uniqueness across every organization, answering UNAVAILABLE whoever holds the value:
    Django's own check reads the scoped default manager, which sees one organization, so a
    value another organization holds passed it and failed in PostgreSQL (a 500, an oracle)."""

    def _post_clean(self):
        if current_organization_or_none() is not None:
            return super()._post_clean()
        organization = self.cleaned_data.get("organization")
        if isinstance(organization, Organization):
            with organization_context(organization):
                return super()._post_clean()
        # No organization to run the scoped checks in (none valid was picked, or a superuser
        # writes a global template): Django's constraint checks would need one; the checks
        # across organizations below still run, and PostgreSQL has the last word.
        exclude = self._get_validation_exclusions()
        try:
            self.instance = construct_instance(
                self, self.instance, self._meta.fields, self._meta.exclude
            )
        except ValidationError as error:
            self._update_errors(error)
        try:
            self.instance.full_clean(
                exclude=exclude, validate_unique=False, validate_constraints=False
            )
        except ValidationError as error:
            self._update_errors(error)
        if self._validate_unique:
            self.validate_unique()

    def validate_unique(self):
        exclude = self._get_validation_exclusions()
        if current_organization_or_none() is not None:
            try:
                self.instance.validate_unique(exclude=exclude)
            except ValidationError as error:
                self._update_errors(ValidationError(dict.fromkeys(error.error_dict, UNAVAILABLE)))
        model = type(self.instance)
        unique_checks, _ = self.instance._get_unique_checks(
            exclude=exclude, include_meta_constraints=True
        )
        for model_class, fields in unique_checks:
            if "organization" in fields or any(name in self.errors for name in fields):
                continue  # unique within one organization: checked above, in its context
            lookup = {}
            for name in fields:
                field = model_class._meta.get_field(name)
                value = getattr(self.instance, field.attname)
                if value is None or (value == "" and field.empty_strings_allowed):
                    break
                lookup[name] = value
            else:
                taken = all_organizations(model).filter(**lookup)
                if not self.instance._state.adding:
                    taken = taken.exclude(pk=self.instance.pk)
                if taken_anywhere(taken):
                    self._update_errors(ValidationError(dict.fromkeys(fields, UNAVAILABLE)))

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
        # The plan's limits (billing.limits), as a form error before anything is saved; the
        # save checks again under the organization's lock.
        refusal = form_limit_refusal(self.instance, organization_id, cleaned)
        if refusal:
            self.add_error(None, refusal)
        return cleaned


class _OrganizationScoped:
    """What the model admin and the inlines share: the queryset, foreign-key choices and the
    role matrix. `resource` names the model in tenants.permissions (None: membership alone)."""

    resource: Resource | None = None
    formfield_overrides = SAFE_FORMFIELDS

    def get_queryset(self, request):
        queryset = all_organizations(self.model).get_queryset()
        ordering = self.get_ordering(request)
        if ordering:
            queryset = queryset.order_by(*ordering)
        queryset = scope_to_admin_organizations(queryset, request)
        roles = admin_organization_roles(request)
        if roles is None:
            return queryset
        if getattr(self.model, "shares_global_rows", False):
            # Global templates are the platform's: listed and edited by superusers only.
            queryset = queryset.exclude(organization__isnull=True)
        return self._own_rows_only(queryset, request, roles)

    def _own_rows_only(self, queryset, request, roles):
        """Technicians see their own routes and stops only, in each organization they hold that
        role in (tenants.permissions.own_rows_q)."""
        if self.resource is None:
            return queryset
        limits = {
            pk: own_rows_q(role=role, resource=self.resource, user=request.user)
            for pk, role in roles.items()
        }
        if all(limit is None for limit in limits.values()):
            return queryset
        visible = models.Q(pk__in=[])
        for pk, limit in limits.items():
            visible |= models.Q(organization=pk) & (limit or models.Q())
        return queryset.filter(visible)

    # -- the role matrix on every page, action and row -------------------------------------

    def has_view_permission(self, request, obj=None):
        return super().has_view_permission(request, obj) and admin_may(
            request, self.resource, Action.VIEW, organization_id_of(obj)
        )

    def has_add_permission(self, request, *args):
        # Inlines get the parent object as a second argument.
        parent = args[0] if args else None
        return super().has_add_permission(request, *args) and admin_may(
            request, self.resource, Action.CREATE, organization_id_of(parent)
        )

    def has_change_permission(self, request, obj=None):
        return super().has_change_permission(request, obj) and admin_may(
            request, self.resource, Action.CHANGE, organization_id_of(obj)
        )

    def has_delete_permission(self, request, obj=None):
        return super().has_delete_permission(request, obj) and admin_may(
            request, self.resource, Action.DELETE, organization_id_of(obj)
        )

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        related = db_field.related_model
        form_organization = getattr(request, "_admin_form_organization_id", None)
        if related is Organization:
            # Only organizations where the role may write this model: a readonly member of A
            # who is an admin of C picks C, never A.
            action = Action.CHANGE if form_organization is not None else Action.CREATE
            kwargs["queryset"] = admin_organizations_allowing(request, self.resource, action)
        elif related is get_user_model():
            # A user column (geocoded_by, ...) offers the organization's members, never the
            # system's users (emails of other organizations, superusers).
            if admin_organization_ids(request) is None and form_organization is None:
                kwargs["queryset"] = organization_members()
            else:
                kwargs["queryset"] = organization_members(
                    [form_organization]
                    if form_organization is not None
                    else admin_organization_ids(request)
                )
        elif is_tenant_model(related):
            queryset = scope_to_admin_organizations(all_organizations(related).all(), request)
            # Labels (`str(route)` names its driver) read their relations in the same query:
            # followed later through the plain related manager, row level security would
            # hide them whenever the page runs outside their organization.
            queryset = queryset.select_related(
                *(
                    f.name
                    for f in related._meta.fields
                    if f.many_to_one
                    and f.related_model is not Organization
                    and is_tenant_model(f.related_model)
                )
            )
            if db_field.name in getattr(self, "raw_id_fields", ()):
                kwargs["widget"] = GuardedRawIdWidget(db_field.remote_field, self.admin_site)
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


def membership_status(membership) -> str:
    if membership.invitation_token and membership.invitation_accepted_at is None:
        return "invited"
    return "member"


class OrganizationUserInline(OrganizationScopedInline, admin.TabularInline):
    """The organization's members and pending invitations, read-only: members are invited by
    email (the membership add page) and changed on their own page, where the role rules are
    checked (tenants.services), never picked from a list of users here."""

    model = OrganizationUser
    fk_name = "organization"
    verbose_name = "member"
    verbose_name_plural = "members"
    resource = Resource.MEMBERS
    fields = ["user", "role", "is_primary_org", "status", "created_at"]
    readonly_fields = fields
    show_change_link = True
    extra = 0

    @admin.display(description="status")
    def status(self, membership):
        return membership_status(membership)

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("user")

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


# The platform's columns: the plan and its limits, the subscription's status and trial, Stripe,
# whether the organization is active. Superusers change them; organization staff read them.
PLATFORM_FIELDS = (
    "plan_tier",
    "subscription_status",
    "trial_ends_at",
    "trial_days",
    "max_users",
    "max_customers",
    "max_techs",
    "max_routes_per_day",
    "features_enabled",
    "stripe_customer_id",
    "stripe_subscription_id",
    "is_active",
    "onboarded_at",
)
BILLING_FIELDS = ("billing_email", "billing_address")
SECRETS = ("google_maps_api_key",)

SLUG_UNAVAILABLE = (
    "this slug cannot be used: choose another of lower-case letters, digits and hyphens"
)
SUBDOMAIN_UNAVAILABLE = (
    "this subdomain cannot be used: choose another of lower-case letters, digits and hyphens"
)


class OrganizationAdminForm(forms.ModelForm):
    """Slugs and subdomains are lower case and unique whatever the case (the organization is
    resolved case-insensitively from them); taken and invalid get the same one message."""

    slug = forms.CharField(max_length=100, error_messages={"max_length": SLUG_UNAVAILABLE})
    subdomain = forms.CharField(
        max_length=63, required=False, error_messages={"max_length": SUBDOMAIN_UNAVAILABLE}
    )

    class Meta:
        model = Organization
        fields = "__all__"  # noqa: DJ007 - the admin's fieldsets choose; it must see every field

    def _available(self, name, value, message, *, valid) -> str:
        value = value.strip().lower()
        if not valid(value):
            raise ValidationError(message)
        taken = all_organizations(Organization).filter(**{f"{name}__iexact": value})
        if self.instance.pk is not None:
            taken = taken.exclude(pk=self.instance.pk)
        if taken_anywhere(taken):
            raise ValidationError(message)
        return value

    def clean_slug(self):
        return self._available("slug", self.cleaned_data["slug"], SLUG_UNAVAILABLE, valid=_is_slug)

    def clean_subdomain(self):
        value = self.cleaned_data.get("subdomain") or ""
        if not value.strip():
            return None
        return self._available(
            "subdomain", value, SUBDOMAIN_UNAVAILABLE, valid=Organization.valid_subdomain
        )

    def validate_unique(self):
        # clean_slug / clean_subdomain checked across organizations; Django's check would name
        # the field and the model in another message.
        try:
            self.instance.validate_unique(exclude=self._get_validation_exclusions())
        except ValidationError as error:
            self._update_errors(ValidationError(dict.fromkeys(error.error_dict, UNAVAILABLE)))


def _is_slug(value: str) -> bool:
    try:
        validate_slug(value)
    except ValidationError:
        return False
    return Organization.valid_slug(value)


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin):
    form = OrganizationAdminForm
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
    readonly_fields = [*COUNTED, "usage_last_30_days", "invite", "created_at", "updated_at"]
    inlines = [OrganizationUserInline]
    formfield_overrides = {**SAFE_FORMFIELDS, models.URLField: {"assume_scheme": "https"}}
    fieldsets = [
        (None, {"fields": ["name", "slug", "subdomain", "is_active", "timezone", "invite"]}),
        ("Data", {"fields": [*COUNTED, "usage_last_30_days"]}),
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

    @admin.display(description="usage, last 30 days")
    def usage_last_30_days(self, organization):
        """Per metric (billing.selectors.organization_usage_last_days); one query."""
        if organization.pk is None:
            return "-"
        from billing.models import UsageMetric
        from billing.selectors import organization_usage_last_days

        totals = organization_usage_last_days(organization=organization).totals
        return format_html_join(
            ", ", "{}: {}", ((UsageMetric(m).label, f"{n:,}") for m, n in totals.items())
        )

    def save_model(self, request, obj, form, change):
        # A new tier brings its default limits and features (billing.plans), except the columns
        # the superuser set in the same form: those are this organization's overrides.
        if "plan_tier" in form.changed_data or not change:
            from billing.plans import LIMIT_COLUMNS, apply_plan

            overrides = frozenset(form.changed_data) & {*LIMIT_COLUMNS, "features_enabled"}
            apply_plan(obj, obj.plan_tier, keep=overrides)
        super().save_model(request, obj, form, change)

    @admin.display(description="members")
    def invite(self, organization):
        if organization.pk is None:
            return "-"
        url = reverse("admin:tenants_organizationuser_add")
        return format_html(
            '<a href="{}?organization={}">Invite a member by email</a>', url, organization.pk
        )

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        return scope_to_admin_organizations(queryset, request, lookup="pk")

    def get_readonly_fields(self, request, obj=None):
        readonly = list(super().get_readonly_fields(request, obj))
        if not request.user.is_superuser:
            readonly += PLATFORM_FIELDS
            if not admin_may(request, Resource.BILLING, Action.CHANGE, organization_id_of(obj)):
                readonly += BILLING_FIELDS
        return readonly

    def get_fieldsets(self, request, obj=None):
        # Secrets are for those who manage the settings, not for every member who reads them;
        # usage is a report (not for technicians).
        hidden = set()
        if not request.user.is_superuser:
            organization_id = organization_id_of(obj)
            if not admin_may(request, Resource.ORGANIZATION, Action.CHANGE, organization_id):
                hidden.update(SECRETS)
            if not admin_may(request, Resource.USAGE, Action.VIEW, organization_id):
                hidden.add("usage_last_30_days")
        if not hidden:
            return super().get_fieldsets(request, obj)
        return [
            (name, {**options, "fields": [f for f in options["fields"] if f not in hidden]})
            for name, options in super().get_fieldsets(request, obj)
        ]

    def has_view_permission(self, request, obj=None):
        return super().has_view_permission(request, obj) and admin_may(
            request, Resource.ORGANIZATION, Action.VIEW, organization_id_of(obj)
        )

    def has_change_permission(self, request, obj=None):
        return super().has_change_permission(request, obj) and admin_may(
            request, Resource.ORGANIZATION, Action.CHANGE, organization_id_of(obj)
        )

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


class InvitationForm(forms.ModelForm):
    """Add a member by email: an invitation, never a pick from the users of the system. The
    answer is the same whether the address has an account or not."""

    email = forms.EmailField(
        max_length=255, help_text="They get an email to accept (or to set a password)."
    )

    class Meta:
        model = OrganizationUser
        fields = ["organization", "email", "role"]

    request = None  # set by OrganizationUserAdmin.get_form

    def clean(self):
        cleaned = super().clean()
        organization, role = cleaned.get("organization"), cleaned.get("role")
        email = cleaned.get("email")
        if organization is not None and email and services.is_member(organization, email):
            self.add_error("email", f"{email} is a member of {organization} already")
        elif organization is not None and email:
            refusal = services.member_limit_refusal(organization, email)
            if refusal:
                self.add_error(None, refusal)
        if organization is not None and role:
            actor_role = admin_role(self.request, organization.pk)
            if not may_grant_role(actor_role, role):
                self.add_error(
                    "role",
                    f"your role in {organization} may not grant '{role}': pick a role up to "
                    f"your own",
                )
        return cleaned

    def validate_unique(self):
        pass  # the invitation service handles an existing membership


class MembershipChangeForm(forms.ModelForm):
    class Meta:
        model = OrganizationUser
        fields = ["role"]

    request = None

    def clean(self):
        cleaned = super().clean()
        role = cleaned.get("role")
        if role:
            refusal = services.membership_refusal(
                membership=self.instance,
                actor_role=admin_role(self.request, self.instance.organization_id),
                new_role=role,
            )
            if refusal:
                self.add_error("role", refusal)
        return cleaned


@admin.register(OrganizationUser)
class OrganizationUserAdmin(OrganizationScopedAdmin):
    """Memberships and pending invitations. Adding one is inviting by email
    (tenants.services.organization_invite_member); changing the role and removing go through
    tenants.services too: nobody grants a role above their own, acts on a member above them,
    or demotes or removes an organization's last owner."""

    resource = Resource.MEMBERS
    list_display = ["user", "organization", "role", "status", "is_primary_org", "created_at"]
    list_filter = ["role", "is_primary_org"]
    # By email only: a pending invitation makes an account of another organization visible
    # to the inviter, and searching its names would spell them out a letter at a time.
    search_fields = ["user__email"]
    list_select_related = ["user", "organization"]
    readonly_fields = [
        "user",
        "organization",
        "is_primary_org",
        "status",
        "invited_by",
        "created_at",
        "updated_at",
    ]

    @admin.display(description="status")
    def status(self, membership):
        return membership_status(membership)

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["organization", "email", "role"]
        return [
            "user",
            "organization",
            "role",
            "status",
            "is_primary_org",
            "invited_by",
            "created_at",
            "updated_at",
        ]

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else self.readonly_fields

    def get_form(self, request, obj=None, change=False, **kwargs):
        kwargs["form"] = MembershipChangeForm if obj is not None else InvitationForm
        kwargs["fields"] = ["role"] if obj is not None else ["organization", "role"]
        form = super().get_form(request, obj, change, **kwargs)
        form.request = request
        return form

    def formfield_for_choice_field(self, db_field, request, **kwargs):
        if db_field.name == "role":
            # Up to the strongest role this user may grant anywhere (the form checks the
            # organization picked).
            roles = admin_organization_roles(request)
            strongest = (
                role_rank(Role.OWNER)
                if roles is None
                else max((role_rank(r) for r in roles.values() if may_grant_role(r, r)), default=0)
            )
            kwargs["choices"] = [
                (role.value, role.label) for role in Role if role_rank(role) <= strongest
            ]
        return super().formfield_for_choice_field(db_field, request, **kwargs)

    def has_change_permission(self, request, obj=None):
        if not super().has_change_permission(request, obj):
            return False
        return obj is None or may_manage_member(admin_role(request, obj.organization_id), obj.role)

    def has_delete_permission(self, request, obj=None):
        if not super().has_delete_permission(request, obj):
            return False
        return (
            obj is None
            or services.membership_refusal(
                membership=obj, actor_role=admin_role(request, obj.organization_id), removing=True
            )
            is None
        )

    def save_form(self, request, form, change):
        if change:
            return form.save(commit=False)
        invitation = services.organization_invite_member(
            organization=form.cleaned_data["organization"],
            email=form.cleaned_data["email"],
            role=form.cleaned_data["role"],
            invited_by=request.user,
        )
        try:
            services.invitation_send(
                invitation=invitation,
                accept_url=request.build_absolute_uri(
                    reverse("invitation-accept", args=[invitation.token])
                ),
            )
        except (OSError, smtplib.SMTPException) as error:
            self.message_user(
                request,
                f"The invitation is saved but its email could not be sent ({error}): check "
                f"EMAIL_URL, then invite {invitation.membership.user.email} again.",
                messages.ERROR,
            )
            return invitation.membership
        self.message_user(
            request,
            f"Invitation sent to {invitation.membership.user.email}: it is valid for "
            f"{services.INVITATION_LIFETIME.days} days.",
            messages.SUCCESS,
        )
        return invitation.membership

    def save_model(self, request, obj, form, change):
        if not change:
            return  # saved by the invitation service in save_form
        try:
            services.membership_change_role(
                membership=obj, role=obj.role, actor_role=admin_role(request, obj.organization_id)
            )
        except services.MembershipError as error:
            raise PermissionDenied(str(error)) from error

    def save_related(self, request, form, formsets, change):
        if change:
            super().save_related(request, form, formsets, change)

    def delete_model(self, request, obj):
        try:
            services.organization_remove_member(
                membership=obj, actor_role=admin_role(request, obj.organization_id)
            )
        except services.MembershipError as error:
            raise PermissionDenied(str(error)) from error

    def delete_queryset(self, request, queryset):
        for membership in queryset:
            self.delete_model(request, membership)
