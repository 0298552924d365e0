"""The `api_calls` meter: API requests counted in memory, written to usage_tracking as one row
per organization and hour.

Per hour, not per request and not per day: a row per request would make usage_tracking the
largest table of the database and add a write to every request; a day is too coarse to see when
an integration went wrong (a loop at 3 am), while an hour gives 24 rows per organization and
day. The row's `recorded_at` is the hour's start (UTC); billing.0009's partial unique index
(organization_id, metric, recorded_at) WHERE metric = 'api_calls' makes it the key of an
upsert, so every worker process adds to the same row.

What counts: every API request of an organization's member that its role and its subscription
allow (billing.access), whatever its answer (invalid input included); a request refused by role
or status is not a call. What a request pays: `count_api_call()` is a dictionary increment under
a lock (the request's organization is already loaded: no query). `ApiCallMeterMiddleware`
writes the counts after the response, outside the request's transaction (a request that ends
in an error rolls its transaction back, its call still counts), at most every
ROUTEOPTIMIZER_API_CALLS_FLUSH_SECONDS per process (default 60; 0: after every request), one
upsert per organization counted since, each in its own transaction under that organization's
claim. Counts not written yet are lost if the process
dies (at most that interval's); `flush()` also runs at interpreter exit.
"""

from __future__ import annotations

import atexit
import contextlib
import datetime
import threading
import time
import uuid

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from tenants.context import organization_context

_UPSERT = """
INSERT INTO usage_tracking (id, organization_id, metric, quantity, metadata, recorded_at)
VALUES (%s, %s, 'api_calls', %s, '{}'::jsonb, %s)
ON CONFLICT (organization_id, metric, recorded_at) WHERE metric = 'api_calls'
DO UPDATE SET quantity = usage_tracking.quantity + EXCLUDED.quantity
"""

_lock = threading.Lock()
# (organization id, hour) -> calls not written yet; the organization objects, for the claim.
_pending: dict[tuple, int] = {}
_organizations: dict = {}
_last_flush = time.monotonic()


def _interval() -> float:
    return float(getattr(settings, "ROUTEOPTIMIZER_API_CALLS_FLUSH_SECONDS", 60))


def hour_of(moment: datetime.datetime) -> datetime.datetime:
    return moment.astimezone(datetime.UTC).replace(minute=0, second=0, microsecond=0)


def count_api_call(organization, *, now: datetime.datetime | None = None) -> None:
    """Count one API request of `organization` (no query)."""
    from billing.limits import enabled

    if organization is None or not enabled():
        return
    key = (organization.pk, hour_of(now or timezone.now()))
    with _lock:
        _pending[key] = _pending.get(key, 0) + 1
        _organizations[organization.pk] = organization


def flush_due() -> bool:
    return bool(_pending) and time.monotonic() - _last_flush >= _interval()


def flush() -> int:
    """Write every pending count (one upsert per organization and hour); returns how many rows.
    Outside any transaction: each organization's upserts are a transaction of their own."""
    global _last_flush
    with _lock:
        pending = dict(_pending)
        organizations = dict(_organizations)
        _pending.clear()
        _organizations.clear()
        _last_flush = time.monotonic()
    by_organization: dict = {}
    for (organization_id, hour), calls in pending.items():
        by_organization.setdefault(organization_id, []).append((hour, calls))
    written = 0
    for organization_id, hours in by_organization.items():
        try:
            with (
                organization_context(organizations[organization_id]),
                transaction.atomic(),
                connection.cursor() as cursor,
            ):
                for hour, calls in hours:
                    cursor.execute(_UPSERT, [uuid.uuid4(), organization_id, calls, hour])
                    written += 1
        except Exception:
            # Put them back for the next flush rather than lose them (a deleted organization's
            # foreign key fails every time: those are dropped after one retry).
            _restore(organization_id, organizations[organization_id], hours)
            raise
    return written


def _restore(organization_id, organization, hours) -> None:
    with _lock:
        if getattr(organization, "_meter_failed", False):
            return
        organization._meter_failed = True
        for hour, calls in hours:
            key = (organization_id, hour)
            _pending[key] = _pending.get(key, 0) + calls
        _organizations[organization_id] = organization


def discard() -> None:
    """Forget counts not written, and start the interval again (the tests' fresh start)."""
    global _last_flush
    with _lock:
        _pending.clear()
        _organizations.clear()
        _last_flush = time.monotonic()


class ApiCallMeterMiddleware:
    """After the response, outside the request's transaction: write the counts when due."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if flush_due():
            try:
                flush()
            except Exception:  # the meter never fails a request that was answered
                import logging

                logging.getLogger(__name__).exception("could not write api_calls usage")
        return response


@atexit.register
def _flush_at_exit() -> None:
    if not _pending:
        return
    with contextlib.suppress(Exception):  # nothing to tell at interpreter exit
        flush()
