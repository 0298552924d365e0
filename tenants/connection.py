"""The verified organization claim on every database transaction of the application role.

An execute wrapper on every connection (installed on `connection_created`) makes sure that the
transaction a query runs in carries the claim of the running code (tenants.claims: the
organization(s) it may see, its user, the platform flag), signed for this backend, in
`app.tenancy_claim`. PostgreSQL verifies it (tenants.verification) before any policy honours
it; no claim, or one that does not verify, matches no row. The claim is set with
`set_config(..., true)`, local to the transaction: nothing is ever set for the session, so a
pooled connection (or a pgbouncer in transaction mode) never carries it into the next request.

The claim is signed for this transaction: it names the backend and the transaction's start
(`transaction_timestamp()`, read once per transaction), so it verifies nowhere else.

What it costs: no round trip of its own, in the common case (tenants.0010, issue 8's target).
- The transaction's start comes with the message that opens the transaction: the wrapper sends
  psycopg's own `BEGIN` together with `SELECT <the start>` (one simple-protocol message) where
  psycopg would have sent `BEGIN` alone, for every transaction Django opens (ATOMIC_REQUESTS,
  atomic blocks), whether its first query needs a claim or not.
- The claim goes in the query's own message: `SELECT set_config('app.tenancy_claim',
  '<claim>', true); <query>`, on Django's client-side-binding cursor, as tenants.0005's plain
  settings did. The claim is therefore in the query text (pg_stat_activity, statement logs) while
  it runs. That gives nobody anything: it verifies only in this backend's current transaction,
  where any SQL can read it with current_setting() anyway, and a replay anywhere else (another
  transaction, another backend) verifies as no claim (tests/isolation/test_hostile_sql.py).
  Queries that cannot share a message (executemany, server-side cursors, server-side binding)
  get the claim in a statement of its own first, as a bound parameter.
- Inside a transaction, the claim is sent with the first query that needs it, and again only
  when the claim changes or a savepoint it was sent in is rolled back.
- In autocommit with a claim, the query becomes its own short transaction: BEGIN with the
  start, then the claim, the query and COMMIT in one message.
- Without a claim nothing is added: an empty claim is the same as none.
Connections of maintenance commands that run as the owner (tenants.roles) are left alone, and
so is `SET TRANSACTION ...`, which must come first in its transaction (the claim follows it).
"""

from __future__ import annotations

import contextlib

import psycopg
from psycopg import IsolationLevel, pq
from psycopg import sql as pgsql
from psycopg.pq import TransactionStatus

from tenants.claims import (
    CLAIM_SETTING,
    NO_CLAIM,
    TRANSACTION_START_SQL,
    current_claim_inputs,
    sign,
)

_CLAIM_STATEMENT = f"SELECT set_config('{CLAIM_SETTING}', %s, true)"
_TRANSACTION_START = f"SELECT {TRANSACTION_START_SQL}"


def _sets_transaction_characteristics(sql) -> bool:
    """SET TRANSACTION ... must be a transaction's first statement: the claim follows it."""
    return isinstance(sql, str) and sql.lstrip()[:15].upper() == "SET TRANSACTION"


def _begin_statement(raw) -> str:
    """The BEGIN psycopg would send for this connection (its isolation level, read-only and
    deferrable attributes, which Django's OPTIONS may set)."""
    parts = ["BEGIN"]
    if raw.isolation_level is not None:
        parts += ["ISOLATION LEVEL", IsolationLevel(raw.isolation_level).name.replace("_", " ")]
    if raw.read_only is not None:
        parts.append("READ ONLY" if raw.read_only else "READ WRITE")
    if raw.deferrable is not None:
        parts.append("DEFERRABLE" if raw.deferrable else "NOT DEFERRABLE")
    return " ".join(parts)


def _begin_with_start(raw) -> int:
    """Open a transaction and read its start, in one message (simple query protocol)."""
    result = raw.pgconn.exec_(f"{_begin_statement(raw)}; {_TRANSACTION_START}".encode())
    if result.status != pq.ExecStatus.TUPLES_OK:
        message = (result.error_message or b"").decode(errors="replace").strip()
        if raw.info.transaction_status == TransactionStatus.INERROR:
            raw.rollback()
        raise psycopg.OperationalError(message or "could not open the transaction")
    return int(result.get_value(0, 0))


def _transaction_start(connection, raw) -> int:
    """The open (or, when idle, now opened) transaction's start, read once per transaction."""
    started = getattr(connection, "_tenancy_transaction_start", None)
    if started is not None and started[0] is raw:
        return started[1]
    if raw.info.transaction_status == TransactionStatus.IDLE:
        value = _begin_with_start(raw)
    else:
        with psycopg.Cursor(raw) as cursor:
            cursor.execute(_TRANSACTION_START)
            value = cursor.fetchone()[0]
    connection._tenancy_transaction_start = (raw, value)
    return value


