"""The SQL the step path and the sweep read with (the read models have store/views.py).

A step reads its instance, subject, assignments and consents in one statement: the last two
come as JSON aggregates of correlated subqueries, so a step that queues messages needs no
extra round trip to know who receives them and with which legal basis.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from dataclasses import fields
from functools import cache
from typing import Any

from sqlalchemy import ColumnElement
from sqlalchemy import Connection
from sqlalchemy import Select
from sqlalchemy import bindparam
from sqlalchemy import func
from sqlalchemy import select

from .rows import INSTANCE_COLUMNS
from .rows import DeadlineRow
from .rows import InstanceRow
from .rows import Loaded
from .rows import SubjectRow
from .rows import TrailHead
from .rows import fires_from_json
from .tables import assignments
from .tables import audit
from .tables import consents
from .tables import deadlines
from .tables import definition_snapshots
from .tables import instances
from .tables import outbox
from .tables import requests
from .tables import signals
from .tables import subject_assignments
from .tables import subjects


def json_rows(dialect: str, *columns: ColumnElement[Any]) -> ColumnElement[Any]:
    """A JSON array of arrays, one per row (the aggregate each dialect names differently)."""
    if dialect == "postgresql":
        return func.json_agg(func.json_build_array(*columns))
    return func.json_group_array(func.json_array(*columns))


def _parsed(value: Any) -> list[Any]:
    if value is None or value == "[]":  # SQLite's aggregate of no rows: most instances' three
        return []
    return list(json.loads(value) if isinstance(value, str) else value)


@cache
def _load_query(dialect: str) -> Select[Any]:
    """Built once per dialect, so SQLAlchemy compiles it once (its cache keys on the object)."""
    a, c, sa = assignments.alias("a"), consents.alias("c"), subject_assignments.alias("sa")
    assigned = (select(json_rows(dialect, a.c.role, a.c.party))
                .where(a.c.instance_id == instances.c.id, a.c.active.is_(True))
                .scalar_subquery())
    subject_assigned = (select(json_rows(dialect, sa.c.role, sa.c.party))
                        .where(sa.c.subject_id == instances.c.subject_id,
                               sa.c.active.is_(True))
                        .scalar_subquery())
    bases = (select(json_rows(dialect, c.c.id, c.c.sector, c.c.basis, c.c.reference))
             .where(c.c.instance_id == instances.c.id, c.c.withdrawn_at.is_(None))
             .scalar_subquery())
    return (select(*(instances.c[name] for name in INSTANCE_COLUMNS),
                   subjects.c.ref.label("s_ref"), subjects.c.birth_date.label("s_birth_date"),
                   subjects.c.name.label("s_name"), subjects.c.personal_id.label("s_personal_id"),
                   assigned.label("assigned"), bases.label("bases"),
                   subject_assigned.label("subject_assigned"))
            .join_from(instances, subjects, subjects.c.id == instances.c.subject_id))


_WIDTH = len(INSTANCE_COLUMNS)


def _loaded(row: Any) -> Loaded:
    # by position (the order _load_query selects in): a Row's attribute access costs ten
    # times its index, and a sweep reads thousands of these rows
    instance = InstanceRow(*row[:_WIDTH])
    instance.data = dict(instance.data or {})
    s_ref, s_birth_date, s_name, s_personal_id, assigned, bases, subject_assigned = \
        row[_WIDTH:]
    subject = SubjectRow(instance.subject_id, s_ref, s_birth_date, s_name, s_personal_id)
    return Loaded(instance, subject, {str(role): str(party) for role, party in _parsed(assigned)},
                  [(int(i), str(s), str(b), str(r)) for i, s, b, r in _parsed(bases)],
                  {str(role): str(party) for role, party in _parsed(subject_assigned)})


@cache
def _locked_load(dialect: str, lock: bool, skip_locked: bool) -> Select[Any]:
    """The load statement for a set of ids, built once (an expanding IN keeps it cacheable)."""
    query = _load_query(dialect).where(instances.c.id.in_(bindparam("ids", expanding=True)))
    if lock:
        query = query.order_by(instances.c.id).with_for_update(of=instances.c.id,
                                                               skip_locked=skip_locked)
    return query


def load_instances(connection: Connection, ids: Iterable[str], *, lock: bool,
                   skip_locked: bool = False) -> dict[str, Loaded]:
    """The instances with these ids (missing ones are absent), locked for writing if asked.

    On PostgreSQL the lock is FOR UPDATE on the instance rows only; with `skip_locked` rows
    another transaction holds are left out (the sweep takes what nobody is working on). On
    SQLite the write transaction's BEGIN IMMEDIATE already excludes every other writer.
    """
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    query = _locked_load(connection.dialect.name, lock, skip_locked)
    return {row.id: _loaded(row) for row in connection.execute(query, {"ids": wanted})}


def snapshot_source(connection: Connection, content_hash: str) -> str | None:
    return connection.execute(select(definition_snapshots.c.source).where(
        definition_snapshots.c.content_hash == content_hash)).scalar()


def recent_snapshots(connection: Connection, limit: int) -> list[str]:
    """The content hashes of the `limit` newest stored definition snapshots, newest first."""
    return list(connection.execute(
        select(definition_snapshots.c.content_hash)
        .order_by(definition_snapshots.c.created_at.desc(), definition_snapshots.c.content_hash)
        .limit(limit)).scalars())


def snapshot_exists(connection: Connection, content_hash: str) -> bool:
    return connection.execute(select(definition_snapshots.c.content_hash).where(
        definition_snapshots.c.content_hash == content_hash)).first() is not None


def other_snapshots(connection: Connection, pathway: str, version: int,
                    other_than: str) -> list[tuple[str, dt.datetime]]:
    """(source, stored at) of every other snapshot of this pathway version, oldest first."""
    return [(row.source, row.created_at) for row in connection.execute(
        select(definition_snapshots.c.source, definition_snapshots.c.created_at).where(
            definition_snapshots.c.pathway_id == pathway,
            definition_snapshots.c.version == version,
            definition_snapshots.c.content_hash != other_than)
        .order_by(definition_snapshots.c.created_at))]


def subject_by_key(connection: Connection, ref_key: str) -> SubjectRow | None:
    row = connection.execute(select(subjects).where(subjects.c.ref_key == ref_key)).first()
    if row is None:
        return None
    return SubjectRow(row.id, row.ref, row.birth_date, row.name, row.personal_id)


def lock_subject(connection: Connection, ref_key: str) -> SubjectRow:
    """The subject row, locked (PostgreSQL) so two starts for one child take turns."""
    row = connection.execute(select(subjects).where(subjects.c.ref_key == ref_key)
                             .with_for_update()).one()
    return SubjectRow(row.id, row.ref, row.birth_date, row.name, row.personal_id)


def running_instance(connection: Connection, subject_id: int, pathway_id: str) -> str | None:
    return connection.execute(select(instances.c.id).where(
        instances.c.subject_id == subject_id, instances.c.pathway_id == pathway_id,
        instances.c.status == "active").order_by(instances.c.started_at).limit(1)).scalar()


def lock_head(connection: Connection, instance_id: str) -> TrailHead:
    """The instance's audit head, its row locked so appends stay in one line."""
    row = connection.execute(select(instances.c.audit_head, instances.c.audit_seq)
                             .where(instances.c.id == instance_id).with_for_update()).one()
    return TrailHead(instance_id, row.audit_seq, row.audit_head)


