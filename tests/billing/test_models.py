"""Billing tables: the invariants PostgreSQL enforces for them (plan M010-M014)."""

import datetime
from decimal import Decimal

import pytest
from django.db import DataError, IntegrityError, connection, transaction
from django.db.models import ProtectedError

from billing.models import CustomerServiceAgreement, PaymentMethod, UsageMetric, UsageRecord
from billing.services import dangerously_purge_organization_usage
from tenants.claims import EVERYWHERE, platform_access
from tenants.context import organization_context
from tests.factories import (
    CustomerFactory,
    CustomerServiceAgreementFactory,
    OrganizationFactory,
    OrganizationSubscriptionFactory,
    PaymentMethodFactory,
    ServicePlanFactory,
    UsageRecordFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def organization():
    return OrganizationFactory()


@pytest.fixture(autouse=True)
def in_organization(organization):
    """Each test works inside one organization, as the application does (tenant-owned rows are
    read and written in their organization's context); factories default to it."""
    with organization_context(organization):
        yield organization


def violates(constraint: str):
    """pytest.raises for an IntegrityError naming `constraint`, inside its own savepoint."""

    class _Violation:
        def __enter__(self):
            self.raises = pytest.raises(IntegrityError, match=constraint)
            self.raises.__enter__()
            self.atomic = transaction.atomic()
            self.atomic.__enter__()

        def __exit__(self, *exc):
            self.atomic.__exit__(*exc)
            return self.raises.__exit__(*exc)

    return _Violation()


def immediate_constraints():
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")


# --- customer_service_agreements ---------------------------------------------------------------


def test_second_current_agreement_for_a_customer_is_rejected():
    current = CustomerServiceAgreementFactory()

    with violates("uq_agreements_one_current_per_customer"):
        CustomerServiceAgreementFactory(
            customer=current.customer, service_plan=current.service_plan
        )


def test_ended_agreements_are_history_beside_the_current_one():
    current = CustomerServiceAgreementFactory(effective_date=datetime.date(2025, 6, 1))
    for year in (2022, 2023, 2024):
        CustomerServiceAgreementFactory(
            customer=current.customer,
            service_plan=current.service_plan,
            effective_date=datetime.date(year, 1, 1),
            end_date=datetime.date(year, 12, 31),
        )

    agreements = CustomerServiceAgreement.objects.filter(customer=current.customer)
    assert agreements.count() == 4
    assert [a.pk for a in agreements if a.is_current] == [current.pk]


def test_ending_the_current_agreement_lets_a_new_one_start():
    old = CustomerServiceAgreementFactory(effective_date=datetime.date(2024, 1, 1))
    old.end_date = datetime.date(2024, 12, 31)
    old.save()

    new = CustomerServiceAgreementFactory(
        customer=old.customer,
        service_plan=None,
        custom_rate=Decimal("140.00"),
        effective_date=datetime.date(2025, 1, 1),
    )

    assert CustomerServiceAgreement.objects.get(customer=old.customer, end_date=None) == new


def test_current_agreements_of_different_customers_do_not_collide():
    first = CustomerServiceAgreementFactory()
    CustomerServiceAgreementFactory(
        organization=first.organization,
        service_plan=first.service_plan,
        customer=CustomerFactory(organization=first.organization),
    )

    assert CustomerServiceAgreement.objects.filter(end_date=None).count() == 2


def test_agreement_cannot_end_before_it_starts():
    with violates("agreements_end_after_effective"):
        CustomerServiceAgreementFactory(
            effective_date=datetime.date(2025, 3, 1), end_date=datetime.date(2025, 2, 28)
        )


def test_agreement_may_end_on_the_day_it_starts():
    agreement = CustomerServiceAgreementFactory(
        effective_date=datetime.date(2025, 3, 1), end_date=datetime.date(2025, 3, 1)
    )
    assert not agreement.is_current


def test_deleting_a_customer_in_sql_cascades_to_its_billing_rows():
    """The old application deletes customers with plain SQL: it must not fail on billing rows."""
    agreement = CustomerServiceAgreementFactory()
    PaymentMethodFactory(customer=agreement.customer, organization=agreement.organization)

    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM customers WHERE id = %s", [agreement.customer_id])
    immediate_constraints()

    assert not CustomerServiceAgreement.objects.filter(customer_id=agreement.customer_id).exists()
    assert not PaymentMethod.objects.filter(customer_id=agreement.customer_id).exists()


def test_agreement_for_a_customer_that_does_not_exist_is_rejected():
    customer = CustomerFactory()
    customer_id, organization_id = customer.pk, customer.organization_id
    customer.delete()

    with violates("fk_customer_service_agreements_customer"), connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO customer_service_agreements (organization_id, customer_id, "
            "effective_date) VALUES (%s, %s, '2025-01-01')",
            [organization_id, customer_id],
        )
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")


def test_plan_in_use_cannot_be_deleted():
    agreement = CustomerServiceAgreementFactory()

    with pytest.raises(ProtectedError):
        agreement.service_plan.delete()


# --- service_plans -----------------------------------------------------------------------------


def test_plan_billing_frequency_must_be_one_the_application_knows():
    with violates("service_plans_billing_frequency_valid"):
        ServicePlanFactory(billing_frequency="fortnightly")


def test_plan_names_are_unique_per_organization_and_among_global_templates():
    plan = ServicePlanFactory(name="Weekly")
    ServicePlanFactory(name="Weekly", organization=OrganizationFactory())
    ServicePlanFactory(name="Weekly", organization=None)  # a global template

    with violates("uq_service_plans_org_name"):
        ServicePlanFactory(name="Weekly", organization=plan.organization)
    with violates("uq_service_plans_org_name"):
        ServicePlanFactory(name="Weekly", organization=None)


# --- payment_methods ---------------------------------------------------------------------------


def test_second_active_primary_payment_method_is_rejected():
    primary = PaymentMethodFactory()

    with violates("uq_payment_methods_one_active_primary"):
        PaymentMethodFactory(customer=primary.customer, organization=primary.organization)


def test_inactive_and_secondary_payment_methods_are_allowed_beside_the_primary():
    primary = PaymentMethodFactory()
    customer, organization = primary.customer, primary.organization
    PaymentMethodFactory(customer=customer, organization=organization, is_primary=False)
    PaymentMethodFactory(customer=customer, organization=organization, is_active=False)
    PaymentMethodFactory(
        customer=customer, organization=organization, is_primary=False, is_active=False
    )

    assert PaymentMethod.objects.filter(customer=customer).count() == 4
    assert PaymentMethod.objects.get(customer=customer, is_primary=True, is_active=True) == primary


def test_retiring_the_primary_lets_another_become_primary():
    old = PaymentMethodFactory()
    old.is_active = False
    old.save()

    new = PaymentMethodFactory(customer=old.customer, organization=old.organization)

    assert PaymentMethod.objects.get(customer=old.customer, is_active=True) == new


def test_payment_type_keeps_legacy_free_text_and_may_be_empty():
    """No CHECK on payment_type: M001 moves legacy spellings here verbatim."""
    legacy = PaymentMethodFactory(payment_type="Visa card")
    ids_only = PaymentMethodFactory(payment_type=None, is_primary=False)

    legacy.refresh_from_db()
    ids_only.refresh_from_db()
    assert (legacy.payment_type, ids_only.payment_type) == ("Visa card", None)


def test_last_four_cannot_hold_a_card_number():
    customer = CustomerFactory()

    with pytest.raises(DataError, match="too long"), transaction.atomic():
        connection.cursor().execute(
            "INSERT INTO payment_methods (organization_id, customer_id, last_four) "
            "VALUES (%s, %s, '4242424242424242')",
            [customer.organization_id, customer.pk],
        )


# --- organization_subscriptions ----------------------------------------------------------------


def test_one_live_subscription_per_organization_canceled_ones_are_history():
    live = OrganizationSubscriptionFactory()
    OrganizationSubscriptionFactory(
        organization=live.organization,
        status="canceled",
        canceled_at=live.current_period_start,
    )

    with violates("uq_org_subscriptions_one_live"):
        OrganizationSubscriptionFactory(organization=live.organization, status="trialing")


@pytest.mark.parametrize(
    ("fields", "constraint"),
    [
        ({"plan_tier": "platinum"}, "org_subscriptions_plan_tier_valid"),
        ({"status": "trial"}, "org_subscriptions_status_valid"),
        ({"monthly_price": Decimal("-1.00")}, "org_subscriptions_price_not_negative"),
        ({"status": "canceled"}, "org_subscriptions_canceled_has_date"),
    ],
)
def test_subscription_values_the_application_owns_are_checked(fields, constraint):
    with violates(constraint):
        OrganizationSubscriptionFactory(**fields)


def test_stripe_subscription_id_is_unique():
    first = OrganizationSubscriptionFactory()

    with violates("uq_org_subscriptions_stripe_id"):
        OrganizationSubscriptionFactory(stripe_subscription_id=first.stripe_subscription_id)


# --- usage_tracking ----------------------------------------------------------------------------


def test_usage_is_recorded_with_metadata():
    record = UsageRecordFactory(
        metric="geocoding_requests", quantity=3, metadata={"provider": "osm"}
    )

    record.refresh_from_db()
    assert (record.metric, record.quantity, record.metadata) == (
        "geocoding_requests",
        3,
        {"provider": "osm"},
    )


def test_usage_cannot_be_updated():
    record = UsageRecordFactory(metric=UsageMetric.CUSTOMERS_CREATED, quantity=5)

    with violates("append-only: UPDATE"):
        UsageRecord.objects.filter(pk=record.pk).update(quantity=500)
    with violates("append-only: UPDATE"), connection.cursor() as cursor:
        cursor.execute("UPDATE usage_tracking SET metadata = '{}' WHERE id = %s", [record.pk])

    record.refresh_from_db()
    assert record.quantity == 5


def test_api_calls_counters_may_only_grow():
    """billing.0009: the api_calls row of an hour is a counter (billing.meter); its quantity may
    grow, and nothing else about it may change."""
    record = UsageRecordFactory(metric=UsageMetric.API_CALLS, quantity=5)

    UsageRecord.objects.filter(pk=record.pk).update(quantity=7)
    for change in ("quantity = 6", "metadata = '{\"x\": 1}'", "recorded_at = now()"):
        with violates("append-only: UPDATE"), connection.cursor() as cursor:
            cursor.execute(f"UPDATE usage_tracking SET {change} WHERE id = %s", [record.pk])
    record.refresh_from_db()
    assert record.quantity == 7


def test_usage_cannot_be_deleted():
    record = UsageRecordFactory()

    with violates("append-only: DELETE"):
        record.delete()
    with violates("append-only: DELETE"), connection.cursor() as cursor:
        cursor.execute("DELETE FROM usage_tracking")

    assert UsageRecord.objects.filter(pk=record.pk).exists()


def test_correction_is_a_new_negative_record():
    record = UsageRecordFactory(quantity=10)
    # Corrections are the platform's (billing.0011), inside the organization here.
    with organization_context(record.organization), platform_access(EVERYWHERE):
        UsageRecordFactory(organization=record.organization, quantity=-3)

    with violates("usage_tracking_quantity_not_zero"):
        UsageRecordFactory(organization=record.organization, quantity=0)
    total = sum(
        UsageRecord.objects.filter(organization=record.organization).values_list(
            "quantity", flat=True
        )
    )
    assert total == 7


def test_unknown_metric_is_rejected():
    with violates("usage_tracking_metric_valid"):
        UsageRecordFactory(metric="api_call")


def test_organization_with_usage_cannot_be_deleted_by_accident():
    record = UsageRecordFactory()

    with pytest.raises(ProtectedError):
        record.organization.delete()
    # Nor in SQL: the foreign key is NO ACTION (and the trigger would refuse a cascade). Deleting
    # an organization is the platform's: outside any organization.
    with organization_context(None), violates("usage_tracking"), connection.cursor() as cursor:
        cursor.execute("DELETE FROM organizations WHERE id = %s", [record.organization_id])
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")


def test_purge_removes_one_organizations_usage_then_the_organization_can_go(organization):
    UsageRecordFactory(quantity=2)
    UsageRecordFactory()
    other_organization = OrganizationFactory()
    other = UsageRecordFactory(organization=other_organization)

    assert dangerously_purge_organization_usage(organization=organization) == 2

    assert not UsageRecord.objects.filter(organization=organization).exists()
    organization.delete()
    with organization_context(other_organization):
        assert list(UsageRecord.objects.all()) == [other]
        # The permission ended with the purge: deletes are refused again.
        with violates("append-only: DELETE"):
            other.delete()


def test_purge_permission_never_allows_update():
    record = UsageRecordFactory(metric=UsageMetric.GEOCODING_REQUESTS)

    with violates("append-only: UPDATE"), connection.cursor() as cursor:
        cursor.execute("SELECT set_config('billing.allow_usage_purge', 'on', true)")
        cursor.execute("UPDATE usage_tracking SET quantity = 9 WHERE id = %s", [record.pk])


def test_usage_index_serves_per_organization_metric_queries():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexdef FROM pg_indexes WHERE indexname = 'idx_usage_org_metric_recorded'"
        )
        (definition,) = cursor.fetchone()
    assert "(organization_id, metric, recorded_at)" in definition