def _claim_statement(claim: str, raw) -> str:
    return (
        pgsql.SQL("SELECT set_config({}, {}, true)")
        .format(pgsql.Literal(CLAIM_SETTING), pgsql.Literal(claim))
        .as_string(raw)
    )


def _one_message(context, sql, many) -> bool:
    """Whether the claim can go in the query's own message: one execution of a query string on a
    client-side-binding cursor (Django's), whose simple-protocol message may hold statements."""
    cursor = getattr(context["cursor"], "cursor", None)
    return not many and isinstance(sql, str) and isinstance(cursor, psycopg.ClientCursor)


def _execute_with_claim(
    connection, raw, wanted, execute, sql, params, many, context, *, commit=False
):
    """Put `wanted` on the open (or opening) transaction, then run the query (and, with
    `commit`, end the transaction in the same message when it can)."""
    with connection.wrap_database_errors:
        claim = ""
        if wanted != NO_CLAIM:
            started = _transaction_start(connection, raw)
            claim = sign(wanted, backend_pid=raw.info.backend_pid, transaction_start=started)
        if not _one_message(context, sql, many):
            # A plain psycopg cursor binds on the server.
            with psycopg.Cursor(raw) as cursor:
                cursor.execute(_CLAIM_STATEMENT, [claim])
    if not _one_message(context, sql, many):
        return execute(sql, params, many, context)
    # The claim first, the query, then (autocommit) COMMIT on a line of its own, so that a
    # trailing `-- comment` in the query cannot swallow it; the cursor is left on the query's
    # result.
    message = f"{_claim_statement(claim, raw)}; {sql}" + ("\n; COMMIT" if commit else "")
    result = execute(message, params, many, context)
    context["cursor"].cursor.nextset()
    return result


class OrganizationOnTransaction:
    """The execute wrapper; one instance serves every connection."""

    def __call__(self, execute, sql, params, many, context):
        connection = context["connection"]
        if connection.settings_dict.get("ROLE") == "owner":
            return execute(sql, params, many, context)
        raw = connection.connection
        if raw.info.transaction_status == TransactionStatus.IDLE:
            # A new transaction starts with this query: whatever was sent belonged to the last.
            connection._organization_on_transaction = None
            connection._tenancy_transaction_start = None
        if _sets_transaction_characteristics(sql):
            return execute(sql, params, many, context)
        if not connection.autocommit and raw.info.transaction_status == TransactionStatus.IDLE:
            # This query opens the transaction: open it with its start read in the same message,
            # so that any claim in it, now or later, costs no round trip of its own.
            with connection.wrap_database_errors:
                _transaction_start(connection, raw)
        wanted = current_claim_inputs()

        if connection.autocommit:
            if wanted == NO_CLAIM:
                return execute(sql, params, many, context)
            return self._in_own_transaction(execute, sql, params, many, context, wanted)

        if connection.needs_rollback or raw.info.transaction_status == TransactionStatus.INERROR:
            return execute(sql, params, many, context)  # it fails the way Django says it does
        state = getattr(connection, "_organization_on_transaction", None)
        if self._carried(connection, raw, state, wanted):
            return execute(sql, params, many, context)
        if wanted == NO_CLAIM and state is None:
            return execute(sql, params, many, context)
        result = _execute_with_claim(connection, raw, wanted, execute, sql, params, many, context)
        connection._organization_on_transaction = (raw, tuple(connection.savepoint_ids), wanted)
        return result

    @staticmethod
    def _carried(connection, raw, state, wanted) -> bool:
        """Whether the open transaction already carries `wanted`.

        It does when it was sent on this very connection in this transaction (cleared when a
        query starts a new one) and every savepoint that was open when it was sent still is
        (rolling back to one undoes it).
        """
        if state is None:
            return False
        sent_on, savepoints, value = state
        return (
            sent_on is raw
            and value == wanted
            and tuple(connection.savepoint_ids[: len(savepoints)]) == savepoints
        )

    def _in_own_transaction(self, execute, sql, params, many, context, wanted):
        connection = context["connection"]
        raw = connection.connection
        try:
            connection._tenancy_transaction_start = None
            result = _execute_with_claim(
                connection, raw, wanted, execute, sql, params, many, context, commit=True
            )
        except BaseException:
            # The transaction is still open (aborted): end it, so the connection is back in
            # autocommit for the next query. A broken connection cannot; Django notices.
            if raw.info.transaction_status in (
                TransactionStatus.INTRANS,
                TransactionStatus.INERROR,
            ):
                with contextlib.suppress(psycopg.Error):
                    raw.execute("ROLLBACK")
            raise
        if raw.info.transaction_status == TransactionStatus.INTRANS:
            with connection.wrap_database_errors:
                raw.execute("COMMIT")
        return result


organization_on_transaction = OrganizationOnTransaction()


def install(sender=None, connection=None, **kwargs) -> None:
    """`connection_created` receiver: put the wrapper on the connection (once)."""
    if organization_on_transaction not in connection.execute_wrappers:
        connection.execute_wrappers.append(organization_on_transaction)
