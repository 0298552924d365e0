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

from django.core.exceptions import FieldDoesNotExist
from django.db import models
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers, viewsets
from rest_framework.fields import SkipField
from rest_framework.permissions import IsAuthenticated
from rest_framework.relations import PKOnlyObject

from tenants.context import current_organization, current_organization_or_none, organization_context
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


@extend_schema_field(OpenApiTypes.STR)
class OrganizationSlugField(serializers.Field):
    """The row's organization, by slug, read-only, without joining `organizations`: the rows an
    API request reads are the current organization's, whose slug is at hand; any other (never
    expected) is looked up."""

    def __init__(self, **kwargs):
        super().__init__(read_only=True, source="organization_id", **kwargs)

    def to_representation(self, organization_id):
        organization = current_organization_or_none()
        if organization is not None and organization.pk == organization_id:
            return organization.slug
        from tenants.models import Organization

        return (
            Organization.objects.filter(pk=organization_id).values_list("slug", flat=True).first()
        )


# Serializer fields whose to_representation returns a value of this exact type unchanged.
_UNCHANGED = {
    serializers.CharField: str,
    serializers.EmailField: str,
    serializers.ChoiceField: str,
    serializers.IntegerField: int,
    serializers.BooleanField: bool,
    serializers.FloatField: float,
}


class OrganizationScopedSerializer(serializers.ModelSerializer):
    """A model serializer for one organization's rows, with a faster way out.

    `to_representation` gives exactly DRF's output (tests/api/test_serialization.py compares
    them) at about half the cost: each readable field is read as one attribute (a foreign key
    by its `<name>_id`, as DRF's primary-key optimization does), values DRF would return
    unchanged (str, int, bool, float) are not converted, and the per-field lookups are worked
    out once per serializer instead of once per row. Fields it does not know go DRF's way.
    """

    serializer_related_field = OrganizationScopedPrimaryKeyRelatedField
    # Shown, never written: the organization is the request's, whatever a body says.
    organization = OrganizationSlugField()

    def to_representation(self, instance):
        plan = self.__dict__.get("_read_plan")
        if plan is None:
            plan = self._read_plan = self._build_read_plan()
        ret = {}
        for name, attribute, unchanged, convert, field in plan:
            if attribute is None:  # DRF's own way
                try:
                    value = field.get_attribute(instance)
                except SkipField:
                    continue
                check = value.pk if isinstance(value, PKOnlyObject) else value
                ret[name] = None if check is None else field.to_representation(value)
                continue
            value = getattr(instance, attribute)
            if value is None:
                ret[name] = None
            elif convert is None or type(value) is unchanged:
                ret[name] = value
            else:
                ret[name] = convert(value)
        return ret

    def _build_read_plan(self):
        """(name, attribute, unchanged type, converter, field) per readable field; attribute
        None: DRF's get_attribute and to_representation; converter None: the value as is."""
        model = self.Meta.model
        plan = []
        for field in self._readable_fields:
            name, source = field.field_name, field.source
            model_field = None if "." in source else _model_field(model, source)
            if isinstance(field, OrganizationSlugField):
                plan.append((name, "organization_id", _NoType, field.to_representation, field))
            elif (
                isinstance(field, serializers.PrimaryKeyRelatedField)
                and field.pk_field is None
                and model_field is not None
                and model_field.many_to_one
            ):
                # DRF returns the related primary key itself (PKOnlyObject): `<name>_id`.
                plan.append((name, model_field.attname, _NoType, None, field))
            elif (
                (type(field) in _UNCHANGED or isinstance(field, _PLAIN_FIELDS))
                and model_field is not None
                and not model_field.is_relation
            ):
                unchanged = _UNCHANGED.get(type(field), _NoType)
                plan.append((name, model_field.attname, unchanged, field.to_representation, field))
            else:
                plan.append((name, None, _NoType, None, field))
        return plan


class _NoType:
    """No value is of this type: every value goes through the field's to_representation."""


# Fields whose to_representation needs nothing but the attribute's value.
_PLAIN_FIELDS = (
    serializers.DateTimeField,
    serializers.DateField,
    serializers.TimeField,
    serializers.DecimalField,
    serializers.UUIDField,
    serializers.JSONField,
)


def _model_field(model, name):
    try:
        return model._meta.get_field(name)
    except FieldDoesNotExist:
        return None


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

        The organization is not joined in: the serializers show the current organization's
        slug (OrganizationSlugField), so each query reads the one table."""
        return queryset

    def dangerously_get_queryset(self):
        """Replace the organization-scoped queryset entirely. Implementing this is a decision to
        leave the organization scope; say why where you do."""
        raise NotImplementedError

    def perform_create(self, serializer):
        serializer.save(organization=current_organization(f"creating {self.resource}"))
