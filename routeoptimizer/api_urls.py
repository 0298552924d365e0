"""URL routes of the versioned API, mounted at /api/v1/."""

from django.urls import path
from drf_spectacular.views import SpectacularAPIView
from rest_framework.renderers import JSONRenderer
from rest_framework.routers import SimpleRouter

from accounts.api import AuthTokenView
from billing.api import BillingWebhookView, UsageView
from routing.api import CustomerViewSet, DriverViewSet, RouteStopViewSet, RouteViewSet


class SchemaView(SpectacularAPIView):
    """The OpenAPI schema (YAML, or JSON with ?format=json), public: it describes the API and
    holds no organization's data. Its errors (an unknown ?format, an Accept it cannot satisfy)
    are the API's one JSON line, not YAML."""

    authentication_classes = []
    permission_classes = []

    def finalize_response(self, request, response, *args, **kwargs):
        if response.status_code >= 400:
            request.accepted_renderer = JSONRenderer()
            request.accepted_media_type = "application/json"
        return super().finalize_response(request, response, *args, **kwargs)


router = SimpleRouter()
router.register("customers", CustomerViewSet)
router.register("drivers", DriverViewSet)
router.register("routes", RouteViewSet)
router.register("route-stops", RouteStopViewSet)

urlpatterns = [
    path("auth/token", AuthTokenView.as_view(), name="api-auth-token"),
    path("schema/", SchemaView.as_view(), name="api-schema"),
    path("billing/webhook", BillingWebhookView.as_view(), name="api-billing-webhook"),
    path("usage", UsageView.as_view(), name="api-usage"),
    *router.urls,
]
