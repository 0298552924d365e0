"""The migration safety kit: operations that change large, busy tables without stopping writers.

Each operation is idempotent (a migration interrupted by a crash is resumed by running
`migrate` again) and takes the weakest lock that does the job:

- catalog-only DDL (ADD COLUMN with a constant default, NOT VALID constraints, SET NOT NULL
  proven by a valid CHECK, DROP COLUMN) needs ACCESS EXCLUSIVE, but only for milliseconds. It
  runs with a short lock_timeout and is retried, so it never queues the application's writes
  behind a long-running transaction for longer than that timeout;
- the scans (VALIDATE CONSTRAINT) take SHARE UPDATE EXCLUSIVE, which lets reads and writes go on;
- indexes are built CONCURRENTLY.

They must run in non-atomic migrations (`atomic = False`): each statement then commits on its
own and releases its lock at once, instead of holding it until the whole migration commits.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from django.db import OperationalError, transaction
from django.db.migrations.operations.base import Operation
from psycopg import errors, sql

logger = logging.getLogger(__name__)

# How long catalog-only DDL may wait for its lock before it backs off and lets writers through.
LOCK_TIMEOUT = "50ms"
LOCK_ATTEMPTS = 200


LOCK_PROGRESS_INTERVAL = 5.0


def _report_lock_wait(connection, what: str, waited: float) -> None:
    """Progress while the short-lock retries go on: which sessions hold locks here."""
    from tenants.conversion.advisory import relation_lock_holders

    with connection.cursor() as cursor:
        holders = relation_lock_holders(cursor)
    print(
        f"  still trying to {what} after {waited:.0f} s (a short lock, retried, writers are not "
        f"blocked): locks held by {'; '.join(holders) or 'nobody now'}",
        flush=True,
    )


class LockNotAcquired(Exception):
    """A short lock could not be taken after every retry: a long transaction holds the table."""


def with_short_lock(connection, work: Callable[[object], None], what: str) -> None:
    """Run `work(cursor)` in a transaction whose lock requests give up after LOCK_TIMEOUT, retried.

    Inside an atomic migration the transaction is a savepoint, so lock_timeout is put back
    afterwards rather than left for the rest of the migration. Writers never queue behind a
    lock request of ours for longer than LOCK_TIMEOUT.
    """
    delay = 0.05
    started = time.monotonic()
    last_report = started
    for attempt in range(1, LOCK_ATTEMPTS + 1):
        try:
            with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
                cursor.execute("SELECT current_setting('lock_timeout')")
                previous = cursor.fetchone()[0]
                cursor.execute("SELECT set_config('lock_timeout', %s, true)", [LOCK_TIMEOUT])
                work(cursor)
                cursor.execute("SELECT set_config('lock_timeout', %s, true)", [previous])
            return
        except OperationalError as error:
            if not isinstance(error.__cause__, errors.LockNotAvailable):
                raise
            logger.info("%s: lock not available (attempt %s); retrying", what, attempt)
            if time.monotonic() - last_report >= LOCK_PROGRESS_INTERVAL:
                last_report = time.monotonic()
                _report_lock_wait(connection, what, last_report - started)
            time.sleep(delay)
            delay = min(delay * 1.5, 1.0)
    waited = time.monotonic() - started
    from tenants.conversion.advisory import relation_lock_holders

    with connection.cursor() as cursor:
        holders = relation_lock_holders(cursor)
    held_by = f"held by {'; '.join(holders)}" if holders else "its holder has ended since"
    raise LockNotAcquired(
        f"could not take a short lock to {what} after {LOCK_ATTEMPTS} attempts "
        f"(~{waited:.0f} s): a long-running transaction holds the table, {held_by}; end it "
        f"(SELECT pg_terminate_backend(<pid>)) or wait for it, then run the command again"
    )


def sql_text(connection, statement) -> str:
    """A statement as the SQL it is (psycopg's Composed objects print as a repr otherwise)."""
    if isinstance(statement, sql.Composable):
        connection.ensure_connection()
        return statement.as_string(connection.connection)
    return str(statement)


def run_ddl_with_short_lock(connection, statement, params=None) -> None:
    """Run catalog-only DDL in its own transaction under a short lock_timeout, with retries."""
    with_short_lock(
        connection,
        lambda cursor: cursor.execute(statement, params),
        f"run {sql_text(connection, statement)}",
    )


def default_organization_id(connection) -> str:
    from tenants.models import DEFAULT_ORGANIZATION_SLUG

    with connection.cursor() as cursor:
        cursor.execute("SELECT id FROM organizations WHERE slug = %s", [DEFAULT_ORGANIZATION_SLUG])
        row = cursor.fetchone()
    if row is None:
        raise RuntimeError(
            "the default organization is missing: "
            "tenants.0004_seed_default_organization must run first"
        )
    return str(row[0])


def column_exists(connection, table: str, column: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema() "
            "AND table_name = %s AND column_name = %s",
            [table, column],
        )
        return cursor.fetchone() is not None


def constraint_validated(connection, table: str, name: str) -> bool | None:
    """Whether the named constraint on `table` is validated; None when it does not exist."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT convalidated FROM pg_constraint WHERE conrelid = %s::regclass AND conname = %s",
            [table, name],
        )
        row = cursor.fetchone()
    return None if row is None else row[0]


def add_foreign_key_then_validate(connection, table: str, name: str, definition) -> None:
    """Add foreign key `name` (`definition`: "FOREIGN KEY (...) REFERENCES ...") NOT VALID under
    a short lock, then VALIDATE it (SHARE UPDATE EXCLUSIVE: reads and writes go on); each step
    skipped when an interrupted run already did it."""
    validated = constraint_validated(connection, table, name)
    identifiers = sql.Identifier(table), sql.Identifier(name)
    if validated is None:
        run_ddl_with_short_lock(
            connection,
            sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} {} NOT VALID").format(
                *identifiers, definition
            ),
        )
    if not validated:
        with connection.cursor() as cursor:
            cursor.execute(sql.SQL("ALTER TABLE {} VALIDATE CONSTRAINT {}").format(*identifiers))


class DatabaseOnlyOperation(Operation):
    """Changes the database only; the SeparateDatabaseAndState around it owns the state."""

    reduces_to_sql = False
    reversible = True

    def state_forwards(self, app_label, state):
        pass


class AddOrganizationColumn(DatabaseOnlyOperation):
    """Expand: `organization_id uuid DEFAULT <default organization>` on a legacy table.

    Lock: ACCESS EXCLUSIVE for milliseconds. A constant default is stored in the catalog
    (PostgreSQL 11+): no row is rewritten, and every existing row reads the default organization
    at once. Rows the old application inserts afterwards (it knows no organization_id) get the
    default too, until `contract_tenancy` drops it once the old application is gone.
    """

    def __init__(self, table: str):
        self.table = table

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        connection = schema_editor.connection
        organization_id = default_organization_id(connection)
        # SET DEFAULT too: a column left without it by an interrupted run gets it now.
        run_ddl_with_short_lock(
            connection,
            sql.SQL(
                "ALTER TABLE {table} ADD COLUMN IF NOT EXISTS organization_id uuid DEFAULT {id}, "
                "ALTER COLUMN organization_id SET DEFAULT {id}"
            ).format(table=sql.Identifier(self.table), id=sql.Literal(organization_id)),
        )

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        # Catalog-only as well: the column's data is left behind and reclaimed by later writes.
        run_ddl_with_short_lock(
            schema_editor.connection,
            sql.SQL("ALTER TABLE {} DROP COLUMN IF EXISTS organization_id").format(
                sql.Identifier(self.table)
            ),
        )

    def describe(self):
        return f"Add {self.table}.organization_id defaulting to the default organization"


def backfill_organization(connection, table: str, *, batch_size: int = 5000, progress=None) -> int:
    """Give every row of `table` without an organization the default one, in keyset batches.

    The column default already covers rows that existed when the column was added and rows
    inserted since, so this usually finds nothing after one sequential scan. Rows that do lack
    an organization (written with an explicit NULL) are updated in batches of `batch_size`,
    each in its own short transaction, so no row lock is held for long.
    """
    organization_id = default_organization_id(connection)
    table_sql = sql.Identifier(table)
    exists_null = sql.SQL("SELECT EXISTS (SELECT 1 FROM {} WHERE organization_id IS NULL)").format(
        table_sql
    )
    update_batch = sql.SQL(
        "WITH batch AS (SELECT id FROM {table} WHERE organization_id IS NULL AND id > %s "
        "ORDER BY id LIMIT {limit} FOR NO KEY UPDATE) "
        "UPDATE {table} t SET organization_id = %s FROM batch WHERE t.id = batch.id RETURNING t.id"
    ).format(table=table_sql, limit=sql.Literal(batch_size))
    updated = 0
    # A keyset pass walks the ids once; random uuids inserted behind it during the pass are
    # caught by the next pass, which only starts if the cheap EXISTS still finds one.
    while _fetch_value(connection, exists_null):
        last_id = "00000000-0000-0000-0000-000000000000"
        while True:
            with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
                cursor.execute(update_batch, [last_id, organization_id])
                ids = [row[0] for row in cursor.fetchall()]
            if not ids:
                break
            updated += len(ids)
            last_id = str(max(ids))
            if progress:
                progress(f"  {table}: {updated} rows assigned to the default organization")
    return updated


def _fetch_value(connection, query):
    with connection.cursor() as cursor:
        cursor.execute(query)
        return cursor.fetchone()[0]


class SetOrganizationNotNull(DatabaseOnlyOperation):
    """organization_id NOT NULL without a scan under ACCESS EXCLUSIVE.

    A CHECK (organization_id IS NOT NULL) is added NOT VALID (ACCESS EXCLUSIVE, milliseconds),
    validated (SHARE UPDATE EXCLUSIVE: one scan while reads and writes go on), after which SET
    NOT NULL is proven by the constraint and skips its own scan (PostgreSQL 12+; ACCESS EXCLUSIVE
    for milliseconds); the helper constraint is then dropped.
    """

    def __init__(self, table: str):
        self.table = table

    @property
    def check_name(self) -> str:
        return f"{self.table}_organization_id_not_null"

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        connection = schema_editor.connection
        table = sql.Identifier(self.table)
        check = sql.Identifier(self.check_name)
        validated = constraint_validated(connection, self.table, self.check_name)
        if validated is None:
            run_ddl_with_short_lock(
                connection,
                sql.SQL(
                    "ALTER TABLE {} ADD CONSTRAINT {} CHECK (organization_id IS NOT NULL) NOT VALID"
                ).format(table, check),
            )
        if not validated:
            with connection.cursor() as cursor:
                cursor.execute(
                    sql.SQL("ALTER TABLE {} VALIDATE CONSTRAINT {}").format(table, check)
                )
        run_ddl_with_short_lock(
            connection,
            sql.SQL("ALTER TABLE {} ALTER COLUMN organization_id SET NOT NULL").format(table),
        )
        run_ddl_with_short_lock(
            connection, sql.SQL("ALTER TABLE {} DROP CONSTRAINT IF EXISTS {}").format(table, check)
        )

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if column_exists(schema_editor.connection, self.table, "organization_id"):
            run_ddl_with_short_lock(
                schema_editor.connection,
                sql.SQL("ALTER TABLE {} ALTER COLUMN organization_id DROP NOT NULL").format(
                    sql.Identifier(self.table)
                ),
            )

    def describe(self):
        return f"Make {self.table}.organization_id NOT NULL (proven by a validated CHECK)"


class AddForeignKeyNotValid(DatabaseOnlyOperation):
    """A foreign key added NOT VALID, then validated.

    Locks: SHARE ROW EXCLUSIVE on the table and on the referenced table for milliseconds (the
    NOT VALID add, short lock_timeout, retried), then SHARE UPDATE EXCLUSIVE on the table for
    the validating scan, which lets reads and writes go on.
    """

    def __init__(self, table: str, name: str, column: str, references: str, actions: str = ""):
        self.table = table
        self.name = name
        self.column = column
        self.references = references  # "organizations (id)"
        self.actions = actions  # e.g. "ON DELETE SET NULL DEFERRABLE INITIALLY DEFERRED"

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        add_foreign_key_then_validate(
            schema_editor.connection,
            self.table,
            self.name,
            sql.SQL("FOREIGN KEY ({}) REFERENCES {} {}").format(
                sql.Identifier(self.column), sql.SQL(self.references), sql.SQL(self.actions)
            ),
        )

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if column_exists(schema_editor.connection, self.table, self.column):
            run_ddl_with_short_lock(
                schema_editor.connection,
                sql.SQL("ALTER TABLE {} DROP CONSTRAINT IF EXISTS {}").format(
                    sql.Identifier(self.table), sql.Identifier(self.name)
                ),
            )

    def describe(self):
        return f"Add foreign key {self.name} from {self.table}.{self.column} to {self.references}"


class CreateIndexConcurrently(DatabaseOnlyOperation):
    """CREATE [UNIQUE] INDEX CONCURRENTLY, resuming cleanly after a crash.

    Lock: SHARE UPDATE EXCLUSIVE (reads and writes go on). An invalid index left by an
    interrupted build (or a unique build that met duplicates) is dropped (concurrently) and
    built again.
    """

    def __init__(self, table: str, name: str, definition: str, unique: bool = False):
        self.table = table
        self.name = name
        self.definition = definition  # e.g. "(organization_id)"
        self.unique = unique

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        connection = schema_editor.connection
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                "WHERE c.relname = %s AND c.relnamespace = current_schema()::regnamespace",
                [self.name],
            )
            row = cursor.fetchone()
            if row and row[0]:
                return
            if row:
                cursor.execute(
                    sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}").format(
                        sql.Identifier(self.name)
                    )
                )
            cursor.execute(
                sql.SQL("CREATE {}INDEX CONCURRENTLY {} ON {} {}").format(
                    sql.SQL("UNIQUE " if self.unique else ""),
                    sql.Identifier(self.name),
                    sql.Identifier(self.table),
                    sql.SQL(self.definition),
                )
            )

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        with schema_editor.connection.cursor() as cursor:
            cursor.execute(
                sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}").format(sql.Identifier(self.name))
            )

    def describe(self):
        kind = "unique index" if self.unique else "index"
        return f"Create {kind} {self.name} on {self.table} {self.definition} concurrently"


class DropIndexConcurrently(CreateIndexConcurrently):
    """DROP INDEX CONCURRENTLY IF EXISTS: SHARE UPDATE EXCLUSIVE (reads and writes go on).
    Reverse: the index built again as CreateIndexConcurrently builds it (resumable)."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        super().database_backwards(app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        super().database_forwards(app_label, schema_editor, from_state, to_state)

    def describe(self):
        return f"Drop index {self.name} on {self.table} concurrently"


def organization_column_operations(*, model_name: str, table: str, related_name: str) -> list:
    """Plan steps M006-M009 for one legacy table: expand, backfill, NOT NULL, foreign key, index.

    Names as the plan gives them: fk_<table>_organization and idx_<table>_org.
    """
    from django.db import migrations, models

    foreign_key = f"fk_{table}_organization"
    index = f"idx_{table}_org"

    def backfill(apps, schema_editor):
        backfill_organization(schema_editor.connection, table, progress=print)

    return [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                AddOrganizationColumn(table),
                migrations.RunPython(backfill, migrations.RunPython.noop, elidable=False),
                SetOrganizationNotNull(table),
                AddForeignKeyNotValid(table, foreign_key, "organization_id", "organizations (id)"),
                CreateIndexConcurrently(table, index, "(organization_id)"),
            ],
            state_operations=[
                migrations.AddField(
                    model_name=model_name,
                    name="organization",
                    field=models.ForeignKey(
                        on_delete=models.PROTECT,
                        db_index=False,
                        related_name=related_name,
                        to="tenants.organization",
                    ),
                    preserve_default=False,
                ),
                migrations.AddIndex(
                    model_name=model_name,
                    index=models.Index(fields=["organization"], name=index),
                ),
            ],
        )
    ]


