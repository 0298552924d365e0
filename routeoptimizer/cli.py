"""Runs a management command and turns database errors a user can cause into one clear line."""

import sys

from routeoptimizer.database import DatabaseConfigurationError

EXIT_CANNOT_RUN = 2


def run(argv: list[str]) -> int:
    from django.core.management import execute_from_command_line

    try:
        execute_from_command_line(argv)
    except DatabaseConfigurationError as error:
        return _fail(str(error))
    except Exception as error:
        from django.db import OperationalError

        if isinstance(error, OperationalError):
            return _fail(connection_failure_message(error))
        raise
    return 0


def connection_failure_message(error: Exception) -> str:
    """One line for a database that cannot be reached, naming where we tried and the fix."""
    from django.db import connection

    settings_dict = connection.settings_dict
    where = f"{settings_dict.get('HOST') or 'localhost'}:{settings_dict.get('PORT') or 5432}"
    reason = " ".join(str(error).split()) or error.__class__.__name__
    return (
        f"cannot connect to PostgreSQL database {settings_dict.get('NAME')!r} at {where} "
        f"({reason}): "
        f"check DATABASE_URL, or unset it to use the embedded PostgreSQL"
    )


def _fail(message: str) -> int:
    sys.stderr.write(f"error: {message}\n")
    return EXIT_CANNOT_RUN
