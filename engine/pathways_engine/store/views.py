"""The SQL the read models and `audit verify` read with, through Core (no ORM objects).

Streams come ordered by instance so a caller can walk millions of rows with flat memory,
merging several streams instance by instance (audit/verify.py).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from collections.abc import Iterator
from itertools import groupby
from typing import Any

from sqlalchemy import Connection
from sqlalchemy import Select
from sqlalchemy import func
from sqlalchemy import select

from .tables import assignments
from .tables import audit
from .tables import consents
from .tables import deadlines
from .tables import definition_snapshots
from .tables import instances
from .tables import outbox
from .tables import subject_assignments
from .tables import subjects

STREAM_ROWS = 2000


def _stream(connection: Connection, query: Select[Any]) -> Iterator[Any]:
    return iter(connection.execute(query.execution_options(yield_per=STREAM_ROWS)))


def grouped(connection: Connection, query: Select[Any]) -> Iterator[tuple[str, list[Any]]]:
    """(instance id, its rows) for a query ordered by instance id."""
    for instance_id, rows in groupby(_stream(connection, query), key=lambda r: r.instance_id):
        yield str(instance_id), list(rows)


def _only(query: Select[Any], column: Any, ids: list[str] | None) -> Select[Any]:
    return query if ids is None else query.where(column.in_(ids))


def heads(connection: Connection, ids: list[str] | None) -> Iterator[Any]:
    query = _only(select(instances).order_by(instances.c.id), instances.c.id, ids)
    return _stream(connection, query)


def entries(connection: Connection, ids: list[str] | None) -> Iterator[tuple[str, list[Any]]]:
    query = _only(select(audit).order_by(audit.c.instance_id, audit.c.id), audit.c.instance_id, ids)
    return grouped(connection, query)


def state_rows(connection: Connection, table: str,
               ids: list[str] | None) -> Iterator[tuple[str, list[Any]]]:
    chosen = {"deadlines": deadlines, "consents": consents, "assignments": assignments,
              "outbox": outbox}[table]
    query = _only(select(chosen).order_by(chosen.c.instance_id, chosen.c.id),
                  chosen.c.instance_id, ids)
    return grouped(connection, query)


def existing(connection: Connection, ids: Iterable[str]) -> set[str]:
    return set(connection.execute(select(instances.c.id).where(instances.c.id.in_(list(ids))))
               .scalars())


# ---------------------------------------------------------------- read models

def instance(connection: Connection, instance_id: str) -> Any:
    """The instance with its subject, and the pathway of the one that handed it over."""
    parent = instances.alias("parent")
    return connection.execute(
        select(instances, subjects.c.ref.label("subject_ref"),
               subjects.c.birth_date.label("subject_birth_date"),
               parent.c.pathway_id.label("parent_pathway"))
        .join_from(instances, subjects, subjects.c.id == instances.c.subject_id)
        .outerjoin(parent, parent.c.id == instances.c.parent_id)
        .where(instances.c.id == instance_id)).first()


def deadlines_of(connection: Connection, instance_id: str) -> list[Any]:
    return list(connection.execute(select(deadlines).where(deadlines.c.instance_id == instance_id)
                                   .order_by(deadlines.c.due_at, deadlines.c.id)))


def history_of(connection: Connection, instance_id: str) -> list[Any]:
    return list(connection.execute(select(audit).where(audit.c.instance_id == instance_id)
                                   .order_by(audit.c.seq)))


def active_consents(connection: Connection, instance_id: str) -> list[Any]:
    return list(connection.execute(select(consents).where(
        consents.c.instance_id == instance_id, consents.c.withdrawn_at.is_(None))
        .order_by(consents.c.id)))


def active_assignments(connection: Connection, instance_id: str) -> list[Any]:
    return list(connection.execute(select(assignments).where(
        assignments.c.instance_id == instance_id, assignments.c.active.is_(True))
        .order_by(assignments.c.id)))


def first_pending_deadline(connection: Connection, instance_id: str) -> Any:
    return connection.execute(select(deadlines).where(
        deadlines.c.instance_id == instance_id, deadlines.c.status == "pending")
        .order_by(deadlines.c.due_at).limit(1)).first()


def listed(connection: Connection, *, pathway: str | None, state: str | None,
           subject_key: str | None, areas: set[str] | None, limit: int) -> list[Any]:
    query = (select(instances, subjects.c.ref.label("subject_ref"))
             .join_from(instances, subjects, subjects.c.id == instances.c.subject_id))
    if pathway:
        query = query.where(instances.c.pathway_id == pathway)
    if state:
        query = query.where(instances.c.state == state)
    if subject_key:
        query = query.where(subjects.c.ref_key == subject_key)
    if areas is not None:
        query = query.where(instances.c.area.in_(sorted(areas)))
    return list(connection.execute(query.order_by(instances.c.started_at, instances.c.id)
                                   .limit(limit)))


def overdue(connection: Connection, now: dt.datetime, *, role: str | None,
            pathway: str | None, areas: set[str] | None) -> list[Any]:
    query = (select(deadlines, instances.c.pathway_id, instances.c.state.label("instance_state"),
                    instances.c.content_hash, instances.c.area,
                    subjects.c.ref.label("subject_ref"))
             .join_from(deadlines, instances, instances.c.id == deadlines.c.instance_id)
             .join(subjects, subjects.c.id == instances.c.subject_id)
             .where(deadlines.c.status == "pending", deadlines.c.due_at < now)
             .order_by(deadlines.c.due_at, deadlines.c.id))
    if role:
        query = query.where(deadlines.c.responsible == role)
    if pathway:
        query = query.where(instances.c.pathway_id == pathway)
    if areas is not None:
        query = query.where(instances.c.area.in_(sorted(areas)))
    return list(connection.execute(query))


def outbox_rows(connection: Connection, status: str | None,
                limit: int | None = None) -> list[Any]:
    """Messages oldest first; with `limit`, only the newest that many (as `tail` shows)."""
    query = select(outbox)
    if status:
        query = query.where(outbox.c.status == status)
    if limit is None:
        return list(connection.execute(query.order_by(outbox.c.id)))
    return list(connection.execute(query.order_by(outbox.c.id.desc()).limit(limit)))[::-1]


def running_elsewhere(connection: Connection, pathway: str,
                      version: int) -> list[tuple[str, int, str]]:
    """Running instances of `pathway` on any version but `version`: (id, version, state)."""
    return [(r.id, r.pathway_version, r.state) for r in connection.execute(
        select(instances.c.id, instances.c.pathway_version, instances.c.state).where(
            instances.c.pathway_id == pathway, instances.c.status == "active",
            instances.c.pathway_version != version).order_by(instances.c.id))]


def count(connection: Connection, table: str) -> int:
    chosen = {"instances": instances, "audit": audit}[table]
    return int(connection.execute(select(func.count()).select_from(chosen)).scalar() or 0)


# ---------------------------------------------------------------- one child across sectors

def children_of(connection: Connection, instance_id: str) -> list[Any]:
    return list(connection.execute(select(
        instances.c.id, instances.c.pathway_id, instances.c.state, instances.c.status,
        instances.c.handover).where(instances.c.parent_id == instance_id)
        .order_by(instances.c.started_at, instances.c.id)))


def subject_assigned(connection: Connection, subject_id: int) -> list[Any]:
    return list(connection.execute(select(subject_assignments).where(
        subject_assignments.c.subject_id == subject_id, subject_assignments.c.active.is_(True))
        .order_by(subject_assignments.c.id)))


def instances_of_subject(connection: Connection, subject_id: int) -> list[Any]:
    return list(connection.execute(select(instances).where(instances.c.subject_id == subject_id)
                                   .order_by(instances.c.started_at, instances.c.id)))


def open_deadlines_of(connection: Connection, ids: list[str]) -> list[Any]:
    return list(connection.execute(select(deadlines).where(
        deadlines.c.instance_id.in_(ids), deadlines.c.status == "pending")
        .order_by(deadlines.c.due_at, deadlines.c.id))) if ids else []


def consents_of(connection: Connection, ids: list[str]) -> list[Any]:
    return list(connection.execute(select(consents).where(
        consents.c.instance_id.in_(ids), consents.c.withdrawn_at.is_(None))
        .order_by(consents.c.id))) if ids else []


def assignments_of(connection: Connection, ids: list[str]) -> list[Any]:
    return list(connection.execute(select(assignments).where(
        assignments.c.instance_id.in_(ids), assignments.c.active.is_(True))
        .order_by(assignments.c.id))) if ids else []


LATEST_KINDS = ("start", "transition", "internal", "withdrawn", "handover", "joined",
                "migration")


def latest_entries(connection: Connection, ids: list[str], per_instance: int) -> list[Any]:
    """The newest `per_instance` steps of each instance, in one query (a window function)."""
    if not ids:
        return []
    ranked = (select(audit.c.instance_id, audit.c.seq, audit.c.at, audit.c.actor, audit.c.role,
                     audit.c.kind, audit.c.event, audit.c.from_state, audit.c.to_state,
                     func.row_number().over(partition_by=audit.c.instance_id,
                                            order_by=audit.c.seq.desc()).label("rn"))
              .where(audit.c.instance_id.in_(ids), audit.c.kind.in_(LATEST_KINDS)).subquery())
    return list(connection.execute(select(ranked).where(ranked.c.rn <= per_instance)
                                   .order_by(ranked.c.instance_id, ranked.c.seq)))


def snapshots(connection: Connection) -> list[Any]:
    """Every definition version instances have started on (what filters may name)."""
    return list(connection.execute(select(definition_snapshots.c.content_hash,
                                          definition_snapshots.c.source)))
