"""The verified organization claim on every database transaction of the application role.

An execute wrapper on every connection (installed on `connection_created`) makes sure that the
transaction a query runs in carries the claim of the running code (tenants.claims: the
organization(s) it may see, its user, the platform flag), signed for this backend, in
`app.tenancy_claim`. PostgreSQL verifies it (tenants.verification) before any policy honours
it; no claim, or one that does not verify, matches no row. The claim is set with
`set_config(..., true)`, local to the transaction: nothing is ever set for the session, so a
pooled connection (or a pgbouncer in transaction mode) never carries it into the next request.

It travels as a bound parameter of a statement of its own (server-side binding), never inlined
in query text: another backend of the same role sees the text of running statements in
pg_stat_activity, and must not see a claim there.

The claim is signed for this transaction: it names the backend and the transaction's start
(`transaction_timestamp()`, read once per transaction), so it verifies nowhere else.

What it costs, per transaction: two round trips when a claim must be sent (the transaction's
start, then the claim), one more for each change of claim within the transaction.
- Inside a transaction (ATOMIC_REQUESTS, atomic blocks), the claim is sent before the first
  query, and again only when the claim changes or a savepoint it was sent in is rolled back.
- In autocommit with a claim, the query becomes its own short transaction: BEGIN, the claim,
  the query, COMMIT.
- Without a claim nothing is added: an empty claim is the same as none.
Connections of maintenance commands that run as the owner (tenants.roles) are left alone, and
so is `SET TRANSACTION ...`, which must come first in its transaction (the claim follows it).
"""

from __future__ import annotations

import contextlib

import psycopg
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


def _send_claim(connection, raw, wanted) -> None:
    """Put `wanted` on the open (or, in psycopg's non-autocommit mode, opening) transaction."""
    # A plain psycopg cursor binds on the server: the claim never appears in the query text.
    with connection.wrap_database_errors, psycopg.Cursor(raw) as cursor:
        claim = ""
        if wanted != NO_CLAIM:
            started = getattr(connection, "_tenancy_transaction_start", None)
            if started is None or started[0] is not raw:
                cursor.execute(_TRANSACTION_START)
                started = (raw, cursor.fetchone()[0])
                connection._tenancy_transaction_start = started
            claim = sign(wanted, backend_pid=raw.info.backend_pid, transaction_start=started[1])
        cursor.execute(_CLAIM_STATEMENT, [claim])


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
        if not (wanted == NO_CLAIM and state is None):
            _send_claim(connection, raw, wanted)
        connection._organization_on_transaction = (raw, tuple(connection.savepoint_ids), wanted)
        return execute(sql, params, many, context)

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
            with connection.wrap_database_errors:
                raw.execute("BEGIN")
            connection._tenancy_transaction_start = None
            _send_claim(connection, raw, wanted)
            result = execute(sql, params, many, context)
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