def pending_messages(connection: Connection, instance_id: str) -> list[Any]:
    return list(connection.execute(select(
        outbox.c.id, outbox.c.idempotency_key, outbox.c.role, outbox.c.template,
        outbox.c.personal_data, outbox.c.legal_basis).where(
        outbox.c.instance_id == instance_id, outbox.c.status == "pending").order_by(outbox.c.id)))


def queued_requests(connection: Connection, instance_id: str) -> dict[str, dict[str, Any]]:
    """message idempotency key -> the `changes` of the audit entry that queued it."""
    found: dict[str, dict[str, Any]] = {}
    for changes, effects in connection.execute(select(audit.c.changes, audit.c.effects).where(
            audit.c.instance_id == instance_id, audit.c.kind == "notification_queued")):
        for key, *_ in (effects or {}).get("messages", []):
            found[str(key)] = dict(changes or {})
    return found


def stored_request(connection: Connection, key: str) -> Any:
    return connection.execute(select(requests).where(requests.c.key == key)).first()


# the columns a deadline is read with, in DeadlineRow's order (its rule is not read: rows
# are updated by id), so a row builds one positionally (see _loaded)
_DEADLINE_COLUMNS = tuple(deadlines.c[f.name] for f in fields(DeadlineRow)
                          if f.name not in ("rule", "changed", "loaded"))


