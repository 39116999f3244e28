"""Read models for `show`, `list`, `history` and `overdue`: plain dicts with stable keys.

The keys are the `--json` contract documented in the README; add keys, never rename them.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from .deadlines import display_status
from .runtime import PathwayEngine
from .runtime import get_instance
from .store.models import AuditEntry
from .store.models import Deadline
from .store.models import Instance
from .store.models import Subject


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value else None


def deadline_view(row: Deadline, now: dt.datetime, zone: ZoneInfo) -> dict[str, Any]:
    return {
        "name": row.name,
        "state": row.state,
        "responsible": row.responsible,
        "due_utc": _iso(row.due_at),
        "due_local": row.due_at.astimezone(zone).isoformat(),
        "status": display_status(row, now, zone),
        "closed_at": _iso(row.closed_at),
        "rule": row.rule,
    }


def audit_view(entry: AuditEntry) -> dict[str, Any]:
    return {
        "seq": entry.seq, "at": _iso(entry.at), "recorded_at": _iso(entry.recorded_at),
        "actor": entry.actor, "role": entry.role, "kind": entry.kind, "event": entry.event,
        "from": entry.from_state, "to": entry.to_state, "changes": entry.changes,
        "note": entry.note,
    }


def show(engine: PathwayEngine, instance_id: str) -> dict[str, Any]:
    now = engine.clock.now()
    with engine.db.sessions() as session, session.begin():
        instance = get_instance(session, instance_id)
        compiled = engine.compiled_for(session, instance.content_hash)
        subject = session.get_one(Subject, instance.subject_id)
        zone = ZoneInfo(compiled.spec.timezone)
        env = engine.guard_values(instance, subject, {}, now)
        may_send: dict[str, list[str]] = {}
        if instance.status == "active":
            for index, transition in compiled.transitions_from(instance.state):
                if compiled.guard_passes(index, env):
                    for role in transition.roles or ["system"]:
                        events = may_send.setdefault(role, [])
                        if transition.event not in events:
                            events.append(transition.event)
        deadlines = session.scalars(select(Deadline).where(Deadline.instance_id == instance.id)
                                    .order_by(Deadline.due_at, Deadline.id))
        return {
            **_summary(instance, subject),
            "title": compiled.spec.title,
            "responsible": compiled.spec.states[instance.state].responsible,
            "data": instance.data,
            "may_send": {role: sorted(ev) for role, ev in sorted(may_send.items())},
            "deadlines": [deadline_view(d, now, zone) for d in deadlines],
            "history": history_of(session, instance.id),
        }


def _summary(instance: Instance, subject: Subject) -> dict[str, Any]:
    return {
        "id": instance.id, "pathway": instance.pathway_id, "version": instance.pathway_version,
        "definition_hash": instance.content_hash, "subject": subject.ref, "area": instance.area,
        "state": instance.state, "status": instance.status, "revision": instance.version,
        "started_at": _iso(instance.started_at), "updated_at": _iso(instance.updated_at),
        "completed_at": _iso(instance.completed_at),
    }


def history_of(session: Session, instance_id: str) -> list[dict[str, Any]]:
    entries = session.scalars(select(AuditEntry).where(AuditEntry.instance_id == instance_id)
                              .order_by(AuditEntry.seq))
    return [audit_view(e) for e in entries]


def history(engine: PathwayEngine, instance_id: str) -> list[dict[str, Any]]:
    with engine.db.sessions() as session, session.begin():
        get_instance(session, instance_id)
        return history_of(session, instance_id)


def list_instances(engine: PathwayEngine, *, pathway: str | None = None, state: str | None = None,
                   subject: str | None = None, limit: int = 1000) -> list[dict[str, Any]]:
    with engine.db.sessions() as session, session.begin():
        query = select(Instance, Subject).join(Subject, Subject.id == Instance.subject_id)
        if pathway:
            query = query.where(Instance.pathway_id == pathway)
        if state:
            query = query.where(Instance.state == state)
        if subject:
            query = query.where(Subject.ref == subject)
        query = query.order_by(Instance.started_at, Instance.id).limit(limit)
        return [_summary(i, s) for i, s in session.execute(query)]


def overdue(engine: PathwayEngine, *, role: str | None = None,
            pathway: str | None = None) -> list[dict[str, Any]]:
    now = engine.clock.now()
    with engine.db.sessions() as session, session.begin():
        query = (select(Deadline, Instance, Subject)
                 .join(Instance, Instance.id == Deadline.instance_id)
                 .join(Subject, Subject.id == Instance.subject_id)
                 .where(Deadline.status == "pending", Deadline.due_at < now)
                 .order_by(Deadline.due_at, Deadline.id))
        if role:
            query = query.where(Deadline.responsible == role)
        if pathway:
            query = query.where(Instance.pathway_id == pathway)
        rows = []
        for deadline, instance, subject in session.execute(query):
            zone = ZoneInfo(engine.compiled_for(session, instance.content_hash).spec.timezone)
            late = now - deadline.due_at
            rows.append({
                "instance": instance.id, "pathway": instance.pathway_id, "subject": subject.ref,
                "state": instance.state, "deadline": deadline.name,
                "responsible": deadline.responsible, "due_utc": _iso(deadline.due_at),
                "due_local": deadline.due_at.astimezone(zone).isoformat(),
                "overdue_seconds": int(late.total_seconds()),
                "overdue_by": _humanise(late), "rule": deadline.rule,
            })
        return rows


def _humanise(delta: dt.timedelta) -> str:
    days, seconds = delta.days, delta.seconds
    hours = seconds // 3600
    if days:
        return f"{days} d {hours} h"
    return f"{hours} h {(seconds % 3600) // 60} min"
