from django.apps import AppConfig


class GeocodingConfig(AppConfig):
    name = "geocoding"
    default_auto_field = "django.db.models.BigAutoField"
