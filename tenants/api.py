"""The one base for API views on tenant-owned data: the organization comes from the request.

`OrganizationScopedViewSet` makes the request's organization (the one its bearer token was
issued for) current for the whole request, builds every queryset from it, narrows it by role
(tenants.permissions) and stamps it on new rows. Subclasses may not override `get_queryset` or
`get_object`: they narrow with `safely_get_queryset(queryset)`, and the one way around the
organization is to implement `dangerously_get_queryset()`, a name that shows up in review.
The organization is never read from a request body: serializers show it read-only.
"""

from __future__ import annotations

import datetime
import functools
import inspect
from contextlib import ExitStack

from django.conf import settings
from django.core.exceptions import FieldDoesNotExist, ValidationError
from django.core.paginator import Paginator
from django.db import connections, models, router
from django.db.models import Count, F, Func, Value, Window
from django.db.models.base import ModelState
from django.db.models.expressions import Col
from django.db.models.fields.related_descriptors import ForeignKeyDeferredAttribute
from django.db.models.functions import Cast, Coalesce
from django.db.models.query import MAX_GET_RESULTS
from django.db.models.query_utils import DeferredAttribute
from django.db.models.signals import post_init, pre_init
from django.http import Http404
from django.utils import timezone
from django.utils.functional import cached_property
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import ISO_8601, serializers, viewsets
from rest_framework.fields import SkipField
from rest_framework.filters import OrderingFilter, SearchFilter
from rest_framework.permissions import IsAuthenticated
from rest_framework.relations import PKOnlyObject
from rest_framework.settings import api_settings

from billing.access import check_request
from billing.limits import PlanLimited
from routeoptimizer.api import Pagination as BasePagination
from tenants.context import current_organization, current_organization_or_none, organization_context
from tenants.permissions import Resource, RolePermission, limit_to_own_rows, own_rows_q


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
    unchanged (str, int, bool, float) are not converted, and the fields and per-field lookups
    are worked out once per class instead of once per request and row
    (`_shared_read_plan`). Fields it does not know go DRF's way.
    """

    serializer_related_field = OrganizationScopedPrimaryKeyRelatedField
    shared_read_plan = True
    # Shown, never written: the organization is the request's, whatever a body says.
    organization = OrganizationSlugField()

    def to_representation(self, instance):
        plan = self.__dict__.get("_read_plan")
        if plan is None:
            plan = self._read_plan = self._shared_read_plan() or self._build_read_plan()
        ret = {}
        # DRF's default_timezone(), asked once per serializer (a page's rows share the child
        # serializer of one request) rather than once per row: a ContextVar read through
        # asgiref's Local cost about 3% of a 50-row page.
        zone = self.__dict__.get("_zone")
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
            elif convert is _ISO_DATETIME:
                if type(value) is not datetime.datetime or value.tzinfo is None:
                    ret[name] = field.to_representation(value)
                    continue
                if zone is None:
                    zone = self._zone = timezone.get_current_timezone()
                text = value.astimezone(zone).isoformat()
                ret[name] = text[:-6] + "Z" if text.endswith("+00:00") else text
            else:
                ret[name] = convert(value)
        return ret

    @classmethod
    def _shared_read_plan(cls):
        """The plan of a serializer of this class built once, its fields included: DRF builds a
        ModelSerializer's fields for every instance (a millisecond for thirty fields), which a
        read that never validates need not pay. None when a field goes DRF's way (it may need
        the instance's context or parent); subclasses whose fields vary per instance set
        `shared_read_plan = False`."""
        if not cls.shared_read_plan:
            return None
        plan = cls.__dict__.get("_class_read_plan")
        if plan is None:
            plan = cls()._build_read_plan()
            if any(attribute is None for _, attribute, *_ in plan):
                plan = ()
            cls._class_read_plan = plan
        return plan or None

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
                convert = field.to_representation
                if _iso_datetime(field):
                    convert = _ISO_DATETIME
                plan.append((name, model_field.attname, unchanged, convert, field))
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


def _ISO_DATETIME(value):
    """Marks a DateTimeField that to_representation formats inline, exactly as DRF does for an
    aware datetime: in the current time zone, ISO 8601, UTC as `Z`."""
    raise AssertionError("a marker, never called")


def _iso_datetime(field) -> bool:
    """Whether DRF would format this field's aware datetimes as ISO 8601 in the current zone."""
    return (
        type(field) is serializers.DateTimeField
        and settings.USE_TZ
        and not hasattr(field, "timezone")
        and not hasattr(field, "format")
        and str(api_settings.DATETIME_FORMAT).lower() == ISO_8601
    )


