"""The one base for API views on tenant-owned data: the organization comes from the request.

`OrganizationScopedViewSet` makes the request's organization (the one its bearer token was
issued for) current for the whole request, builds every queryset from it, narrows it by role
(tenants.permissions) and stamps it on new rows. Subclasses may not override `get_queryset` or
`get_object`: they narrow with `safely_get_queryset(queryset)`, and the one way around the
organization is to implement `dangerously_get_queryset()`, a name that shows up in review.
The organization is never read from a request body: serializers show it read-only.
"""

from __future__ import annotations

from contextlib import ExitStack

from django.db import models
from rest_framework import serializers, viewsets
from rest_framework.permissions import IsAuthenticated

from billing.access import check_request
from tenants.context import current_organization, organization_context
from tenants.permissions import Resource, RolePermission, limit_to_own_rows


class OrganizationContextMixin:
    """For DRF views: the request's organization is the current one from authentication to the
    rendered response, and no longer after it (the ContextVar is reset, so a reused worker
    thread never carries it into the next request)."""

    def dispatch(self, request, *args, **kwargs):
        with ExitStack() as stack:
            self._organization_stack = stack
            return super().dispatch(request, *args, **kwargs)

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)  # authentication, permissions, throttling
        organization = self.get_request_organization(request)
        if organization is not None:
            self._organization_stack.enter_context(organization_context(organization))
            # What the organization's subscription allows (past due: reads only; canceled,
            # suspended: nothing), and the api_calls meter: both from the loaded organization.
            check_request(request, self, organization)

    def get_request_organization(self, request):
        """The organization authentication bound to this request (None: anonymous)."""
        return getattr(request, "organization", None)


class OrganizationScopedPrimaryKeyRelatedField(serializers.PrimaryKeyRelatedField):
    """A foreign key in a request body resolves only within the current organization: another
    organization's id is 'object does not exist', exactly like an id that never existed."""

    def get_queryset(self):
        queryset = super().get_queryset()
        if any(field.name == "organization" for field in queryset.model._meta.fields):
            queryset = queryset.filter(organization=current_organization("an API request"))
        return queryset


class OrganizationScopedSerializer(serializers.ModelSerializer):
    serializer_related_field = OrganizationScopedPrimaryKeyRelatedField
    # Shown, never written: the organization is the request's, whatever a body says.
    organization = serializers.SlugRelatedField(slug_field="slug", read_only=True)


class OrganizationScopedViewSet(OrganizationContextMixin, viewsets.ModelViewSet):
    """List, retrieve, create, update and delete one tenant-owned model of the request's
    organization. Another organization's ids are 404, like ids that do not exist."""

    model: type[models.Model]
    resource: Resource
    permission_classes = [IsAuthenticated, RolePermission]

    _FINAL = ("get_queryset", "get_object")

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        for name in cls._FINAL:
            # Compared by identity, so an override in a mixin is caught as well.
            if getattr(cls, name) is not getattr(OrganizationScopedViewSet, name):
                raise TypeError(
                    f"{cls.__name__} overrides {name}(), which applies the organization scope; "
                    f"narrow the queryset in safely_get_queryset(queryset) instead, or "
                    f"implement dangerously_get_queryset() to leave the organization on purpose"
                )
        model = cls.__dict__.get("model")
        if model is not None:
            # For the router's basename and the schema's model; never queried.
            cls.queryset = model._base_manager.none()

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # drf-spectacular inspecting the view
            return self.model._base_manager.none()
        try:
            return self.dangerously_get_queryset()
        except NotImplementedError:
            pass
        organization = current_organization(f"the {self.resource} API")
        # The scoped manager filters by the current organization already; saying it again here
        # keeps the API correct whatever the model's default manager is.
        queryset = self.model.objects.filter(organization=organization)
        queryset = limit_to_own_rows(
            queryset,
            role=self.request.organization_role,
            resource=self.resource,
            user=self.request.user,
        )
        return self.safely_get_queryset(queryset)

    def safely_get_queryset(self, queryset):
        """Narrow the organization's queryset (select_related, extra filters). Never widen it.

        By default the organization is joined in: every serializer shows it."""
        return queryset.select_related("organization")

    def dangerously_get_queryset(self):
        """Replace the organization-scoped queryset entirely. Implementing this is a decision to
        leave the organization scope; say why where you do."""
        raise NotImplementedError

    def perform_create(self, serializer):
        serializer.save(organization=current_organization(f"creating {self.resource}"))
