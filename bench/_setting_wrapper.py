"""bench/api_overhead.py's baseline: the execute wrapper as it was before tenants.0007, frozen.

It put the current organization and `app.unscoped` on each transaction as plain settings, in
the same message as the query. Kept here only to measure the verified claim against it; the
project does not use it.
"""

from __future__ import annotations

import contextlib

import psycopg
from psycopg import sql as pgsql
from psycopg.pq import TransactionStatus

from tenants.context import current_organization_or_none
from tenants.managers import unscoped_access_active

ORGANIZATION_SETTING = "app.current_organization_id"
UNSCOPED_SETTING = "app.unscoped"


def _settings_statement(organization_id: str, unscoped: bool) -> pgsql.Composed:
    return pgsql.SQL("SELECT set_config({}, {}, true), set_config({}, {}, true)").format(
        pgsql.Literal(ORGANIZATION_SETTING),
        pgsql.Literal(organization_id),
        pgsql.Literal(UNSCOPED_SETTING),
        pgsql.Literal("on" if unscoped else ""),
    )


def _sets_transaction_characteristics(sql) -> bool:
    """SET TRANSACTION ... must be a transaction's first statement: the setting follows it."""
    return isinstance(sql, str) and sql.lstrip()[:15].upper() == "SET TRANSACTION"


class SettingOnTransaction:
    """The execute wrapper; one instance serves every connection."""

    def __call__(self, execute, sql, params, many, context):
        connection = context["connection"]
        if connection.settings_dict.get("ROLE") == "owner" or _sets_transaction_characteristics(
            sql
        ):
            return execute(sql, params, many, context)
        organization = current_organization_or_none()
        wanted = ("" if organization is None else str(organization.pk), unscoped_access_active())
        raw = connection.connection

        if connection.autocommit:
            if wanted == ("", False):
                return execute(sql, params, many, context)
            return self._in_own_transaction(execute, sql, params, many, context, wanted)

        if connection.needs_rollback or raw.info.transaction_status == TransactionStatus.INERROR:
            return execute(sql, params, many, context)  # it fails the way Django says it does
        if self._carried(connection, raw, wanted):
            return execute(sql, params, many, context)
        result = self._with_settings_first(execute, sql, params, many, context, wanted)
        connection._organization_on_transaction = (raw, tuple(connection.savepoint_ids), wanted)
        return result

    @staticmethod
    def _carried(connection, raw, wanted) -> bool:
        """Whether the open transaction already carries `wanted`.

        It does when it was sent on this very connection, the transaction is still open (a
        commit or rollback leaves psycopg IDLE, and the next query starts a new one), and every
        savepoint that was open when it was sent still is (rolling back to one undoes it).
        """
        state = getattr(connection, "_organization_on_transaction", None)
        if state is None or raw.info.transaction_status != TransactionStatus.INTRANS:
            return False
        sent_on, savepoints, value = state
        return (
            sent_on is raw
            and value == wanted
            and tuple(connection.savepoint_ids[: len(savepoints)]) == savepoints
        )

    @staticmethod
    def _one_message(context, sql, many) -> bool:
        cursor = getattr(context["cursor"], "cursor", None)
        return not many and isinstance(sql, str) and isinstance(cursor, psycopg.ClientCursor)

    def _with_settings_first(self, execute, sql, params, many, context, wanted):
        connection = context["connection"]
        statement = _settings_statement(*wanted).as_string(connection.connection)
        if self._one_message(context, sql, many):
            result = execute(f"{statement}; {sql}", params, many, context)
            context["cursor"].cursor.nextset()  # on to the query's own result
            return result
        with connection.wrap_database_errors:
            connection.connection.execute(statement)
        return execute(sql, params, many, context)

    def _in_own_transaction(self, execute, sql, params, many, context, wanted):
        connection = context["connection"]
        raw = connection.connection
        statement = _settings_statement(*wanted).as_string(raw)
        try:
            if self._one_message(context, sql, many):
                # COMMIT on a line of its own: a trailing `-- comment` in `sql` cannot swallow it.
                result = execute(f"BEGIN; {statement}; {sql}\n; COMMIT", params, many, context)
                cursor = context["cursor"].cursor
                cursor.nextset()
                cursor.nextset()
            else:
                with connection.wrap_database_errors:
                    raw.execute(f"BEGIN; {statement}")
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


setting_on_transaction = SettingOnTransaction()
