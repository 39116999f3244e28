"""The SQL that writes: a step's or a batch's rows, one executemany per table and kind.

The step path collects what a step (or a whole batch of steps, or a sweep's batch of
wake-ups) changes in a `WriteBatch`, then `flush` writes it in a fixed order: new instances,
deadline changes by id, set-based deadline closes, new deadlines, audit, outbox, consents and
assignments, the version-checked instance update, idempotency keys. A closed deadline is one
UPDATE whatever its wake-ups; ids come from the database, and nothing refers to a row written
in the same flush, so no statement needs RETURNING. On PostgreSQL a step of one instance
that closes at most one set of deadlines and adds deadlines, audit entries and messages is
one statement (`_as_one_statement`). Anything else goes up to the instance update as one
pipeline (`pipelined`): one round trip instead of one a statement. The update joins it when
it is one row per statement (a step of one instance); a batch's executemany follows it,
since psycopg counts an executemany's rows only outside a pipeline.

Set-based closes only touch rows that existed before the flush (they run before the inserts);
rows opened within the batch are closed in memory by the step path.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from dataclasses import field
from itertools import groupby
from operator import attrgetter
from typing import Any

from sqlalchemy import JSON
from sqlalchemy import Connection
from sqlalchemy import CursorResult
from sqlalchemy import Table
from sqlalchemy import Text
from sqlalchemy import and_
from sqlalchemy import bindparam
from sqlalchemy import case
from sqlalchemy import cast
from sqlalchemy import func
from sqlalchemy import insert
from sqlalchemy import literal
from sqlalchemy import literal_column
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.expression import Executable

from pathways_engine.errors import ConcurrentModification
from pathways_engine.errors import IdempotencyRace

from .rows import INSTANCE_COLUMNS
from .rows import DeadlineRow
from .rows import InstanceRow
from .tables import assignments
from .tables import audit
from .tables import consents
from .tables import deadlines
from .tables import instances
from .tables import outbox
from .tables import requests
from .tables import signals
from .tables import stored_utc
from .tables import subject_assignments
from .tables import subjects


def insert_missing(connection: Connection, table: Table, values: dict[str, Any]) -> None:
    """INSERT the row unless a row it would duplicate exists (ON CONFLICT DO NOTHING).

    Two processes starting the first pathway on a new definition (or for the same new
    subject) at the same moment both succeed, where a check-then-insert would give one of
    them a unique violation. No conflict target: a subject is unique by `ref` and by
    `ref_key`, and PostgreSQL checks only a target's index before inserting, so two starts
    for one new child at the same instant could pass that check together and the later one
    fail on the other index with a traceback (seen once in CI, 2026-12-07)."""
    if connection.dialect.name == "postgresql":  # imported here: reads never need them
        from sqlalchemy.dialects import postgresql

        connection.execute(postgresql.insert(table).values(**values).on_conflict_do_nothing())
    else:
        from sqlalchemy.dialects import sqlite

        connection.execute(sqlite.insert(table).values(**values).on_conflict_do_nothing())


def append_entry(connection: Connection, entry: dict[str, Any]) -> None:
    """One audit entry and the head it moves to, without touching the revision."""
    _INSERT['audit'](connection, [entry])
    connection.execute(update(instances).where(instances.c.id == entry["instance_id"])
                       .values(audit_head=entry["hash"], audit_seq=entry["seq"]))


def set_birth_date(connection: Connection, subject_id: int, birth_date: dt.date) -> None:
    connection.execute(update(subjects).where(subjects.c.id == subject_id)
                       .values(birth_date=birth_date))


@dataclass
class WriteBatch:
    """Everything a step or a batch writes, held until `flush`."""

    new_instances: list[InstanceRow] = field(default_factory=list)
    changed_instances: dict[str, tuple[int, InstanceRow]] = field(default_factory=dict)
    # instances whose only change is their audit head, revision and time (a fired reminder)
    head_only: set[str] = field(default_factory=set)
    new_deadlines: list[DeadlineRow] = field(default_factory=list)
    changed_deadlines: dict[int, DeadlineRow] = field(default_factory=dict)
    closes: list[dict[str, Any]] = field(default_factory=list)  # {kind, i, s, p, at}
    audit: list[dict[str, Any]] = field(default_factory=list)
    outbox: list[dict[str, Any]] = field(default_factory=list)
    cancelled_messages: list[dict[str, Any]] = field(default_factory=list)  # {b_id, b_reason}
    consents: list[dict[str, Any]] = field(default_factory=list)
    withdrawals: list[dict[str, Any]] = field(default_factory=list)  # {b_i, b_sector, b_basis, b_at}
    assignments: list[dict[str, Any]] = field(default_factory=list)
    subject_assignments: list[dict[str, Any]] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    signals: list[dict[str, Any]] = field(default_factory=list)
    # a correction's recounted deadlines: their rule and start change too (by id)
    recounted: list[dict[str, Any]] = field(default_factory=list)  # {b_id, b_rule, b_start, b_window}
    delivered_signals: list[dict[str, Any]] = field(default_factory=list)  # {b_id, b_at, b_outcome}

    def changed(self, row: InstanceRow, loaded_version: int,
                read: InstanceRow | None = None) -> None:
        """Record the instance's new values; the update checks it is still at `loaded_version`.

        Given the row as it was `read`, an instance whose state did not change gets the
        narrow update (head, revision, time) instead of rewriting every column.
        """
        if row.id in self.changed_instances:
            loaded_version = self.changed_instances[row.id][0]
        self.changed_instances[row.id] = (loaded_version, row)
        if read is not None and _STATE_VALUES(row) == _STATE_VALUES(read):
            self.head_only.add(row.id)
        else:
            self.head_only.discard(row.id)

    def merge(self, other: WriteBatch) -> None:
        """Take a finished step's writes into this (batch) one."""
        self.new_instances += other.new_instances
        for version, row in other.changed_instances.values():
            self.changed(row, version)
        self.head_only |= other.head_only
        self.new_deadlines += other.new_deadlines
        self.changed_deadlines.update(other.changed_deadlines)
        for name in ("closes", "audit", "outbox", "cancelled_messages", "consents",
                     "withdrawals", "assignments", "subject_assignments", "requests",
                     "signals", "delivered_signals", "recounted"):
            getattr(self, name).extend(getattr(other, name))

    def flush(self, connection: Connection) -> None:
        updates = self._instance_updates()  # their row counts are the version check
        single = _as_one_statement(self, updates) if connection.dialect.name == "postgresql" \
            else None
        if single is not None:
            _check_written(connection.execute(*single).rowcount, updates)
            self._after_update(connection)
            return
        with pipelined(connection) as piped:  # nothing in here reads an answer
            self._send(connection)
            # one row a statement (a step of one instance): its count is known after the sync
            inside = piped and all(len(rows) <= 1 for _, rows in updates)
            sent = [connection.execute(statement, rows) for statement, rows in updates] \
                if inside else []
        if inside:
            counts = [_synced_rowcount(result) for result in sent]
            written = sum(counts) if min(counts, default=0) >= 0 else \
                _at_new_versions(connection, updates)
        else:
            written = sum(connection.execute(statement, rows).rowcount
                          for statement, rows in updates)
        _check_written(written, updates)
        self._after_update(connection)

    def _after_update(self, connection: Connection) -> None:
        if self.requests:  # after the pipeline, so a key taken meanwhile is told apart
            try:
                _INSERT['requests'](connection, self.requests)
            except IntegrityError as exc:
                if not _unique_violation(exc):
                    raise
                raise IdempotencyRace(self.requests[0]["key"]) from None
        self._execute(connection, (("signals", _INSERT['signals']),
                                   ("delivered_signals", _DELIVERED), ("recounted", _RECOUNTED)))

    def _send(self, connection: Connection) -> None:
        if self.new_instances:
            _INSERT['instances'](connection, [r.values() for r in self.new_instances])
        fired: list[DeadlineRow] = []  # a wake-up fired, nothing else changed: the sweep's
        other: list[DeadlineRow] = []
        for row in self.changed_deadlines.values():
            (fired if row.only_fired else other).append(row)
        if fired:
            connection.execute(_DEADLINE_FIRED, [
                {"b_id": r.id, "b_fire_index": r.fire_index, "b_next_fire_at": r.next_fire_at}
                for r in fired])
        if other:
            connection.execute(_DEADLINE_BY_ID, [
                {"b_id": r.id, "b_status": r.status, "b_closed_at": r.closed_at,
                 "b_due_at": r.due_at, "b_fire_index": r.fire_index,
                 "b_next_fire_at": r.next_fire_at,
                 "b_fires": [[k, t.isoformat()] for k, t in r.fires],
                 "b_paused_at": r.paused_at, "b_paused_seconds": r.paused_seconds,
                 "b_extensions": r.extensions} for r in other])
        # in the order the steps asked (an event that meets an obligation and then a state
        # left must not trade places); a run of closes of one kind is one executemany
        for kind, run in groupby(self.closes, key=lambda c: c["kind"]):
            connection.execute(_CLOSES[kind], [{"b_i": c["i"], "b_s": c.get("s"),
                                                "b_p": c.get("p"), "b_at": c["at"]}
                                               for c in run])
        if self.new_deadlines:
            _INSERT['deadlines'](connection, [r.values() for r in self.new_deadlines])
        self._execute(connection, (("audit", _INSERT['audit']), ("outbox", _INSERT['outbox']),
                                   ("cancelled_messages", _CANCEL_MESSAGE),
                                   ("withdrawals", _WITHDRAW), ("consents", _INSERT['consents'])))
        if self.assignments:
            last = {(a["instance_id"], a["role"]): i for i, a in enumerate(self.assignments)}
            for i, a in enumerate(self.assignments):  # one active per role, the newest
                a["active"] = last[(a["instance_id"], a["role"])] == i
            roles = [{"b_i": a["instance_id"], "b_role": a["role"]} for a in self.assignments]
            connection.execute(_UNASSIGN, roles)
            _INSERT['assignments'](connection, self.assignments)
        if self.subject_assignments:
            rows = self.subject_assignments
            last = {(a["subject_id"], a["role"]): i for i, a in enumerate(rows)}
            for i, a in enumerate(rows):  # one active per child and role, the newest
                a["active"] = last[(a["subject_id"], a["role"])] == i
            connection.execute(_UNASSIGN_SUBJECT, [{"b_s": a["subject_id"], "b_role": a["role"]}
                                                   for a in rows])
            _INSERT['subject_assignments'](connection, rows)

    def _execute(self, connection: Connection,
                 pairs: Iterable[tuple[str, Executable | _Insert]]) -> None:
        """One executemany per non-empty list, in the order given."""
        for name, statement in pairs:
            rows = getattr(self, name)
            if isinstance(statement, _Insert):
                statement(connection, rows)
            elif rows:
                connection.execute(statement, rows)

    def _instance_updates(self) -> list[tuple[Executable, list[dict[str, Any]]]]:
        """The version-checked updates: every column, or only the head for an instance whose
        state did not change; each statement with its rows, none without."""
        full, narrow = [], []
        for version, row in self.changed_instances.values():
            if row.id in self.head_only:
                narrow.append({"b_id": row.id, "b_old": version,
                               **dict(zip(_HEAD_KEYS, _HEAD_VALUES(row), strict=True))})
            else:
                full.append({"b_id": row.id, "b_old": version,
                             **dict(zip(_UPDATED_KEYS, _UPDATED_VALUES(row), strict=True))})
        return [(statement, rows) for statement, rows in ((_INSTANCE_UPDATE, full),
                                                          (_HEAD_UPDATE, narrow)) if rows]


