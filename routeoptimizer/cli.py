"""Runs a management command and turns errors a user can cause into one clear line.

Database errors (an unreachable server, a role that may not do what the command needs, a lock
a long transaction holds) are the operator's to fix, not bugs: they print one line naming the
problem and the fix, and exit non-zero. `--traceback` shows the full traceback instead.
"""

import sys

from routeoptimizer.database import DatabaseConfigurationError

EXIT_FAILED = 1
EXIT_CANNOT_RUN = 2


def run(argv: list[str]) -> int:
    from django.core.management import execute_from_command_line

    try:
        execute_from_command_line(argv)
    except DatabaseConfigurationError as error:
        return _fail(str(error), EXIT_CANNOT_RUN)
    except Exception as error:
        message, code = _operator_error(error)
        if message is None or "--traceback" in argv:
            raise
        return _fail(message, code)
    return 0


def _operator_error(error: Exception) -> tuple[str | None, int]:
    from django.db import DatabaseError, OperationalError

    from billing.legacy import BillingMoveIncomplete
    from routing.operations import LegacySchemaMismatch
    from tenants.conversion.operations import LockNotAcquired

    if isinstance(error, LockNotAcquired | LegacySchemaMismatch | BillingMoveIncomplete):
        return str(error), EXIT_FAILED
    from tenants.conversion.diagnosis import describe, is_connection_failure

    # "cannot connect" only when no connection was ever made: the connection is closed by the
    # time the error gets here (the owner's is closed on the way out), so that says nothing.
    if isinstance(error, OperationalError) and is_connection_failure(error):
        return connection_failure_message(error), EXIT_CANNOT_RUN
    if isinstance(error, DatabaseError):
        if isinstance(error, OperationalError):  # a timeout, deadlock, full disk, lost session
            return describe(error, "the command") + " (--traceback shows the details)", EXIT_FAILED
        return (
            f"the database refused the command ({_one_line(error)}); fix the cause and run it "
            f"again (steps that completed are kept and resumed; --traceback shows the details)",
            EXIT_FAILED,
        )
    return None, 0


def connection_failure_message(error: Exception) -> str:
    """One line for a database that cannot be reached, naming where we tried and the fix."""
    from django.db import connection

    settings_dict = connection.settings_dict
    host = settings_dict.get("HOST") or settings_dict.get("OPTIONS", {}).get("host") or "localhost"
    where = f"{host}:{settings_dict.get('PORT') or 5432}"
    return (
        f"cannot connect to PostgreSQL database {settings_dict.get('NAME')!r} at {where} as "
        f"{settings_dict.get('USER')!r} ({_one_line(error)}): check DATABASE_URL (and "
        f"MIGRATION_DATABASE_URL for maintenance commands), or unset them to use the embedded "
        f"PostgreSQL"
    )


def _one_line(error: Exception) -> str:
    return " ".join(str(error).split()) or error.__class__.__name__


def _fail(message: str, code: int) -> int:
    sys.stderr.write(f"error: {message}\n")
    return code
