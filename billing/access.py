"""The subscription status check of every API request, and its api_calls count.

`check_request(request, view, organization)` runs once per request, from
tenants.api.OrganizationContextMixin right after authentication bound the request to its
organization: it reads the columns of that already-loaded organization (billing.plans.check_access:
no query) and counts the call in memory (billing.meter: no query). A refusal is one line, 402
(payment needed: past due, ended trial, canceled) or 403 (suspended by the platform).
"""

from __future__ import annotations

from rest_framework import exceptions

from billing import meter
from billing.limits import enabled
from billing.plans import AccessRefused, check_access

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class SubscriptionRefused(exceptions.APIException):
    default_code = "subscription"

    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.status_code = status


def check_request(request, view, organization) -> None:
    """`view.open_whatever_the_subscription`: the methods a closed organization's members keep
    (revoking one's own token: cutting off a leaked credential must never need a payment)."""
    if not enabled() or request.method in getattr(view, "open_whatever_the_subscription", ()):
        return
    write = request.method not in READ_METHODS and getattr(view, "writes_need_subscription", True)
    try:
        check_access(organization, write=write)
    except AccessRefused as refused:
        raise SubscriptionRefused(str(refused), refused.status) from None
    meter.count_api_call(organization)