# written in `_send` but never by `_as_one_statement`
_NOT_IN_ONE = ("new_instances", "changed_deadlines", "cancelled_messages", "withdrawals",
               "consents", "assignments", "subject_assignments")
_SHAPES: dict[tuple[Any, ...], Executable] = {}


def _as_one_statement(writes: WriteBatch, updates: list[tuple[Executable, list[dict[str, Any]]]]
                      ) -> tuple[Executable, dict[str, Any]] | None:
    """A step of one instance as a single statement and its parameters (PostgreSQL), or None.

    The close, the new rows and the version-checked update become one UPDATE of the
    instance with the others as data-modifying CTEs, each table's new rows one JSON
    parameter (`json_populate_recordset`): one execution where five paid SQLAlchemy's and
    psycopg's overhead each, and few enough parameters for psycopg to keep the statement
    prepared (bench/transitions.py). All parts see the snapshot the statement starts with,
    so the close touches only deadlines that existed before, as in `flush`; the row count
    is the update's, the version check. Two closes of the same rows in one statement would
    be unpredictable in PostgreSQL, so a step with more than one keeps the pipeline."""
    if len(updates) != 1 or len(updates[0][1]) != 1 or len(writes.closes) > 1 or \
            any(getattr(writes, name) for name in _NOT_IN_ONE):
        return None
    tables = (("new_deadlines", deadlines, [r.values() for r in writes.new_deadlines]),
              ("new_audit", audit, writes.audit), ("new_outbox", outbox, writes.outbox))
    columns = []
    for _, _, rows in tables:
        names = tuple(rows[0]) if rows else ()
        if any(tuple(row) != names for row in rows):
            return None
        columns.append(names)
    statement, rows = updates[0]
    close = writes.closes[0] if writes.closes else None
    shape = (statement is _HEAD_UPDATE, close and close["kind"], *columns)
    combined = _SHAPES.get(shape)
    if combined is None:
        ctes = [_CLOSES[close["kind"]].cte("closed")] if close else []
        ctes += [_rows_cte(name, table, names)
                 for (name, table, _), names in zip(tables, columns, strict=True) if names]
        combined = _SHAPES.setdefault(shape, statement.add_cte(*ctes))  # type: ignore[attr-defined]
    params = dict(rows[0])
    if close:
        params.update(b_i=close["i"], b_s=close.get("s"), b_p=close.get("p"), b_at=close["at"])
    for name, _, table_rows in tables:
        if table_rows:
            params[name] = json.dumps(table_rows, ensure_ascii=False, separators=(",", ":"),
                                      default=_as_stored)
    return combined, params