def _model_field(model, name):
    try:
        return model._meta.get_field(name)
    except FieldDoesNotExist:
        return None


# Between two fields in the text a search looks in: no search term holds it (IndexedSearchFilter
# removes it from terms), so a term matches within one field, as with DRF's per-field lookups.
SEARCH_SEPARATOR = "\x1f"


class SearchText(Func):
    """The text `?search=` looks in: the fields, NULL as empty, joined by SEARCH_SEPARATOR.

    Under row level security no index can serve a substring search (LIKE is not LEAKPROOF, so
    PostgreSQL runs it only after the policy, as a filter over the organization's rows:
    docs/tenant-isolation.md); one expression per row costs PostgreSQL about a quarter less
    than DRF's OR of one UPPER(...) LIKE per field, with the same meaning."""

    template = "(%(expressions)s)"
    arg_joiner = " || E'\\x1f' || "
    output_field = models.TextField()

    def __init__(self, *fields: str):
        super().__init__(
            *(Coalesce(Cast(F(name), models.TextField()), Value("")) for name in fields)
        )


class IndexedSearchFilter(SearchFilter):
    """DRF's SearchFilter with the same terms and the same meaning (each term, case-insensitive,
    in any of the view's search_fields; every term must match), asked of SearchText: one
    UPPER(...) LIKE per term and row instead of one per field. Views whose search_fields use
    DRF's prefixes (^, =, @, $) or span relations get DRF's own implementation."""

    def filter_queryset(self, request, queryset, view):
        fields = self.get_search_fields(view, request)
        if not fields or any(not _plain_field(queryset.model, name) for name in fields):
            return super().filter_queryset(request, queryset, view)
        terms = [term.replace(SEARCH_SEPARATOR, "") for term in self.get_search_terms(request)]
        if not terms:
            return queryset
        queryset = queryset.alias(_search_text=SearchText(*fields))
        for term in terms:
            queryset = queryset.filter(_search_text__icontains=term)
        return queryset


class CrossOrganizationRead(RuntimeError):
    """A page held a row of another organization: never expected (both layers scope it)."""


