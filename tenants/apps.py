from django.apps import AppConfig


class TenantsConfig(AppConfig):
    name = "tenants"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from django.db.backends.signals import connection_created

        from tenants import checks  # noqa: F401  (registers the system checks)
        from tenants.connection import install

        # Every connection, of every thread, puts the current organization on its transactions.
        connection_created.connect(install, dispatch_uid="tenants.connection.install")
