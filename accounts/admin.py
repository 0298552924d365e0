"""Admin for users (email login) and API tokens.

Superusers see every user; other staff see the members of their own organizations only, with
their memberships there, and cannot grant staff, superuser or permission flags (that would let
them out of their organizations).
"""

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import AdminUserCreationForm, UserChangeForm
from django.http import Http404

from accounts.models import ApiToken, User
from accounts.services import api_token_revoke
from tenants.admin import (
    OrganizationScopedAdmin,
    OrganizationScopedInline,
    admin_organization_ids,
    scope_to_admin_organizations,
)
from tenants.models import Organization, OrganizationUser


class UserCreationForm(AdminUserCreationForm):
    class Meta:
        model = User
        fields = ["email"]


class UserChangeAdminForm(UserChangeForm):
    class Meta:
        model = User
        fields = "__all__"


class MembershipInline(OrganizationScopedInline, admin.TabularInline):
    model = OrganizationUser
    fk_name = "user"
    fields = ["organization", "role", "is_primary_org", "created_at"]
    readonly_fields = ["created_at"]
    extra = 0


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
        if self.value():
            return queryset.filter(memberships__organization=self.value())
        return queryset


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
        ids = admin_organization_ids(request)
        if ids is None:
            return queryset
        return queryset.filter(memberships__organization__in=ids).distinct()

    def get_readonly_fields(self, request, obj=None):
        readonly = list(super().get_readonly_fields(request, obj))
        if not request.user.is_superuser:
            readonly += PRIVILEGE_FIELDS
        return readonly

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
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        if obj is not None and obj.is_superuser and not request.user.is_superuser:
            return False
        return super().has_delete_permission(request, obj)


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

    def has_add_permission(self, request):
        return False

    @admin.action(description="Revoke the selected tokens", permissions=["change"])
    def revoke(self, request, queryset):
        tokens = list(queryset.filter(revoked_at__isnull=True))
        for api_token in tokens:
            api_token_revoke(api_token=api_token)
        self.message_user(request, f"Revoked {len(tokens)} token(s).", messages.SUCCESS)