class PageByKeysPaginator(Paginator):
    """Django's paginator, reading a page as the keys of its rows first: `WHERE pk IN (SELECT pk
    ... ORDER BY ... LIMIT n OFFSET m)`, in one query.

    Under row level security PostgreSQL underestimates an organization's rows (the policy's
    `organization_id = ANY (<claim>)` and the query's own `organization_id = X` are taken as
    independent: docs/tenant-isolation.md), and for a filtered page it then prefers reading
    every matching row and sorting them to walking the index in order. Asked for keys only, it
    walks the index in order and stops after a page (an index-only scan whatever the
    estimate), and the page's rows are then read by primary key."""

    def __init__(self, *args, learn_as=None, **kwargs):
        super().__init__(*args, **kwargs)
        # ((view class, model, role), database) when the queryset is a plain list of the view's (see
        # Pagination): its count and keys statements are then compiled once (_PAGE_STATEMENTS).
        self.learn_as = learn_as

    @cached_property
    def count(self):
        queryset = self.object_list
        if self.learn_as is None or not isinstance(queryset, models.QuerySet):
            return super().count
        return self._learned("count", queryset.count, "")

    def _keys(self, queryset, bottom, top):
        read = lambda: list(queryset.values_list("pk", flat=True)[bottom:top])  # noqa: E731
        if self.learn_as is None or top <= bottom:
            return read()  # an empty slice runs no query
        using = self.learn_as[1]
        suffix = connections[using].ops.limit_offset_sql(bottom, top)
        return [row[0] for row in self._learned("keys", read, suffix, rows=True)]

    def _learned(self, kind, run, suffix, *, rows=False):
        """What `run` (the ORM's count or keys) answers, from its statement as the ORM compiled
        it for this view class once: learned from the first run (_learn_page_statement), then
        run with the current organization's id for each of its parameters. The keys' LIMIT and
        OFFSET are the statement's end (`suffix`), put back for each page."""
        cls, using = self.learn_as
        statement = _PAGE_STATEMENTS.get((cls, using, kind), _UNLEARNED)
        if statement is _UNLEARNED:
            answer, statement = _learn_page_statement(
                using, run, suffix, rows=rows, model=self.object_list.model
            )
            if statement is not _UNLEARNED:
                _PAGE_STATEMENTS[(cls, using, kind)] = statement
            return answer
        if statement is None:
            return run() if not rows else [(key,) for key in run()]
        sql, parameters = statement
        organization = current_organization("a page")
        with connections[using].cursor() as cursor:
            cursor.execute(sql + suffix, [organization.pk] * parameters)
            return cursor.fetchall() if rows else cursor.fetchone()[0]

    def page(self, number):
        number = self.validate_number(number)
        queryset = self.object_list
        if not isinstance(queryset, models.QuerySet) or not queryset.ordered:
            return super().page(number)
        bottom = (number - 1) * self.per_page
        top = bottom + self.per_page
        if top + self.orphans >= self.count:
            top = self.count
        return self._page_of_keys(queryset.model, self._keys(queryset, bottom, top), number)

    def _page_of_keys(self, model, keys, number):
        """Page `number` holding the rows of `keys`, in their order."""
        if not keys:
            return self._get_page([], number, self)
        # By primary key only, as Django follows a relation (the base manager; PostgreSQL still
        # shows only the claimed organization): with the organization's condition added again
        # the underestimate above made PostgreSQL read the organization's rows to find fifty.
        # The keys are the organization's query's own, and each row is checked once more.
        rows = {row.pk: row for row in _rows_by_keys(model, keys)}
        organization = current_organization_or_none()
        if organization is not None and any(
            getattr(row, "organization_id", organization.pk) != organization.pk
            for row in rows.values()
        ):
            raise CrossOrganizationRead(f"a page of {model.__name__} left {organization.slug}")
        return self._get_page([rows[key] for key in keys if key in rows], number, self)


class SearchPaginator(PageByKeysPaginator):
    """A search's page: its keys and its count in one query (`count(*) OVER ()`), then its rows
    by primary key (PageByKeysPaginator). The count and the page both filter every row of the
    organization the search looks at, so a second query would read them all again; and asked
    for keys only, an index holding the searched columns answers without the table (customers:
    routing.0012, an index-only scan of the organization's entries, where the rows themselves
    lie scattered among other organizations'). Anything else (a page number that is not a
    positive integer, past the end) goes the way of PageByKeysPaginator, errors included."""

    def page(self, number):
        try:
            wanted = int(number)
        except (TypeError, ValueError):
            wanted = 0
        queryset = self.object_list
        if (
            wanted < 1
            or "count" in self.__dict__
            or not isinstance(queryset, models.QuerySet)
            or not queryset.ordered
        ):
            return super().page(number)
        bottom = (wanted - 1) * self.per_page
        found = list(
            queryset.annotate(_page_total=Window(Count("*"))).values_list("pk", "_page_total")[
                bottom : bottom + self.per_page
            ]
        )
        if not found and wanted > 1:
            return super().page(number)  # past the end: Django's EmptyPage, as before
        self.__dict__["count"] = found[0][1] if found else 0
        return self._page_of_keys(
            queryset.model, [key for key, _total in found], self.validate_number(wanted)
        )


# ((view class, model, role), database, "count" or "keys") -> (sql, number of parameters) of a
# count and keys (the keys' without their LIMIT and OFFSET), None when the ORM's way is kept.
_PAGE_STATEMENTS: dict = {}


