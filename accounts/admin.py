"""Admin for users (email login), API tokens and groups.

Superusers see every user; other staff see the accepted members of their own organizations
only (a pending invitation is not membership), with their memberships there, and cannot grant
staff, superuser or permission flags (that would let them out of their organizations).

A user's password, email, active flag, profile and the account itself are changed by
organization staff only when the account belongs to no organization but theirs (accepted or
invited), and only by owners and admins holding a role at least the user's
(tenants.services.account_managed_by); otherwise by the user themself or a superuser. Groups
and permissions, and other users' API tokens, are the platform's: superusers only.
"""

import uuid

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.auth.admin import GroupAdmin as DjangoGroupAdmin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import AdminUserCreationForm, UserChangeForm
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.http import Http404

from accounts.models import ApiToken, User
from accounts.services import api_token_revoke
from tenants.admin import (
    OrganizationScopedAdmin,
    OrganizationScopedInline,
    admin_may,
    admin_organization_roles,
    all_organizations,
    organization_members,
    scope_to_admin_organizations,
    taken_anywhere,
)
from tenants.admin_site import PlatformOnlyAdmin
from tenants.models import Organization, OrganizationUser
from tenants.permissions import Action, Resource
from tenants.services import account_managed_by, last_owner_of_any

EMAIL_UNAVAILABLE = "this email address cannot be used: enter another"


class UserCreationForm(AdminUserCreationForm):
    class Meta:
        model = User
        fields = ["email"]


class UserChangeAdminForm(UserChangeForm):
    """Emails are unique whatever the case; taken and invalid get the same one message, so the
    form tells nobody which addresses have accounts."""

    email = forms.CharField(max_length=255, error_messages={"max_length": EMAIL_UNAVAILABLE})

    class Meta:
        model = User
        fields = "__all__"

    def clean_email(self):
        email = User.objects.normalize_email(self.cleaned_data["email"].strip())
        try:
            validate_email(email)
        except ValidationError:
            raise ValidationError(EMAIL_UNAVAILABLE) from None
        taken = all_organizations(User).filter(email__iexact=email).exclude(pk=self.instance.pk)
        if taken_anywhere(taken):
            raise ValidationError(EMAIL_UNAVAILABLE)
        return email

    def validate_unique(self):
        try:
            self.instance.validate_unique(exclude=self._get_validation_exclusions())
        except ValidationError as error:
            self._update_errors(ValidationError(dict.fromkeys(error.error_dict, EMAIL_UNAVAILABLE)))


class MembershipInline(OrganizationScopedInline, admin.TabularInline):
    """The user's memberships in the staff member's organizations, read-only: roles change on
    the membership's own page (tenants.admin.OrganizationUserAdmin), where the rules are."""

    model = OrganizationUser
    fk_name = "user"
    resource = Resource.MEMBERS
    fields = ["organization", "role", "is_primary_org", "created_at"]
    readonly_fields = fields
    show_change_link = True
    extra = 0

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class MemberOfFilter(admin.SimpleListFilter):
    """Users by organization, offering only the organizations this admin user may see."""

    title = "organization"
    parameter_name = "organization"

    def lookups(self, request, model_admin):
        organizations = scope_to_admin_organizations(
            Organization.objects.all(), request, lookup="pk"
        )
        return [(str(o.pk), o.name) for o in organizations]

    def queryset(self, request, queryset):
        if not self.value():
            return queryset
        try:
            organization_id = uuid.UUID(self.value())
        except (ValueError, AttributeError):
            return queryset.none()  # not an id: no organization has it
        return queryset.filter(memberships__organization=organization_id)