def _deadline(row: Any) -> DeadlineRow:
    # DeadlineRow's own order: its rule, not read, comes between closed_at and fires
    (instance_id, name, state, responsible, started_at, due_at, status, closed_at, fires,
     *rest) = row
    read = DeadlineRow(instance_id, name, state, responsible, started_at, due_at, status,
                       closed_at, {}, fires_from_json(fires), *rest)
    read.loaded = read.wide()
    return read


_PENDING = (select(*_DEADLINE_COLUMNS)
            .where(deadlines.c.instance_id.in_(bindparam("ids", expanding=True)),
                   deadlines.c.status == "pending").order_by(deadlines.c.id))


def pending_deadlines(connection: Connection, instance_ids: Iterable[str]) -> list[DeadlineRow]:
    """Every pending deadline of these instances, in the order they were opened."""
    wanted = sorted(set(instance_ids))
    if not wanted:
        return []
    return [_deadline(row) for row in connection.execute(_PENDING, {"ids": wanted})]


def due_instances(connection: Connection, now: dt.datetime, limit: int,
                  exclude: Iterable[str] = ()) -> list[str]:
    """Instances with a wake-up due, earliest first: the sweep locks these, then their rows.

    Walks the due wake-ups in index order (next_fire_at) and stops at `limit` instances, so
    a backlog of millions costs what one batch needs, not a scan of the backlog per batch.
    """
    skipped = set(exclude)
    found: list[str] = []
    seen: set[str] = set()
    window = limit * 4 + len(skipped)
    query = (select(deadlines.c.instance_id)
             .where(deadlines.c.next_fire_at <= now, deadlines.c.status == "pending")
             .order_by(deadlines.c.next_fire_at, deadlines.c.id))
    offset = 0
    while len(found) < limit:
        ids = list(connection.execute(query.limit(window).offset(offset)).scalars())
        for instance_id in ids:
            if instance_id not in skipped and instance_id not in seen:
                seen.add(instance_id)
                found.append(instance_id)
                if len(found) == limit:
                    break
        if len(ids) < window:
            break
        offset += window
    return found


def count_due(connection: Connection, now: dt.datetime) -> int:
    return int(connection.execute(select(func.count()).select_from(deadlines).where(
        deadlines.c.next_fire_at <= now, deadlines.c.status == "pending")).scalar() or 0)


def parent_contract(connection: Connection, parent_id: str) -> str | None:
    """The content hash the parent instance runs on (its handover says what it waits for)."""
    return connection.execute(select(instances.c.content_hash).where(
        instances.c.id == parent_id, instances.c.status == "active")).scalar()


def running_children(connection: Connection, parent_id: str) -> list[tuple[str, str]]:
    """(instance, handover) of the running pathways this instance handed over to."""
    return [(row.id, row.handover) for row in connection.execute(
        select(instances.c.id, instances.c.handover).where(
            instances.c.parent_id == parent_id, instances.c.status == "active")
        .order_by(instances.c.id))]


def signal_targets(connection: Connection, limit: int, only: Iterable[str] | None = None
                   ) -> list[str]:
    """Instances with a signal waiting, oldest signal first."""
    query = (select(signals.c.instance_id, func.min(signals.c.id).label("first"))
             .where(signals.c.delivered_at.is_(None)).group_by(signals.c.instance_id)
             .order_by("first").limit(limit))
    if only is not None:
        query = query.where(signals.c.instance_id.in_(sorted(set(only))))
    return [row.instance_id for row in connection.execute(query)]


def pending_signals(connection: Connection, instance_ids: Iterable[str]) -> list[Any]:
    """Signals for instances this transaction holds locked: nobody else applies them now."""
    wanted = sorted(set(instance_ids))
    if not wanted:
        return []
    return list(connection.execute(select(signals).where(
        signals.c.instance_id.in_(wanted), signals.c.delivered_at.is_(None))
        .order_by(signals.c.id)))


def closed_at(connection: Connection, instance_id: str, at: dt.datetime) -> list[DeadlineRow]:
    """The deadlines of an instance closed at exactly `at` (by the step an undo takes back)."""
    query = (select(*_DEADLINE_COLUMNS)
             .where(deadlines.c.instance_id == instance_id, deadlines.c.closed_at == at,
                    deadlines.c.status != "pending").order_by(deadlines.c.id))
    return [_deadline(row) for row in connection.execute(query)]