def _learn_page_statement(using, run, suffix, *, rows, model=None):
    """(what `run` answers, (sql, parameters) of the one statement it ran, or None).

    The statement is kept when `run` executed exactly one, every parameter of it is the
    current organization's id, it ends with `suffix`, and its answer needs no converting: a
    count's integer, or keys of a primary key with neither a field's nor the database
    backend's converter (so the cursor's rows are what the ORM returned). Learning runs no
    query of its own: a request that learns queries the database as often as one that does
    not."""
    organization = current_organization("a page")
    connection = connections[using]
    seen = []

    def capture(execute, sql, params, many, context):
        seen.append((sql, params, many))
        return execute(sql, params, many, context)

    # Outermost, to see the statement as the ORM sent it (before the claim is put on it).
    connection.execute_wrappers.insert(0, capture)
    try:
        answer = run()
    finally:
        connection.execute_wrappers.remove(capture)
    expected = [(key,) for key in answer] if rows else answer
    if not seen:  # nothing to read (an empty slice): learn from the next one
        return expected, _UNLEARNED
    if len(seen) != 1:
        return expected, None
    sql, params, many = seen[0]
    params = list(params or ())
    if many or not isinstance(sql, str) or not sql.endswith(suffix):
        return expected, None
    if not params or not all(_same_value(param, organization.pk) for param in params):
        return expected, None
    if not rows and (type(answer) is not int or not sql.startswith("SELECT COUNT(*) ")):
        return expected, None
    if rows and (model is None or not _plain_keys(connection, model)):
        return expected, None
    return expected, (sql[: len(sql) - len(suffix)], len(params))


def _plain_keys(connection, model) -> bool:
    """Whether `model`'s keys come back from the database unconverted: its primary key has no
    from_db_value and the backend no converter for it (as the ORM's compiler asks both)."""
    pk = model._meta.pk
    column = pk.get_col(model._meta.db_table)
    return not column.get_db_converters(connection) and not connection.ops.get_db_converters(column)


# (model, number of keys) -> the statement reading those rows by primary key, None when the
# ORM's way is kept (_rows_by_keys).
_ROWS_BY_KEYS: dict = {}


def _rows_by_keys(model, keys):
    """model._base_manager.filter(pk__in=keys).order_by(), with its SQL compiled once per model
    and number of keys: the statement differs only in the keys, and compiling it was about a
    third of what a page's three queries cost in Python. Duplicated keys (a filter through a
    join may repeat one) and statements `_learn_statement` cannot be sure of go the ORM's way."""
    manager = model._base_manager
    if manager._queryset_class is not models.QuerySet or len(set(keys)) != len(keys):
        return list(manager.filter(pk__in=keys).order_by())
    pk = model._meta.pk
    using = router.db_for_read(model)
    connection = connections[using]
    try:
        values = [
            pk.get_db_prep_value(pk.get_prep_value(k), connection, prepared=True) for k in keys
        ]
    except (TypeError, ValueError, ValidationError):
        return list(manager.filter(pk__in=keys).order_by())
    cache_key = (model, len(keys), using)
    statement = _ROWS_BY_KEYS.get(cache_key, _UNLEARNED)
    if statement is _UNLEARNED:
        queryset = manager.filter(pk__in=keys).order_by()
        learned = None if queryset.db != using else _learn_statement(model, queryset, using)
        # Each parameter the key in its place: IN (%s, ...) in the keys' order.
        if learned is not None and (
            len(learned[1]) != len(values) or not all(map(_same_value, learned[1], values))
        ):
            learned = None
        statement = _ROWS_BY_KEYS[cache_key] = (
            None if learned is None else (learned[0], learned[2], learned[3])
        )
    if statement is None:
        return list(manager.filter(pk__in=keys).order_by())
    return _read_rows(model, statement, values, using)


def _learn_statement(model, queryset, using):
    """(sql, params, attnames, converters) of `queryset` as the ORM compiles it, when it reads
    `model`'s own columns (no join, annotation or backend converter); None otherwise. The
    caller checks what each parameter is before running the SQL again with other values."""
    if queryset.query.select_for_update or queryset._prefetch_related_lookups:
        return None
    compiler = queryset.query.get_compiler(using=using)
    sql, params = compiler.as_sql()
    fields = [column.target for column, *_ in compiler.select]
    if (
        compiler.klass_info is None
        or compiler.klass_info.get("related_klass_infos")
        or compiler.annotation_col_map
        or compiler.has_extra_select
        or not all(type(column) is Col for column, *_ in compiler.select)
        or fields != list(model._meta.concrete_fields)
    ):
        return None
    # The fields' own from_db_value (a UTC datetime field's): the ORM applies them to each row,
    # so do we; a converter of the database backend (bound to one connection) is not kept.
    converters = compiler.get_converters([column for column, *_ in compiler.select])
    for functions, column in converters.values():
        if any(getattr(function, "__self__", None) is not column.target for function in functions):
            return None
    converters = tuple(
        (position, tuple(functions), column) for position, (functions, column) in converters.items()
    )
    return sql, tuple(params), tuple(field.attname for field in fields), converters


