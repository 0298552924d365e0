"""The admin site: Django's, with every admin view guarded against hostile input.

Every value a request brings to an admin page (query string, form fields, their names) is
checked before the view runs: a NUL byte, a lone surrogate or an over-long value is one line,
400, instead of reaching PostgreSQL (which refuses NUL in text: a 500). What the database still
refuses (a value that became unique meanwhile, a value it cannot store) is a 400 or 409 with
one line too; the view's writes are rolled back first.
"""

from __future__ import annotations

import json
from functools import wraps

from django import forms
from django.contrib import admin
from django.contrib.admin.apps import AdminConfig as DjangoAdminConfig
from django.contrib.admin.widgets import ForeignKeyRawIdWidget
from django.db import DataError, IntegrityError, models, transaction
from django.http import HttpResponse

from billing.limits import PlanLimitReached

# Longer than any column the admin writes but text (which forms cap themselves), shorter than
# anything a search or a filter needs.
MAX_QUERY_VALUE = 1000
MAX_FORM_VALUE = 100_000


def hostile_input(request) -> str | None:
    """What is wrong with the request's parameters, in one line; None when nothing is."""
    for where, values, limit in (
        ("query string", request.GET, MAX_QUERY_VALUE),
        ("form", request.POST if request.method == "POST" else {}, MAX_FORM_VALUE),
    ):
        for name in values:
            for value in [name, *values.getlist(name)]:
                if not isinstance(value, str):
                    continue
                if "\x00" in value:
                    return f"a value in the {where} holds a NUL byte: remove it"
                if any("\ud800" <= char <= "\udfff" for char in value):
                    return f"a value in the {where} is not valid text (a lone surrogate)"
                if len(value) > limit:
                    return f"a value in the {where} is longer than {limit} characters: shorten it"
    return None


MAX_JSON_DEPTH = 32


def _json_problem(value, depth=0) -> str | None:
    if depth > MAX_JSON_DEPTH:
        return f"nested deeper than {MAX_JSON_DEPTH} levels"
    if isinstance(value, str):
        if "\x00" in value:
            return "holds a NUL character (\\u0000), which PostgreSQL's jsonb refuses"
        if any("\ud800" <= char <= "\udfff" for char in value):
            return "holds a lone surrogate (\\ud800-\\udfff), which is not valid text"
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            problem = _json_problem(key, depth + 1) or _json_problem(item, depth + 1)
            if problem:
                return problem
    elif isinstance(value, list):
        for item in value:
            problem = _json_problem(item, depth + 1)
            if problem:
                return problem
    return None


class SafeJSONField(forms.JSONField):
    """Django's JSON form field, refusing with one form error what would be a 500: nesting
    deep enough to exhaust the parser's recursion, and strings jsonb cannot store."""

    def to_python(self, value):
        try:
            converted = super().to_python(value)
        except RecursionError:
            raise forms.ValidationError(
                f"nested deeper than {MAX_JSON_DEPTH} levels", code="invalid"
            ) from None
        problem = _json_problem(converted)
        if problem:
            raise forms.ValidationError(f"this JSON {problem}", code="invalid")
        return converted

    def bound_data(self, data, initial):
        # Shown again as typed when refused: re-encoding a lone surrogate would fail the page.
        try:
            value = super().bound_data(data, initial)
        except RecursionError:
            return forms.fields.InvalidJSONInput(data)
        if not isinstance(value, forms.fields.InvalidJSONInput) and _json_problem(value):
            return forms.fields.InvalidJSONInput(data)
        return value

    def has_changed(self, initial, data):
        try:
            return super().has_changed(initial, data)
        except (RecursionError, json.JSONDecodeError):
            return True


class GuardedRawIdWidget(ForeignKeyRawIdWidget):
    """The raw-id widget shows the label of the row it holds through the related model's
    scoped manager, which needs a current organization: without one (a superuser's add page
    before an organization is picked) it shows no label rather than failing."""

    def label_and_url_for_value(self, value):
        from tenants.context import OrganizationNotSet

        try:
            return super().label_and_url_for_value(value)
        except OrganizationNotSet:
            return "", ""


# formfield_overrides of every admin of this project.
SAFE_FORMFIELDS = {models.JSONField: {"form_class": SafeJSONField}}


def _one_line(message: str, status: int) -> HttpResponse:
    return HttpResponse(f"{message}\n", status=status, content_type="text/plain; charset=utf-8")


class OrganizationAdminSite(admin.AdminSite):
    def admin_view(self, view, cacheable=False):
        inner = super().admin_view(view, cacheable)

        @wraps(view)
        def guarded(request, *args, **kwargs):
            problem = hostile_input(request)
            if problem:
                return _one_line(problem, 400)
            try:
                # A savepoint: what the view wrote is undone before the one-line answer.
                with transaction.atomic():
                    response = inner(request, *args, **kwargs)
                    if hasattr(response, "render") and not response.is_rendered:
                        response.render()
                    return response
            except PlanLimitReached as refused:  # a race for the last slot lost at the save
                return _one_line(f"{refused}: nothing was saved", 402)
            except IntegrityError:
                return _one_line(
                    "this change conflicts with data saved meanwhile (a value that must be "
                    "unique is taken, or a row it needs is gone): nothing was saved; reload "
                    "and try again",
                    409,
                )
            except DataError:
                return _one_line(
                    "a value in the request cannot be stored (wrong type, out of range or not "
                    "valid text): nothing was saved; correct it and try again",
                    400,
                )

        return guarded


class AdminConfig(DjangoAdminConfig):
    """django.contrib.admin with OrganizationAdminSite as `admin.site`."""

    default_site = "tenants.admin_site.OrganizationAdminSite"


class PlatformOnlyAdmin:
    """For the admin of a platform table (the geocoding cache, groups): superusers only, every
    view and the index entry alike."""

    def has_module_permission(self, request):
        return request.user.is_superuser

    def has_view_permission(self, request, obj=None):
        return request.user.is_superuser

    def has_add_permission(self, request):
        return request.user.is_superuser

    def has_change_permission(self, request, obj=None):
        return request.user.is_superuser

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser
