"""A hostile-input corpus against every admin changelist, filter, form and object URL: NUL
bytes, lone surrogates, over-long strings, invalid ids, deep JSON. Nothing may answer 5xx; the
guarded answers are one line."""

from urllib.parse import quote

import pytest
from django import forms
from django.contrib import admin
from django.contrib.auth.models import Group
from django.test import RequestFactory
from django.urls import NoReverseMatch, reverse

from tenants.models import Role
from tests.factories import GeocodingCacheEntryFactory

pytestmark = pytest.mark.django_db

# Percent-encoded as a client would send them. %ED%A0%80 is a UTF-8-encoded lone surrogate.
QUERY_VALUES = ["a%00b", "%ED%A0%80", "x" * 5000, "not-a-uuid", "1e309"]
JSON_NUL = "%7B%22a%22%3A%20%22%5Cu0000%22%7D"  # {"a": "\u0000"}
JSON_SURROGATE = "%7B%22a%22%3A%20%22%5Cud800%22%7D"  # {"a": "\ud800"}
FORM = "application/x-www-form-urlencoded"
FORM_VALUES = ["%00", "%ED%A0%80", "x" * 200_000, "not-a-uuid", JSON_NUL, "%5B" * 50_000]
BAD_IDS = ["not-a-uuid", "%00", "x" * 3000, "00000000-0000-0000-0000-000000000000"]

MODELS = sorted(admin.site._registry, key=lambda model: model._meta.label)


def url(model, view, *args):
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


@pytest.fixture(params=["owner", "superuser"])
def actor(request, acme, blue, staff, superuser):
    return superuser if request.param == "superuser" else staff["acme"][Role.OWNER]


def assert_no_5xx(response, what):
    assert response.status_code < 500, f"{what}: {response.status_code}"


def filter_parameters(client, model) -> set[str]:
    response = client.get(url(model, "changelist"))
    if response.status_code != 200:
        return set()
    names = {"q", "o", "p", "all", "e", "_to_field", "organization__id__exact"}
    for spec in response.context["cl"].filter_specs:
        names |= set(spec.expected_parameters())
    return names


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m._meta.label)
def test_changelists_and_filters(client, actor, model):
    client.force_login(actor)
    for name in sorted(filter_parameters(client, model)):
        for value in QUERY_VALUES:
            response = client.get(f"{url(model, 'changelist')}?{name}={value}")
            assert_no_5xx(response, f"{model.__name__} ?{name}={value[:20]}")


def nasty_values(field) -> list[str]:
    """Values that pass the site's guard and go for the field's own parsing."""
    if isinstance(field, forms.ModelChoiceField | forms.ModelMultipleChoiceField):
        return ["not-a-uuid", "00000000-0000-0000-0000-000000000000"]
    if isinstance(field, forms.JSONField):
        return [JSON_NUL, JSON_SURROGATE, "%5B" * 50_000]
    if isinstance(field, forms.IntegerField | forms.DecimalField | forms.FloatField):
        return ["99999999999999999999999999", "1e309", "NaN"]
    return []  # text: the every-field posts cover it


def first_visible_row(model, actor):
    request = RequestFactory().get("/")
    request.user = actor
    return admin.site._registry[model].get_queryset(request).first()


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m._meta.label)
def test_forms(client, acme, blue, superuser, model):
    client.force_login(superuser)
    GeocodingCacheEntryFactory()
    Group.objects.create(name="group")
    row = first_visible_row(model, superuser)
    targets = [url(model, "add")] + ([url(model, "change", row.pk)] if row else [])
    for target in targets:
        page = client.get(target)
        if page.status_code != 200 or "adminform" not in (page.context or {}):
            continue
        fields = page.context["adminform"].form.fields
        for value in FORM_VALUES:
            body = "&".join(f"{name}={value}" for name in fields)
            response = client.post(target, body, content_type=FORM)
            assert_no_5xx(response, f"{model.__name__} every field {value[:20]}")
        if target != targets[-1]:
            continue  # one field at a time on one form per model: the change form if any
        for name, field in fields.items():
            for value in nasty_values(field):
                response = client.post(target, f"{name}={value}", content_type=FORM)
                assert_no_5xx(response, f"{model.__name__} {name}={value[:20]}")


@pytest.mark.parametrize("value", [JSON_NUL, JSON_SURROGATE, "%5B" * 50_000, "%5B%5D"])
def test_hostile_json_in_an_otherwise_valid_organization_form(client, acme, superuser, value):
    client.force_login(superuser)
    target = reverse("admin:tenants_organization_change", args=[acme.organization.pk])
    body = (
        "name=Acme&slug=acme&timezone=UTC&plan_tier=starter&subscription_status=trial"
        "&default_map_provider=openstreetmap&is_active=on"
        "&memberships-TOTAL_FORMS=0&memberships-INITIAL_FORMS=0"
        f"&features_enabled={value}"
    )

    response = client.post(target, body, content_type=FORM)

    assert_no_5xx(response, value[:20])


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m._meta.label)
def test_object_urls_with_bad_ids(client, actor, model):
    client.force_login(actor)
    for view in ("change", "delete", "history"):
        for bad in BAD_IDS:
            try:
                target = url(model, view, "PLACEHOLDER").replace(
                    "PLACEHOLDER", quote(bad, safe="%")
                )
            except NoReverseMatch:
                continue
            assert_no_5xx(client.get(target), f"{model.__name__} {view} {bad[:20]}")
            assert_no_5xx(client.post(target, {"post": "yes"}), f"{model.__name__} {view}")


def test_nul_in_a_filter_is_one_line_400(client, acme, staff):
    client.force_login(staff["acme"][Role.OWNER])

    response = client.get(reverse("admin:routing_customer_changelist") + "?service_day=%00")

    assert response.status_code == 400
    assert response.content.decode().count("\n") == 1
    assert "NUL" in response.content.decode()


def test_a_non_uuid_organization_filter_is_not_a_500(client, acme, staff):
    client.force_login(staff["acme"][Role.OWNER])

    for path in ("accounts_user", "routing_customer"):
        response = client.get(reverse(f"admin:{path}_changelist") + "?organization=nope")
        assert response.status_code < 500
