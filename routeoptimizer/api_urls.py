"""URL routes of the versioned API, mounted at /api/v1/."""

from django.urls import path
from drf_spectacular.views import SpectacularAPIView
from rest_framework.routers import SimpleRouter

from accounts.api import AuthTokenView
from routing.api import CustomerViewSet, DriverViewSet, RouteStopViewSet, RouteViewSet

router = SimpleRouter()
router.register("customers", CustomerViewSet)
router.register("drivers", DriverViewSet)
router.register("routes", RouteViewSet)
router.register("route-stops", RouteStopViewSet)

urlpatterns = [
    path("auth/token", AuthTokenView.as_view(), name="api-auth-token"),
    # Public: the schema describes the API, it holds no organization's data.
    path(
        "schema/",
        SpectacularAPIView.as_view(authentication_classes=[], permission_classes=[]),
        name="api-schema",
    ),
    *router.urls,
]