def _same_value(a, b) -> bool:
    return type(a) is type(b) and a == b


def _read_rows(model, statement, params, using):
    """The rows of a learned statement (sql, attnames, converters) run with `params`, built as
    the ORM builds them (the fields' converters, from_db)."""
    sql, attnames, converters = statement
    connection = connections[using]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    if converters:
        converted = []
        for row in rows:
            row = list(row)
            for position, functions, column in converters:
                for function in functions:
                    row[position] = function(row[position], column, connection)
            converted.append(row)
        rows = converted
    build = _instance_builder(model)
    if build is None or pre_init.has_listeners(model) or post_init.has_listeners(model):
        return [model.from_db(using, attnames, row) for row in rows]
    return [build(using, attnames, row) for row in rows]


def _tracked(instance) -> None:
    instance._loaded_values = instance._tracked_values()


# Model.from_db and the overrides _instance_builder knows, each with what it adds to Django's.
_KNOWN_FROM_DB = {models.Model.from_db.__func__: None, PlanLimited.from_db.__func__: _tracked}


@functools.cache
def _instance_builder(model):
    """A function (db, attnames, row) -> instance doing what model.from_db does for a row of
    every concrete column, without Model.__init__'s setattr per field (about a sixth of a
    50-row page's Python CPU), or None when that is not known to be the same.

    It is the same when the model keeps Model.__init__, every from_db in its classes is one
    _KNOWN_FROM_DB names, and every column's class attribute is Django's DeferredAttribute (no
    __set__) or ForeignKeyDeferredAttribute (whose __set__ only clears a cached related object,
    which a new instance has not): Model.__init__ then sets each value in the instance's
    __dict__ after a fresh ModelState. The caller checks per query that no pre_init or
    post_init receiver listens to the model (Model.__init__ sends both)."""
    if model.__init__ is not models.Model.__init__ or model._meta.abstract:
        return None
    extras = []
    for klass in model.__mro__:
        method = klass.__dict__.get("from_db")
        if method is None:
            continue
        function = getattr(method, "__func__", None)
        if function not in _KNOWN_FROM_DB:
            return None
        if _KNOWN_FROM_DB[function] is not None:
            extras.append(_KNOWN_FROM_DB[function])
    for field in model._meta.concrete_fields:
        descriptor = inspect.getattr_static(model, field.attname, None)
        if type(descriptor) not in (DeferredAttribute, ForeignKeyDeferredAttribute):
            return None
    every = tuple(field.attname for field in model._meta.concrete_fields)
    new = model.__new__

    def build(db, attnames, row):
        if attnames != every:
            return model.from_db(db, attnames, row)
        instance = new(model)
        state = instance._state = ModelState()
        instance.__dict__.update(zip(attnames, row, strict=True))
        state.adding = False
        state.db = db
        for extra in extras:
            extra(instance)
        return instance

    return build


class Pagination(BasePagination):
    """The API's pagination (routeoptimizer.api.Pagination): a page by its keys, and a search
    page by its keys too, found with its count in one query."""

    def paginate_queryset(self, queryset, request, view=None):
        searching = bool(request.query_params.get(api_settings.SEARCH_PARAM, "").strip())
        if searching:
            self.django_paginator_class = SearchPaginator
        else:
            learn_as = self._plain_list(queryset, request, view)
            self.django_paginator_class = functools.partial(PageByKeysPaginator, learn_as=learn_as)
        return super().paginate_queryset(queryset, request, view)

    def _plain_list(self, queryset, request, view):
        """((view class, model, role), database) when `queryset` is the view's plain list: an
        OrganizationScopedViewSet's organization queryset in its default order, for a role that
        sees every row, the query string naming only the page and its size. Its count and keys
        statements are then the same for every page but for the organization's id (and the
        keys' LIMIT and OFFSET); None otherwise."""
        if not isinstance(view, OrganizationScopedViewSet) or not _plain_viewset(view):
            return None
        if getattr(view, "swagger_fake_view", False) or request.method not in ("GET", "HEAD"):
            return None
        if not set(request.query_params) <= {self.page_query_param, self.page_size_query_param}:
            return None
        role = getattr(request, "organization_role", None)
        if role is None or own_rows_q(role=role, resource=view.resource, user=request.user):
            return None
        if not isinstance(queryset, models.QuerySet) or queryset.model is not view.model:
            return None
        # Per model and role too, as get_object's statements (OrganizationScopedViewSet.get_object).
        return (type(view), view.model, role), queryset.db


