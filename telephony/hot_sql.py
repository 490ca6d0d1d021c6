"""Statements on the hottest paths (inbound route decisions, leg and event inserts, message inserts).

A hot statement runs on a server-binding cursor and, on PostgreSQL, as a statement prepared once per connection.
Kept apart from the domain modules so that any of them can use it without importing another.
"""

from __future__ import annotations

from django.conf import settings
from django.db.backends.base.base import BaseDatabaseWrapper


def hot_cursor(db: BaseDatabaseWrapper):
    """A cursor for the hot path. On PostgreSQL it binds parameters server-side: Django's default cursor
    interpolates them into the SQL in Python, which here costs more than the index probe itself."""
    if db.vendor != "postgresql":
        return db.cursor()
    from django.db.backends.postgresql.base import ServerBindingCursor

    db.validate_thread_sharing()
    db.ensure_connection()
    raw = ServerBindingCursor(db.connection)
    return db.make_debug_cursor(raw) if db.queries_logged else db.make_cursor(raw)


_NEVER = 2**31 - 1


def hot_execute(cursor, sql: str, params: list) -> None:
    """`cursor.execute` on a `hot_cursor`, as a prepared statement on PostgreSQL.

    Django turns psycopg's automatic preparation off, for connection poolers in transaction mode (this deployment
    connects directly or through its own psycopg pool; one behind such a pooler sets DB_PREPARED_STATEMENTS=false).
    Unprepared, PostgreSQL plans every statement again, and planning the inbound path's join cost more server CPU
    than running it (2 ms against 0.5 ms). Only these few statements of fixed text are prepared, once per
    connection. When queries are being logged (DEBUG, tests counting them) or wrapped (connection.execute_wrapper),
    Django's own path runs them instead.
    """
    raw = getattr(cursor, "cursor", None)
    db = getattr(cursor, "db", None)
    if (
        db is None
        or db.vendor != "postgresql"
        or db.queries_logged
        or db.execute_wrappers
        or not settings.DB_PREPARED_STATEMENTS
    ):
        cursor.execute(sql, params)
        return
    from psycopg.errors import FeatureNotSupported

    if raw.connection.prepare_threshold is None:
        # psycopg prepares nothing, even on request, while the threshold is None; this large one keeps its automatic
        # preparation off for every other statement of the connection, as Django wants it.
        raw.connection.prepare_threshold = _NEVER
    with db.wrap_database_errors:
        try:
            raw.execute(sql, params, prepare=True)
        except FeatureNotSupported:
            # "cached plan must not change result type": a migration (another process) changed the type of a
            # column this statement returns. psycopg keeps the stale statement and PostgreSQL refuses it every
            # time, so drop this connection's prepared statements and run it again, prepared anew. Inside a
            # transaction the statement cannot be retried; its rollback makes psycopg forget them all.
            if db.in_atomic_block or not db.get_autocommit():
                raise
            raw.connection.execute("DEALLOCATE ALL")
            raw.execute(sql, params, prepare=True)