def _rows_cte(name: str, table: Table, names: tuple[str, ...]) -> Any:
    """INSERT of the rows given as one JSON array, named `name`, into `table`'s `names`."""
    rows = func.json_populate_recordset(literal_column(f"NULL::{table.name}"),
                                        cast(bindparam(name, type_=Text()), JSON))
    picked: Any = select(*(literal_column(f'"{column}"') for column in names)).select_from(rows)
    return insert(table).from_select(list(names), picked).cte(name)


def _as_stored(value: Any) -> str:
    """A value of a row sent as JSON, as its column stores it (times as naive UTC)."""
    if isinstance(value, dt.datetime):
        return stored_utc(value).isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    raise TypeError(f"cannot store {type(value).__name__} as JSON")


def _check_written(written: int, updates: list[tuple[Executable, list[dict[str, Any]]]]) -> None:
    """Refuse the whole batch if an instance was not at the revision it was read at (written
    without the row lock): nothing of it commits."""
    if written != sum(len(rows) for _, rows in updates):
        stale = updates[0][1][0]["b_id"]
        raise ConcurrentModification(stale, 0, None)


def _at_new_versions(connection: Connection,
                     updates: list[tuple[Executable, list[dict[str, Any]]]]) -> int:
    """How many of the updated instances now stand at the version and audit head the update
    gave them (a write that came between would have its own head): the version check asked
    of the database, for a driver that did not count the rows."""
    wanted = [(row["b_id"], row["v_version"], row["v_audit_head"])
              for _, rows in updates for row in rows]
    found = connection.execute(
        select(instances.c.id, instances.c.version, instances.c.audit_head)
        .where(instances.c.id.in_([instance for instance, _, _ in wanted]))).all()
    return len(set(wanted) & {tuple(row) for row in found})