def _names_filter(param: str, filterset) -> bool:
    """Whether query parameter `param` may be read by one of `filterset`'s filters: its name, or
    its name and a suffix (a range's `<name>_min`, a multi-widget's `<name>_0`)."""
    return any(param == name or param.startswith(f"{name}_") for name in filterset.base_filters)


def _plain_field(model, name: str) -> bool:
    if name[:1] in SearchFilter.lookup_prefixes or "__" in name:
        return False
    field = _model_field(model, name)
    return field is not None and not field.is_relation


# get_object's statement per view class, model and role (OrganizationScopedViewSet.get_object):
# learned from the first plain read, None when those reads keep the ORM's way.
_UNLEARNED = object()
_OBJECT_STATEMENTS: dict = {}


# What a view may not change, on its class or as as_view()'s keyword arguments on the instance,
# for its statements to be learned (learned statements are kept per view class, model and role:
# anything else that shapes the SQL must be the base class's).
_SHAPES_THE_STATEMENT = (
    "model",
    "queryset",
    "ordering",
    "lookup_field",
    "filter_backends",
    "filter_queryset",
    "get_queryset",
    "safely_get_queryset",
    "dangerously_get_queryset",
)


def _plain_viewset(view) -> bool:
    """Whether `view` reads the organization's queryset unchanged: no safely_get_queryset,
    dangerously_get_queryset, filter_queryset or filter backends of its own (a backend narrowing
    by user without a parameter would otherwise be learned from one user and served to the
    next), and nothing of the sort given to as_view() for this instance."""
    cls = type(view)
    if any(name in vars(view) for name in _SHAPES_THE_STATEMENT if name != "model"):
        return False
    if vars(view).get("model", cls.model) is not cls.model:
        return False
    return (
        cls.safely_get_queryset is OrganizationScopedViewSet.safely_get_queryset
        and cls.dangerously_get_queryset is OrganizationScopedViewSet.dangerously_get_queryset
        and cls.filter_queryset is OrganizationScopedViewSet.filter_queryset
        and cls.get_queryset is OrganizationScopedViewSet.get_queryset
        and list(cls.filter_backends) == list(OrganizationScopedViewSet.filter_backends)
    )


