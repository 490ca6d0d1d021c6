"""The call log as CSV, streamed: constant memory whatever the number of calls, and no long-held transaction.

Rows are read in keyset batches on (created_at, public_id), newest first: each batch is one statement that
starts where the last one ended, so an export of millions of calls neither holds a transaction open for
minutes nor slows down as it goes, and the response's chunks leave as they are made.

On PostgreSQL each batch is a `COPY (SELECT ...) TO STDOUT WITH CSV`: the database formats every field
(times as ISO 8601 in UTC, ring and talk time, the Q.850 cause's name), and the bytes go to the response
without becoming Python objects, which is what makes a million rows take seconds. Elsewhere (SQLite in
development) the same columns are written by Python's csv module.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import datetime

from django.db import connection
from django.db.models import Q, QuerySet, TextField
from django.db.models.expressions import RawSQL
from django.db.models.functions import Cast

from telephony import q850
from telephony.models import Call

BATCH_SIZE = 50_000
CHUNK_BYTES = 256 * 1024
HEADER = [
    "call_id", "parent_call_id", "direction", "from", "to", "status", "q850_cause", "q850_cause_string",
    "sip_code", "end_reason", "tag", "source", "call_control_app_id", "created_at", "initiated_at", "ringing_at",
    "answered_at", "ended_at", "ring_time", "talk_time",
]  # fmt: skip
CREATED_AT_COLUMN = HEADER.index("created_at")
ORDER = ("-created_at", "-public_id")


def _header() -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(HEADER)
    return buffer.getvalue()


def _after(queryset: QuerySet, position: tuple[datetime, str] | None) -> QuerySet:
    if position is None:
        return queryset
    created_at, public_id = position
    return queryset.filter(Q(created_at__lt=created_at) | Q(created_at=created_at, public_id__lt=public_id))


def call_csv_chunks(queryset: QuerySet, *, batch_size: int | None = None) -> Iterator[str | bytes]:
    """The CSV of the calls of `queryset` (already scoped and filtered), header first, in chunks."""
    batch_size = batch_size or BATCH_SIZE
    yield _header()
    if connection.vendor == "postgresql":
        yield from _postgres_chunks(queryset, batch_size)
    else:
        yield from _python_chunks(queryset, batch_size)


# --- PostgreSQL: COPY -------------------------------------------------------------------------------------------

_TABLE = Call._meta.db_table


def _column(name: str) -> str:
    return f'"{_TABLE}"."{name}"'


def _sql(expression: str) -> RawSQL:
    return RawSQL(expression, [], output_field=TextField())  # noqa: S611 - our column names and constants only


def _iso(name: str) -> RawSQL:
    # Microseconds always, so a row's created_at read back from the CSV is exactly the stored time (the keyset).
    return _sql(f"to_char({_column(name)} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')")


def _one_line(name: str) -> RawSQL:
    # A field holding a line break would make one call two lines for anyone reading the file line by line.
    return _sql(f"translate({_column(name)}, E'\\r\\n', '  ')")


def _seconds(start: str, end: str) -> str:
    return f"GREATEST(0, FLOOR(EXTRACT(EPOCH FROM ({end} - {start}))))::int"


def _postgres_columns() -> dict:
    """The CSV's columns in order: a plain field's name, or an expression (annotated under the `x_` name)."""
    causes = " ".join(f"WHEN {code} THEN '{name}'" for code, name in q850.CAUSES.items())
    ringing, answered, ended = _column("ringing_at"), _column("answered_at"), _column("ended_at")
    return {
        "x_call_id": Cast("public_id", TextField()),
        "x_parent": Cast("parent__public_id", TextField()),
        "direction": None,
        "from_number": None,
        "to_number": None,
        "status": None,
        "q850_cause": None,
        "x_cause_name": _sql(f"CASE {_column('q850_cause')} {causes} END"),
        "sip_code": None,
        "x_reason": _one_line("end_reason"),
        "x_tag": _one_line("tag"),
        "source": None,
        "x_app": Cast("app__public_id", TextField()),
        "x_created_at": _iso("created_at"),
        "x_initiated_at": _iso("initiated_at"),
        "x_ringing_at": _iso("ringing_at"),
        "x_answered_at": _iso("answered_at"),
        "x_ended_at": _iso("ended_at"),
        "x_ring_time": _sql(
            f"CASE WHEN {ringing} IS NOT NULL THEN {_seconds(ringing, f'COALESCE({answered}, {ended})')} END"
        ),
        "x_talk_time": _sql(
            f"CASE WHEN {answered} IS NOT NULL AND {ended} IS NOT NULL THEN {_seconds(answered, ended)} ELSE 0 END"
        ),
    }


def _postgres_chunks(queryset: QuerySet, batch_size: int) -> Iterator[bytes]:
    columns = _postgres_columns()
    expressions = {name: expression for name, expression in columns.items() if expression is not None}
    position = None
    while True:
        page = _after(queryset, position).order_by(*ORDER).annotate(**expressions).values_list(*columns)
        page = page[:batch_size]
        sql, params = page.query.sql_with_params()
        rows, pending, last_lines = 0, bytearray(), b""
        with (
            connection.cursor() as cursor,
            cursor.cursor.copy(f"COPY ({sql}) TO STDOUT WITH (FORMAT csv)", params) as copy,
        ):
            for row in copy:  # one row per block: PostgreSQL sends COPY data a row at a time
                rows += 1
                pending += row
                if len(pending) >= CHUNK_BYTES:
                    last_lines = bytes(pending[-4096:])
                    yield bytes(pending)
                    pending.clear()
        if pending:
            last_lines = bytes(pending[-4096:])
            yield bytes(pending)
        if rows < batch_size:
            return
        last = next(csv.reader([last_lines.rstrip(b"\n").rsplit(b"\n", 1)[-1].decode()]))
        position = (datetime.fromisoformat(last[CREATED_AT_COLUMN].replace("Z", "+00:00")), last[0])


# --- Elsewhere: Python's csv module ---------------------------------------------------------------------------

_FIELDS = (
    "created_at", "public_id", "parent__public_id", "direction", "from_number", "to_number", "status",
    "q850_cause", "sip_code", "end_reason", "tag", "source", "app__public_id", "initiated_at", "ringing_at",
    "answered_at", "ended_at",
)  # fmt: skip


def _one(text: str) -> str:
    return text.replace("\r", " ").replace("\n", " ")


def _time(value) -> str:
    return value.isoformat(timespec="microseconds").replace("+00:00", "Z") if value else ""


def _python_chunks(queryset: QuerySet, batch_size: int) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    position = None
    while True:
        rows = list(_after(queryset, position).order_by(*ORDER).values_list(*_FIELDS)[:batch_size])
        if not rows:
            return
        buffer.seek(0)
        buffer.truncate()
        for (created_at, public_id, parent, direction, from_number, to_number, status, cause, sip_code, reason,
             tag, source, app, initiated_at, ringing_at, answered_at, ended_at) in rows:  # fmt: skip
            ring_time = ""
            if ringing_at and (answered_at or ended_at):
                ring_time = max(0, int(((answered_at or ended_at) - ringing_at).total_seconds()))
            talk_time = max(0, int((ended_at - answered_at).total_seconds())) if answered_at and ended_at else 0
            writer.writerow(
                (
                    public_id, parent or "", direction, from_number, to_number, status,
                    "" if cause is None else cause, q850.cause_name(cause) or "",
                    "" if sip_code is None else sip_code, _one(reason), _one(tag),
                    source, app or "", _time(created_at), _time(initiated_at), _time(ringing_at),
                    _time(answered_at), _time(ended_at), ring_time, talk_time,
                )
            )  # fmt: skip
        yield buffer.getvalue()
        position = (rows[-1][0], rows[-1][1])
        if len(rows) < batch_size:
            return