def _synced_rowcount(result: CursorResult[Any]) -> int:
    """A pipelined statement's row count, once the pipeline has synced: SQLAlchemy read the
    driver's count when the statement was sent, before the server had answered (it was -1
    then); psycopg's cursor holds the real one after the sync, closed or not (-1 if a
    release stopped keeping it: `flush` then asks the database)."""
    return int(result.context.cursor.rowcount)


class _Insert:
    """One table's new rows as one executemany.

    `inline()`: a single row is not sent with RETURNING for its id - nothing written in the
    same flush refers to it, and on PostgreSQL the pipeline (`pipelined`) could not read it.
    """

    def __init__(self, table: Table) -> None:
        # built once: a statement made anew per call is walked for its cache key every time
        self.statement = insert(table).inline()

    def __call__(self, connection: Connection, rows: list[dict[str, Any]]) -> None:
        if rows:
            connection.execute(self.statement, rows)


def _unique_violation(exc: IntegrityError) -> bool:
    """A key already there (sqlstate 23505, SQLite's UNIQUE), not another constraint."""
    orig = exc.orig
    return getattr(orig, "sqlstate", None) == "23505" or "UNIQUE constraint" in str(orig)


@contextmanager
def pipelined(connection: Connection) -> Iterator[bool]:
    """On PostgreSQL (psycopg 3), send the statements made inside without waiting for each
    one's answer: libpq's pipeline mode, one round trip for all of them where each paid its
    own (bench/transitions.py). Only for statements whose results nobody reads; an error
    is still raised, as SQLAlchemy's exception for it, by the time the block ends.

    A statement's error met inside the block is held until the pipeline has ended: ending
    an aborted pipeline fails again, and psycopg logs that second failure as a warning when
    it ends with an exception under way, which would say "pipeline aborted" beside every
    refused write."""
    raw = connection.connection.driver_connection if connection.dialect.driver == "psycopg" \
        else None
    if raw is None or not hasattr(raw, "pipeline"):
        yield False
        return
    import psycopg

    failed: DBAPIError | None = None
    try:
        with raw.pipeline():
            try:
                yield True
            except DBAPIError as exc:  # a statement's, fetched while the block still sent
                failed = exc
    except psycopg.Error as exc:  # the final sync's, outside SQLAlchemy's wrapping
        if failed is None:
            raise DBAPIError.instance(None, None, exc, psycopg.Error,
                                      dialect=connection.dialect) from exc
    if failed is not None:  # the pipeline aborted because of it: the one error to tell
        raise failed


