from django.apps import AppConfig


class TenantsConfig(AppConfig):
    name = "tenants"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from django.db.backends.signals import connection_created
        from django.db.models.signals import post_migrate

        from tenants import checks  # noqa: F401  (registers the system checks)
        from tenants.connection import install
        from tenants.conversion import diagnosis  # noqa: F401  (remembers whether a connection was made)
        from tenants.verification import after_migrate

        # Every connection, of every thread, puts the verified claim on its transactions.
        connection_created.connect(install, dispatch_uid="tenants.connection.install")
        # Every migrate provisions the claim key and re-applies the application role's limits.
        post_migrate.connect(after_migrate, sender=self, dispatch_uid="tenants.after_migrate")