class OrganizationScopedViewSet(OrganizationContextMixin, viewsets.ModelViewSet):
    """List, retrieve, create, update and delete one tenant-owned model of the request's
    organization. Another organization's ids are 404, like ids that do not exist."""

    model: type[models.Model]
    resource: Resource
    permission_classes = [IsAuthenticated, RolePermission]
    filter_backends = [DjangoFilterBackend, IndexedSearchFilter, OrderingFilter]
    pagination_class = Pagination

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

    def get_object(self):
        """DRF's get_object, with the SQL of a plain read of one row compiled once per view class.

        A GET of one row by its key, with no query string, for a role that sees every row of the
        organization, runs the same statement each time but for two values: the organization's
        id (the scoped manager's condition and get_queryset's own) and the key. Compiling it was
        about a fifth of such a request's Python CPU. The first such request compiles it as
        DRF's get_object would (`_learn_object_statement`), and later ones run that SQL with the
        current organization and the key, building the row as the ORM does (`from_db`); any
        statement it cannot be sure of (another parameter, a joined or converted column) keeps
        the ORM's way. Row level security and the per-transaction claim are the connection's
        and unchanged."""
        plain = self._plain_object_read()
        if plain is None:
            return super().get_object()
        # Per view class and role: a get_queryset that narrows by role without a parameter
        # (none does today but limit_to_own_rows, which keeps the ORM's way) must never hand
        # one role's statement to another.
        learned_as = (type(self), self.model, self.request.organization_role)
        statement = _OBJECT_STATEMENTS.get(learned_as, _UNLEARNED)
        if statement is _UNLEARNED:
            statement = self._learn_object_statement(plain)
            if statement is _UNLEARNED:  # a key of the wrong type: DRF's 404, learnt later
                return super().get_object()
            _OBJECT_STATEMENTS[learned_as] = statement
        if statement is None:
            return super().get_object()
        organization = current_organization(f"the {self.resource} API")
        sql, roles, attnames, converters, using = statement
        pk = self.model._meta.pk
        try:
            key = pk.get_db_prep_value(pk.get_prep_value(plain), connections[using], prepared=True)
        except (TypeError, ValueError, ValidationError):
            raise Http404 from None  # as DRF's get_object_or_404 for a key of the wrong type
        params = [organization.pk if role == "organization" else key for role in roles]
        rows = _read_rows(self.model, (sql, attnames, converters), params, using)
        if len(rows) != 1:
            # None: Django's get_object_or_404 (its message is the exception handler's); more
            # than one cannot happen by primary key, and is left to the ORM to report.
            if not rows:
                raise Http404(f"No {self.model._meta.object_name} matches the given query.")
            return super().get_object()
        obj = rows[0]
        self.check_object_permissions(self.request, obj)
        return obj

    def _plain_object_read(self):
        """The URL's key when this request's get_object is a plain read by primary key (see
        get_object), else None."""
        request = self.request
        if request.method not in ("GET", "HEAD") or request.query_params:
            return None
        if getattr(self, "swagger_fake_view", False) or not _plain_viewset(self):
            return None
        if self.lookup_field not in ("pk", self.model._meta.pk.name):
            return None
        key = (self.kwargs or {}).get(self.lookup_url_kwarg or self.lookup_field)
        if key is None:
            return None
        role = getattr(request, "organization_role", None)
        if role is None or own_rows_q(role=role, resource=self.resource, user=request.user):
            return None
        return key

    def _learn_object_statement(self, key):
        """(sql, parameter roles, attnames, converters, database) of get_object's query for
        `key`, compiled as DRF's get_object and QuerySet.get() build it; None when it is not a
        statement whose only parameters are the organization's id and the key, reading the
        model's own columns with no converter but their fields' own; _UNLEARNED for a key of
        the wrong type."""
        queryset = self.filter_queryset(self.get_queryset())
        organization = current_organization(f"the {self.resource} API")
        pk = self.model._meta.pk
        try:
            clone = queryset.filter(**{self.lookup_field: key}).order_by()
            using = clone.db
            connection = connections[using]
            key = pk.get_db_prep_value(pk.get_prep_value(key), connection, prepared=True)
        except (TypeError, ValueError, ValidationError):
            return _UNLEARNED  # a bad key: learn from a good one
        clone.query.set_limits(high=MAX_GET_RESULTS)
        if organization.pk == key:
            # The key's and the organization's parameters could not be told apart: this
            # request's, not the view's, so the next plain read learns (a None kept here would
            # turn the learned path off for everyone until the process ends).
            return _UNLEARNED
        learned = _learn_statement(self.model, clone, using)
        if learned is None:
            return None
        sql, params, attnames, converters = learned
        roles = []
        for param in params:
            if _same_value(param, organization.pk):
                roles.append("organization")
            elif _same_value(param, key):
                roles.append("key")
            else:
                return None
        if "organization" not in roles or "key" not in roles:
            return None
        return sql, tuple(roles), attnames, converters, using

    def filter_queryset(self, queryset):
        """DRF's filtering, without the django-filter FilterSet when the query string names none
        of its filters: building and validating one (deep copies of every filter and form
        field) was about a fifth of a detail request's Python CPU and a tenth of a list page's,
        and with none of its parameters it changes nothing. One row by its key with no query
        string skips the other backends too: no search term, and an ordering does not change
        which row a key finds. A filter or search the row fails still makes it 404, as in DRF."""
        params = self.request.query_params
        if not params and (self.lookup_url_kwarg or self.lookup_field) in (self.kwargs or {}):
            return queryset
        filterset = getattr(self, "filterset_class", None)
        for backend in list(self.filter_backends):
            if (
                issubclass(backend, DjangoFilterBackend)
                and filterset is not None
                and not any(_names_filter(param, filterset) for param in params)
            ):
                continue
            queryset = backend().filter_queryset(self.request, queryset, self)
        return queryset

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