_INSERT = {table.name: _Insert(table) for table in (instances, deadlines, audit, outbox,
                                                     consents, assignments,
                                                     subject_assignments, requests, signals)}
_UPDATED = [name for name in INSTANCE_COLUMNS if name not in ("id", "subject_id", "started_at")]
_HEAD = ["version", "audit_head", "audit_seq", "updated_at"]
_STATE = [name for name in _UPDATED if name not in _HEAD]
# one attrgetter each: a sweep reads these off thousands of rows (bench/)
_STATE_VALUES = attrgetter(*_STATE)
_HEAD_VALUES, _HEAD_KEYS = attrgetter(*_HEAD), [f"v_{name}" for name in _HEAD]
_UPDATED_VALUES, _UPDATED_KEYS = attrgetter(*_UPDATED), [f"v_{name}" for name in _UPDATED]
_HEAD_UPDATE = (update(instances)
                .where(instances.c.id == bindparam("b_id"),
                       instances.c.version == bindparam("b_old"))
                .values({name: bindparam(f"v_{name}") for name in _HEAD}))
_INSTANCE_UPDATE = (update(instances)
                    .where(instances.c.id == bindparam("b_id"),
                           instances.c.version == bindparam("b_old"))
                    .values({name: bindparam(f"v_{name}") for name in _UPDATED}))

# a row of `changed_deadlines` whose other columns are as read (DeadlineRow.only_fired):
# the sweep's: three parameters a row where `_DEADLINE_BY_ID` takes ten (bench/sweep.py)
_DEADLINE_FIRED = (update(deadlines).where(deadlines.c.id == bindparam("b_id"))
                   .values(fire_index=bindparam("b_fire_index"),
                           next_fire_at=bindparam("b_next_fire_at")))
