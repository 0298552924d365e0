"""What really failed: one line for a database error, told apart from a connection that never was.

A connection that could not be made (wrong host, password, database) is exit 2, "cannot
connect". Everything else happened on a live connection and says what PostgreSQL said: a
statement cancelled (statement_timeout, a cancel request), a lock wait given up (and who held
it), a deadlock, a full disk, a constraint, the session ended by the server; exit 1. Errors
carry their SQLSTATE; a connection lost half-way has none but happens after a connection was
made, which `connection_was_made()` remembers.
"""

from __future__ import annotations

from django.db.backends.signals import connection_created

_made = False


def _remember(sender, connection, **kwargs):
    global _made
    _made = True


connection_created.connect(_remember, dispatch_uid="tenants.conversion.diagnosis")


def connection_was_made() -> bool:
    return _made


def sqlstate(error: BaseException) -> str | None:
    for candidate in (error, error.__cause__, error.__context__):
        state = getattr(candidate, "sqlstate", None)
        if state:
            return state
    return None


def is_connection_failure(error: BaseException) -> bool:
    """No SQLSTATE and no connection ever made: the server was never reached (exit 2)."""
    return sqlstate(error) is None and not connection_was_made()


def _one_line(error: BaseException) -> str:
    """PostgreSQL's primary message (not its LINE/DETAIL/HINT lines)."""
    cause = error.__cause__ or error
    lines = str(cause).strip().splitlines()
    return " ".join(lines[0].split()) if lines else cause.__class__.__name__


_RESUME = "run it again once fixed: completed steps are kept and it resumes"


def describe(error: BaseException, what: str = "the command", blockers: str = "") -> str:
    """One line naming what failed on a live connection, and the fix."""
    state = sqlstate(error) or ""
    detail = _one_line(error)
    blocked = f"; {blockers}" if blockers else ""
    if state == "57014":
        return (
            f"{what} failed: a statement was cancelled by statement_timeout or a cancel request "
            f"({detail}); {what} sets its own statement_timeout = 0, so the cancel came from "
            f"outside (pg_cancel_backend, a pooler's timeout); {_RESUME}"
        )
    if state == "55P03":
        return (
            f"{what} gave up waiting for a lock ({detail}){blocked}; end that transaction "
            f"(SELECT pg_terminate_backend(<pid>)) or let it finish, and {_RESUME}"
        )
    if state == "40P01":
        return (
            f"{what} was chosen as the victim of a deadlock ({detail}): another session locked "
            f"the same tables in the other order; {_RESUME}"
        )
    if state.startswith("53"):
        return (
            f"{what} failed: the server is out of resources ({detail}): free disk space (or "
            f"memory, connections) on the database server, then {_RESUME}"
        )
    if state.startswith("23"):
        return (
            f"{what} failed on a constraint ({detail}): another session's write conflicts with "
            f"the step; {_RESUME}"
        )
    if state.startswith("57P") or (not state and connection_was_made()):
        return (
            f"{what} lost its connection to PostgreSQL ({detail}): the server ended the session "
            f"(pg_terminate_backend, a restart) or the network dropped it; {_RESUME}"
        )
    if state.startswith("42"):
        return f"{what} failed: PostgreSQL refused a statement ({detail}); {_RESUME}"
    return f"{what} failed: {detail} (SQLSTATE {state or 'none'}); {_RESUME}"
