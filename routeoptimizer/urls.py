"""URL routes: the admin, the health check and the API."""

from django.contrib import admin
from django.urls import include, path, re_path

from routeoptimizer import views
from routing.legacy_api import LegacyCustomerView
from tenants.views import invitation_accept

urlpatterns = [
    path("health", views.health, name="health"),
    path("admin/", admin.site.urls),
    # The link of an invitation email (tenants.services.organization_invite_member).
    path("invitations/<str:token>/", invitation_accept, name="invitation-accept"),
    path("api/v1/", include("routeoptimizer.api_urls")),
    # The old clients' contract, unversioned (routing.legacy_api).
    re_path(r"^api/customers/?$", LegacyCustomerView.as_view(), name="legacy-customers"),
    re_path(
        r"^api/customers/(?P<customer_id>[^/]+)/?$",
        LegacyCustomerView.as_view(),
        name="legacy-customer",
    ),
]

# One JSON line for errors under /api/ that no DRF view answered (routeoptimizer.views).
handler400 = "routeoptimizer.views.bad_request"
handler403 = "routeoptimizer.views.permission_denied"
handler404 = "routeoptimizer.views.page_not_found"
handler500 = "routeoptimizer.views.server_error"