_DEADLINE_BY_ID = (update(deadlines).where(deadlines.c.id == bindparam("b_id"))
                   .values(status=bindparam("b_status"), closed_at=bindparam("b_closed_at"),
                           due_at=bindparam("b_due_at"), fire_index=bindparam("b_fire_index"),
                           next_fire_at=bindparam("b_next_fire_at"), fires=bindparam("b_fires"),
                           paused_at=bindparam("b_paused_at"),
                           paused_seconds=bindparam("b_paused_seconds"),
                           extensions=bindparam("b_extensions")))


def met_status(at: Any, due: Any, window_start: Any, paused_at: Any) -> Any:
    """How a deadline met at `at` ends, as SQL (runtime/deadlines.py `closed_status` is the
    same rule in Python): before its window opens met_early; on a paused clock met if it was
    paused in time; else met or met_late by the due time."""
    return case(
        (and_(window_start.is_not(None), at < window_start), literal("met_early")),
        (paused_at.is_not(None), case((paused_at <= due, literal("met")),
                                      else_=literal("met_late"))),
        (due >= at, literal("met")), else_=literal("met_late"))


_MET = met_status(bindparam("b_at"), deadlines.c.due_at, deadlines.c.window_start,
                  deadlines.c.paused_at)


def _close(kind: str) -> Any:
    """One set-based close of an instance's pending deadlines, by what happened."""
    where = [deadlines.c.instance_id == bindparam("b_i"), deadlines.c.status == "pending"]
    status: Any = _MET
    if kind == "state":  # a state was left: its deadlines, not its obligations
        where += [deadlines.c.state == bindparam("b_s"), deadlines.c.met_by.is_(None)]
    elif kind == "end":  # the pathway finished: obligations still open were not met
        status = case((deadlines.c.met_by.is_not(None), literal("unmet")), else_=_MET)
    elif kind == "met_by":
        where.append(deadlines.c.met_by.like(bindparam("b_p")))
    elif kind == "cancelled_by":
        where.append(deadlines.c.cancelled_by.like(bindparam("b_p")))
        status = literal("cancelled")
    else:  # cancel_all: a migration
        status = literal("cancelled")
    return (update(deadlines).where(and_(*where))
            .values(status=status, closed_at=bindparam("b_at"), next_fire_at=None))


CLOSE_KINDS = ("state", "end", "met_by", "cancelled_by", "cancel_all")
_CLOSES = {kind: _close(kind) for kind in CLOSE_KINDS}

_CANCEL_MESSAGE = (update(outbox).where(outbox.c.id == bindparam("b_id"),
                                        outbox.c.status == "pending")
                   .values(status="cancelled", last_error=bindparam("b_reason")))
_WITHDRAW = (update(consents).where(consents.c.instance_id == bindparam("b_i"),
                                    consents.c.sector == bindparam("b_sector"),
                                    consents.c.basis == bindparam("b_basis"),
                                    consents.c.withdrawn_at.is_(None))
             .values(withdrawn_at=bindparam("b_at")))
_UNASSIGN_SUBJECT = (update(subject_assignments)
                     .where(subject_assignments.c.subject_id == bindparam("b_s"),
                            subject_assignments.c.role == bindparam("b_role"),
                            subject_assignments.c.active.is_(True))
                     .values(active=False))
_RECOUNTED = (update(deadlines).where(deadlines.c.id == bindparam("b_id"))
              .values(rule=bindparam("b_rule"), started_at=bindparam("b_start"),
                      window_start=bindparam("b_window")))
_DELIVERED = (update(signals).where(signals.c.id == bindparam("b_id"),
                                    signals.c.delivered_at.is_(None))
              .values(delivered_at=bindparam("b_at"), outcome=bindparam("b_outcome")))
_UNASSIGN = (update(assignments).where(assignments.c.instance_id == bindparam("b_i"),
                                       assignments.c.role == bindparam("b_role"),
                                       assignments.c.active.is_(True))
             .values(active=False))

