"""Read models for `show`, `list`, `history` and `overdue`: plain dicts with stable keys.

The keys are the `--json` contract documented in the README; add keys, never rename them.
Each read is one snapshot. Personal fields (declared `personal: true`) are shown only to a
viewer - an authorized actor in a role - whose sector the instance has consent or a legal
basis for, as in messages; anyone else sees a placeholder saying why.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING
from typing import Any
from zoneinfo import ZoneInfo

from pathways_engine.definition.spec import PathwaySpec
from pathways_engine.definition.values import age_on
from pathways_engine.errors import InstanceNotFound
from pathways_engine.runtime.deadlines import display_status
from pathways_engine.store import views
from pathways_engine.store.rows import legal_bases

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from pathways_engine.runtime.engine import PathwayEngine

HIDDEN = "(personal: give --as and --role)"


@dataclass(frozen=True)
class Viewer:
    """Who reads: an actor in a role of the pathway (already authorized by the caller)."""

    actor: str
    role: str


# checks the instance's area against the reader's, inside the read (raises to refuse)
AuthorizeRead = Callable[[str | None], None]


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value else None


def hidden_for(spec: PathwaySpec, viewer: Viewer | None, bases: dict[str, str]) -> str | None:
    """Why personal fields are hidden from `viewer`, or None if they may be shown."""
    if viewer is None:
        return HIDDEN
    role = spec.roles.get(viewer.role)
    if role is None:
        return f"(personal: {viewer.role!r} is not a role of this pathway)"
    if role.sector not in bases:
        return f"(personal: no consent or legal basis for {role.sector})"
    return None


def _redacted(values: dict[str, Any], personal: set[str], why: str | None) -> dict[str, Any]:
    if why is None:
        return dict(values)
    return {k: (why if k in personal and v is not None else v) for k, v in values.items()}


def deadline_view(row: Any, now: dt.datetime, zone: ZoneInfo) -> dict[str, Any]:
    return {
        "name": row.name, "state": row.state, "responsible": row.responsible,
        "due_utc": _iso(row.due_at), "due_local": row.due_at.astimezone(zone).isoformat(),
        "status": display_status(row.status, row.due_at, now, zone),
        "closed_at": _iso(row.closed_at), "rule": row.rule,
    }


def audit_view(entry: Any, personal: set[str], why: str | None) -> dict[str, Any]:
    changes = dict(entry.changes or {})
    if why is not None and entry.kind in ("start", "transition", "correction"):
        changes = {k: ([why if x is not None else None for x in v] if k in personal else v)
                   for k, v in changes.items()}
    return {
        "seq": entry.seq, "at": _iso(entry.at), "recorded_at": _iso(entry.recorded_at),
        "actor": entry.actor, "role": entry.role, "kind": entry.kind, "event": entry.event,
        "from": entry.from_state, "to": entry.to_state, "changes": changes, "note": entry.note,
    }


def summary(row: Any) -> dict[str, Any]:
    return {
        "id": row.id, "pathway": row.pathway_id, "version": row.pathway_version,
        "definition_hash": row.content_hash, "subject": row.subject_ref, "area": row.area,
        "state": row.state, "status": row.status, "revision": row.version,
        "started_at": _iso(row.started_at), "updated_at": _iso(row.updated_at),
        "completed_at": _iso(row.completed_at),
    }


def _read(engine: PathwayEngine, connection: Connection, instance_id: str,
          authorize: AuthorizeRead | None) -> Any:
    row = views.instance(connection, instance_id)
    if row is None:
        raise InstanceNotFound(instance_id)
    if authorize is not None:
        authorize(row.area)
    return row


def show(engine: PathwayEngine, instance_id: str, *, viewer: Viewer | None = None,
         authorize: AuthorizeRead | None = None) -> dict[str, Any]:
    now = engine.clock.now()
    with engine.db.reading() as connection:
        row = _read(engine, connection, instance_id, authorize)
        compiled = engine.compiled_for(connection, row.content_hash)
        spec = compiled.spec
        zone = ZoneInfo(spec.timezone)
        bases = legal_bases([(c.id, c.sector, c.basis, c.reference)
                             for c in views.active_consents(connection, instance_id)])
        personal = {n for n, f in spec.fields.items() if f.personal}
        why = hidden_for(spec, viewer, bases)
        years, months = age_on(row.subject_birth_date, now.date())
        env = {**row.data, "age_years": years, "age_months": months}
        may_send: dict[str, list[str]] = {}
        if row.status == "active":
            for index, transition in compiled.transitions_from(row.state):
                if compiled.guard_passes(index, env):
                    for role in transition.roles or ["system"]:
                        events = may_send.setdefault(role, [])
                        if transition.event not in events:
                            events.append(transition.event)
        return {
            **summary(row),
            "title": spec.title,
            "responsible": spec.states[row.state].responsible,
            "data": _redacted(row.data, personal, why),
            "may_send": {role: sorted(ev) for role, ev in sorted(may_send.items())},
            "deadlines": [deadline_view(d, now, zone)
                          for d in views.deadlines_of(connection, instance_id)],
            "history": [audit_view(e, personal, why)
                        for e in views.history_of(connection, instance_id)],
        }


def history(engine: PathwayEngine, instance_id: str, *, viewer: Viewer | None = None,
            authorize: AuthorizeRead | None = None) -> list[dict[str, Any]]:
    with engine.db.reading() as connection:
        row = _read(engine, connection, instance_id, authorize)
        spec = engine.compiled_for(connection, row.content_hash).spec
        bases = legal_bases([(c.id, c.sector, c.basis, c.reference)
                             for c in views.active_consents(connection, instance_id)])
        personal = {n for n, f in spec.fields.items() if f.personal}
        why = hidden_for(spec, viewer, bases)
        return [audit_view(e, personal, why) for e in views.history_of(connection, instance_id)]


def list_instances(engine: PathwayEngine, *, pathway: str | None = None, state: str | None = None,
                   subject: str | None = None, areas: set[str] | None = None,
                   limit: int = 1000) -> list[dict[str, Any]]:
    from pathways_engine.runtime.subjects import key_of

    with engine.db.reading() as connection:
        rows = views.listed(connection, pathway=pathway, state=state,
                            subject_key=key_of(subject) if subject else None, areas=areas,
                            limit=limit)
        return [summary(r) for r in rows]


def overdue(engine: PathwayEngine, *, role: str | None = None, pathway: str | None = None,
            areas: set[str] | None = None) -> list[dict[str, Any]]:
    now = engine.clock.now()
    with engine.db.reading() as connection:
        rows = []
        for row in views.overdue(connection, now, role=role, pathway=pathway, areas=areas):
            zone = ZoneInfo(engine.compiled_for(connection, row.content_hash).spec.timezone)
            late = now - row.due_at
            rows.append({
                "instance": row.instance_id, "pathway": row.pathway_id,
                "subject": row.subject_ref, "state": row.instance_state,
                "deadline": row.name, "responsible": row.responsible,
                "due_utc": _iso(row.due_at), "due_local": row.due_at.astimezone(zone).isoformat(),
                "overdue_seconds": int(late.total_seconds()), "overdue_by": humanise(late),
                "rule": row.rule,
            })
        return rows


def humanise(delta: dt.timedelta) -> str:
    days, seconds = delta.days, delta.seconds
    hours = seconds // 3600
    if days:
        return f"{days} d {hours} h"
    return f"{hours} h {(seconds % 3600) // 60} min"