PRIVILEGE_FIELDS = ("is_staff", "is_superuser", "groups", "user_permissions")


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    form = UserChangeAdminForm
    add_form = UserCreationForm
    list_display = ["email", "first_name", "last_name", "is_active", "is_staff", "last_login"]
    list_filter = [MemberOfFilter, "is_active", "is_staff", "is_superuser"]
    search_fields = ["email", "first_name", "last_name"]
    ordering = ["email"]
    inlines = [MembershipInline]
    readonly_fields = ["last_login", "last_login_ip", "login_count", "created_at", "updated_at"]
    fieldsets = [
        (None, {"fields": ["email", "password"]}),
        ("Personal info", {"fields": ["first_name", "last_name", "timezone", "locale"]}),
        (
            "Permissions",
            {"fields": ["is_active", *PRIVILEGE_FIELDS]},
        ),
        (
            "Activity",
            {
                "fields": [
                    "email_verified_at",
                    "last_login",
                    "last_login_ip",
                    "login_count",
                    "created_at",
                    "updated_at",
                ]
            },
        ),
    ]
    add_fieldsets = [
        (
            None,
            {"classes": ["wide"], "fields": ["email", "usable_password", "password1", "password2"]},
        ),
    ]
    filter_horizontal = ["groups", "user_permissions"]

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        roles = admin_organization_roles(request)
        if roles is None:
            return queryset
        readable = [pk for pk in roles if admin_may(request, Resource.MEMBERS, Action.VIEW, pk)]
        members = organization_members(readable).values("pk")
        return queryset.filter(pk__in=members) | queryset.filter(pk=request.user.pk)

    def get_readonly_fields(self, request, obj=None):
        readonly = list(super().get_readonly_fields(request, obj))
        if not request.user.is_superuser:
            readonly += PRIVILEGE_FIELDS
        return readonly

    def has_view_permission(self, request, obj=None):
        if obj is not None and obj.pk == request.user.pk:
            return True  # one's own account
        return super().has_view_permission(request, obj) and admin_may(
            request, Resource.MEMBERS, Action.VIEW
        )

    def may_manage_account(self, request, obj) -> bool:
        """Password, email, active flag, profile, deletion: see the module docstring."""
        if request.user.is_superuser:
            return True
        if obj.pk == request.user.pk:
            return True
        return account_managed_by(target=obj, actor_roles=admin_organization_roles(request))

    def user_change_password(self, request, id, form_url=""):
        self.get_object(request, unquote(id))  # 404 outside the user's organizations
        return super().user_change_password(request, id, form_url)

    def get_object(self, request, object_id, from_field=None):
        obj = super().get_object(request, object_id, from_field)
        if obj is None:
            raise Http404("no user with this id in your organizations")
        return obj

    def history_view(self, request, object_id, extra_context=None):
        self.get_object(request, unquote(object_id))
        return super().history_view(request, object_id, extra_context)

    def has_add_permission(self, request):
        # A user made here would belong to no organization, so no other staff could see it.
        return request.user.is_superuser and super().has_add_permission(request)

    def has_change_permission(self, request, obj=None):
        # Changing a superuser (their password, say) would be a way to become one.
        if obj is not None and obj.is_superuser and not request.user.is_superuser:
            return False
        if not super().has_change_permission(request, obj):
            return False
        if obj is None:
            return request.user.is_superuser or admin_may(request, Resource.MEMBERS, Action.CHANGE)
        return self.may_manage_account(request, obj)

    def has_delete_permission(self, request, obj=None):
        if obj is not None and obj.is_superuser and not request.user.is_superuser:
            return False
        if not super().has_delete_permission(request, obj):
            return False
        if request.user.is_superuser:
            return True
        if obj is None:
            return admin_may(request, Resource.MEMBERS, Action.DELETE)
        return (
            obj.pk != request.user.pk
            and self.may_manage_account(request, obj)
            and not last_owner_of_any(obj)
        )


@admin.register(ApiToken)
class ApiTokenAdmin(OrganizationScopedAdmin):
    """Tokens are issued by POST /api/v1/auth/token (shown once); here they are listed and
    revoked. Only hashes are stored, so there is nothing secret to show."""

    list_display = ["__str__", "user", "created_at", "last_used_at", "expires_at", "revoked_at"]
    list_filter = [("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["name", "user__email"]
    list_select_related = ["user", "organization"]
    readonly_fields = ["user", "organization", "created_at", "last_used_at", "revoked_at"]
    fields = ["name", *readonly_fields[:4], "expires_at", "revoked_at"]
    actions = ["revoke"]

    def get_queryset(self, request):
        # Other users' tokens are the platform's: each staff member sees their own.
        queryset = super().get_queryset(request)
        if request.user.is_superuser:
            return queryset
        return queryset.filter(user=request.user)

    def has_add_permission(self, request):
        return False

    def get_readonly_fields(self, request, obj=None):
        # A token's lifetime is the platform's policy: staff revoke their own tokens (the
        # action), they do not extend them.
        if request.user.is_superuser:
            return self.readonly_fields
        return [*self.readonly_fields, "name", "expires_at"]

    def has_delete_permission(self, request, obj=None):
        # Revoked tokens stay for the audit trail; only the platform removes rows.
        return request.user.is_superuser and super().has_delete_permission(request, obj)

    @admin.action(description="Revoke the selected tokens", permissions=["change"])
    def revoke(self, request, queryset):
        tokens = list(queryset.filter(revoked_at__isnull=True))
        for api_token in tokens:
            api_token_revoke(api_token=api_token)
        self.message_user(request, f"Revoked {len(tokens)} token(s).", messages.SUCCESS)


class PlatformGroupAdmin(PlatformOnlyAdmin, DjangoGroupAdmin):
    """Groups carry model permissions across every organization: the platform's."""


admin.site.unregister(Group)
admin.site.register(Group, PlatformGroupAdmin)
