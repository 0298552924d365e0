"""URL routes: the admin, the health check and the API."""

from django.contrib import admin
from django.urls import path

from routeoptimizer import views

urlpatterns = [
    path("health", views.health, name="health"),
    path("admin/", admin.site.urls),
]