# --- keys that cannot cross organizations (M018-M020) ---------------------------------------


def _index_state(connection, name: str) -> bool | None:
    """Whether index `name` in the current schema is valid; None when it does not exist."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "WHERE c.relname = %s AND c.relnamespace = current_schema()::regnamespace",
            [name],
        )
        row = cursor.fetchone()
    return None if row is None else row[0]


class AddUniqueKeyConcurrently(DatabaseOnlyOperation):
    """A UNIQUE constraint built without blocking writers: the index first, then the constraint.

    Locks: SHARE UPDATE EXCLUSIVE while CREATE UNIQUE INDEX CONCURRENTLY builds the index (reads
    and writes go on; the time grows with the table), then ACCESS EXCLUSIVE for milliseconds to
    ADD CONSTRAINT ... UNIQUE USING INDEX (catalog-only: the index is already there and valid),
    with a 50 ms lock_timeout and retried. An invalid index left by an interrupted build is
    dropped concurrently and built again. Reverse: DROP CONSTRAINT (catalog-only, short lock),
    which drops its index with it.
    """

    def __init__(self, table: str, name: str, columns: tuple[str, ...]):
        self.table = table
        self.name = name
        self.columns = tuple(columns)

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        connection = schema_editor.connection
        if constraint_validated(connection, self.table, self.name) is not None:
            return
        name, table = sql.Identifier(self.name), sql.Identifier(self.table)
        state = _index_state(connection, self.name)
        with connection.cursor() as cursor:
            if state is False:
                cursor.execute(sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}").format(name))
            if not state:
                cursor.execute(
                    sql.SQL("CREATE UNIQUE INDEX CONCURRENTLY {} ON {} ({})").format(
                        name, table, sql.SQL(", ").join(map(sql.Identifier, self.columns))
                    )
                )
        run_ddl_with_short_lock(
            connection,
            sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} UNIQUE USING INDEX {}").format(
                table, name, name
            ),
        )

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        connection = schema_editor.connection
        run_ddl_with_short_lock(
            connection,
            sql.SQL("ALTER TABLE {} DROP CONSTRAINT IF EXISTS {}").format(
                sql.Identifier(self.table), sql.Identifier(self.name)
            ),
        )
        # An index an interrupted run built but never attached to the constraint.
        with connection.cursor() as cursor:
            cursor.execute(
                sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}").format(sql.Identifier(self.name))
            )

    def describe(self):
        return f"Add unique key {self.name} on {self.table} ({', '.join(self.columns)})"


def single_column_foreign_keys(connection, table: str, column: str, parent: str) -> list[tuple]:
    """(name, definition) of every foreign key of `table` on `column` alone to `parent`."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT con.conname, pg_get_constraintdef(con.oid)
            FROM pg_constraint con
            JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = con.conkey[1]
            WHERE con.contype = 'f' AND con.conrelid = %s::regclass
              AND con.confrelid = %s::regclass AND cardinality(con.conkey) = 1
              AND a.attname = %s
            ORDER BY con.conname
            """,
            [table, parent, column],
        )
        return cursor.fetchall()


class AddOrganizationForeignKey(DatabaseOnlyOperation):
    """(organization_id, <column>) -> parent (organization_id, id), replacing the plain key.

    A row can then reference only a parent row of its own organization: PostgreSQL refuses the
    rest, whoever writes. MATCH SIMPLE (the default): a NULL <column> references nothing and is
    not checked, as before.

    Steps, each idempotent (atomic = False; an interrupted run resumes): the composite key is
    added NOT VALID (SHARE ROW EXCLUSIVE on both tables for milliseconds, 50 ms lock_timeout,
    retried), then VALIDATEd (SHARE UPDATE EXCLUSIVE on the table, ROW SHARE on the parent:
    reads and writes go on during the scan); only then is the plain single-column key it
    replaces dropped (ACCESS EXCLUSIVE on the table and the parent for milliseconds, short
    lock: dropping a foreign key removes the parent's triggers), so there is never a moment
    without a key. The plain key's name and definition are kept in a COMMENT on the
    composite one, and the reverse puts exactly that key back (NOT VALID, then VALIDATE)
    before dropping the composite one.
    """

    def __init__(
        self,
        table: str,
        name: str,
        column: str,
        parent: str,
        actions: str = "",
        *,
        replaces: tuple[str, str] | None = None,
    ):
        self.table = table
        self.name = name
        self.column = column
        self.parent = parent
        self.actions = actions  # e.g. "ON DELETE CASCADE"
        # (name, definition) of the plain key when no database has it under another name yet:
        # used by the reverse only if the comment is missing.
        self.replaces = replaces

    def _comment(self, connection) -> str | None:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT obj_description(oid, 'pg_constraint') FROM pg_constraint "
                "WHERE conrelid = %s::regclass AND conname = %s",
                [self.table, self.name],
            )
            row = cursor.fetchone()
        return row[0] if row else None

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        connection = schema_editor.connection
        table, name = sql.Identifier(self.table), sql.Identifier(self.name)
        add_foreign_key_then_validate(
            connection,
            self.table,
            self.name,
            sql.SQL(
                "FOREIGN KEY (organization_id, {}) REFERENCES {} (organization_id, id) {}"
            ).format(
                sql.Identifier(self.column), sql.Identifier(self.parent), sql.SQL(self.actions)
            ),
        )
        for old_name, definition in single_column_foreign_keys(
            connection, self.table, self.column, self.parent
        ):
            with connection.cursor() as cursor:
                cursor.execute(
                    sql.SQL("COMMENT ON CONSTRAINT {} ON {} IS {}").format(
                        name, table, sql.Literal(f"replaces {old_name}: {definition}")
                    )
                )
            run_ddl_with_short_lock(
                connection,
                sql.SQL("ALTER TABLE {} DROP CONSTRAINT IF EXISTS {}").format(
                    table, sql.Identifier(old_name)
                ),
            )

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        connection = schema_editor.connection
        table = sql.Identifier(self.table)
        if not column_exists(connection, self.table, self.column):
            return
        comment = self._comment(connection)
        if comment and comment.startswith("replaces ") and ": " in comment:
            old_name, definition = comment[len("replaces ") :].split(": ", 1)
        elif self.replaces:
            old_name, definition = self.replaces
        else:
            old_name = definition = None
        if old_name:
            validated = constraint_validated(connection, self.table, old_name)
            if validated is None:
                run_ddl_with_short_lock(
                    connection,
                    sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} {} NOT VALID").format(
                        table, sql.Identifier(old_name), sql.SQL(definition)
                    ),
                )
            if not validated:
                with connection.cursor() as cursor:
                    cursor.execute(
                        sql.SQL("ALTER TABLE {} VALIDATE CONSTRAINT {}").format(
                            table, sql.Identifier(old_name)
                        )
                    )
        run_ddl_with_short_lock(
            connection,
            sql.SQL("ALTER TABLE {} DROP CONSTRAINT IF EXISTS {}").format(
                table, sql.Identifier(self.name)
            ),
        )

    def describe(self):
        return (
            f"Add foreign key {self.name} from {self.table} (organization_id, {self.column}) "
            f"to {self.parent} (organization_id, id)"
        )


def _index_columns(connection, name: str) -> list[str] | None:
    """The key columns of index `name` in the current schema, in order; None when absent."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT array_agg(a.attname::text ORDER BY k.position)
            FROM pg_index i
            JOIN pg_class c ON c.oid = i.indexrelid
            CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, position)
            JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
            WHERE c.relname = %s AND c.relnamespace = current_schema()::regnamespace
            """,
            [name],
        )
        row = cursor.fetchone()
    return row[0] if row else None


class ReplaceUniqueIndexConcurrently(DatabaseOnlyOperation):
    """A unique index rebuilt on other columns under the same name, without blocking writers.

    The new index is built CONCURRENTLY under a temporary name (SHARE UPDATE EXCLUSIVE: reads
    and writes go on), the old one dropped CONCURRENTLY, and the new one renamed (SHARE UPDATE
    EXCLUSIVE for milliseconds, short lock_timeout, retried). At every moment one of the two
    enforces the rule. Idempotent: an index already on the new columns is kept, an invalid
    temporary index rebuilt. Reverse: the same, back to the old columns.
    """

    def __init__(
        self,
        table: str,
        name: str,
        columns: tuple[str, ...],
        old_columns: tuple[str, ...],
        condition: str = "",
    ):
        self.table = table
        self.name = name
        self.columns = tuple(columns)
        self.old_columns = tuple(old_columns)
        self.condition = condition  # e.g. "end_date IS NULL"

    def _replace(self, connection, columns: tuple[str, ...]) -> None:
        temporary = f"{self.name}_next"[:63]
        current = _index_columns(connection, self.name)
        with connection.cursor() as cursor:
            if current is not None and tuple(current) != columns:
                state = _index_state(connection, temporary)
                if state is False:
                    cursor.execute(
                        sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}").format(
                            sql.Identifier(temporary)
                        )
                    )
                if not state:
                    cursor.execute(
                        sql.SQL("CREATE UNIQUE INDEX CONCURRENTLY {} ON {} ({}){}").format(
                            sql.Identifier(temporary),
                            sql.Identifier(self.table),
                            sql.SQL(", ").join(map(sql.Identifier, columns)),
                            sql.SQL(f" WHERE {self.condition}" if self.condition else ""),
                        )
                    )
                cursor.execute(
                    sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}").format(
                        sql.Identifier(self.name)
                    )
                )
        if _index_state(connection, temporary) is not None:
            run_ddl_with_short_lock(
                connection,
                sql.SQL("ALTER INDEX {} RENAME TO {}").format(
                    sql.Identifier(temporary), sql.Identifier(self.name)
                ),
            )

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        self._replace(schema_editor.connection, self.columns)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        self._replace(schema_editor.connection, self.old_columns)

    def describe(self):
        return f"Rebuild unique index {self.name} on {self.table} ({', '.join(self.columns)})"
