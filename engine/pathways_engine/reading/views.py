"""Read models for `show`, `list`, `history` and `overdue`: plain dicts with stable keys.

The keys are the `--json` contract documented in the README; add keys, never rename them.
Each read is one snapshot, and works from the stored definition's read view
(definition/view.py), so a read command never builds the full definition model. Personal
fields (declared `personal: true`) are shown only to a viewer - an authorized actor in a role
- whose sector the instance has consent or a legal basis for, as in messages; anyone else sees
a placeholder saying why.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING
from typing import Any
from typing import Protocol
from zoneinfo import ZoneInfo

from pathways_engine.definition.view import ReadView
from pathways_engine.definition.view import cached_view
from pathways_engine.errors import DatabaseError
from pathways_engine.errors import InstanceNotFound
from pathways_engine.ports import Clock
from pathways_engine.rules.ages import age_on
from pathways_engine.rules.calendars import moment
from pathways_engine.rules.status import display_status
from pathways_engine.store import reads
from pathways_engine.store import views
from pathways_engine.store.rows import legal_bases

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from pathways_engine.store.database import Database


class Reader(Protocol):
    """What a read needs: the database and the clock (the engine, or the CLI's app)."""

    @property
    def db(self) -> Database: ...

    @property
    def clock(self) -> Clock: ...


def read_view(connection: Connection, content_hash: str) -> ReadView:
    """The read view of the definition an instance is pinned to (parsed once per process)."""
    found = cached_view(content_hash, None)
    if found is None:
        found = cached_view(content_hash, reads.snapshot_source(connection, content_hash))
    if found is None:  # pragma: no cover - guarded by a foreign key
        raise DatabaseError(f"definition snapshot {content_hash[:12]} is missing")
    return found

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


def hidden_for(sectors: dict[str, str], viewer: Viewer | None,
               bases: dict[str, str]) -> str | None:
    """Why personal fields are hidden from `viewer`, or None if they may be shown.

    `sectors` maps the pathway's roles to their sectors."""
    if viewer is None:
        return HIDDEN
    sector = sectors.get(viewer.role)
    if sector is None:
        return f"(personal: {viewer.role!r} is not a role of this pathway)"
    if sector not in bases:
        return f"(personal: no consent or legal basis for {sector})"
    return None


def _redacted(values: dict[str, Any], personal: set[str], why: str | None) -> dict[str, Any]:
    if why is None:
        return dict(values)
    return {k: (why if k in personal and v is not None else v) for k, v in values.items()}


def deadline_view(row: Any, now: dt.datetime, zone: ZoneInfo) -> dict[str, Any]:
    return {
        "name": row.name, "state": row.state, "responsible": row.responsible,
        "obligation": row.met_by is not None, "started_utc": _iso(row.started_at),
        "due_utc": _iso(row.due_at), "due_local": row.due_at.astimezone(zone).isoformat(),
        "status": display_status(row.status, row.due_at, now, zone, row.paused_at is not None),
        "closed_at": _iso(row.closed_at), "rule": row.rule,
        "occurrence": row.occurrence, "extensions": row.extensions,
        "paused_since": _iso(row.paused_at), "paused_seconds": row.paused_seconds,
        "window_start": _iso(row.window_start),
    }


def audit_view(entry: Any, personal: set[str], why: str | None) -> dict[str, Any]:
    changes = dict(entry.changes or {})
    if why is not None and entry.kind in ("start", "transition", "internal", "correction"):
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


def _read(connection: Connection, instance_id: str, authorize: AuthorizeRead | None) -> Any:
    row = views.instance(connection, instance_id)
    if row is None:
        raise InstanceNotFound(instance_id)
    if authorize is not None:
        authorize(row.area)
    return row


def show(reader: Reader, instance_id: str, *, viewer: Viewer | None = None,
         authorize: AuthorizeRead | None = None, language: str | None = None
         ) -> dict[str, Any]:
    """One instance as a reader sees it; titles in `language` if the pathway has it, else in
    the pathway's own."""
    now = reader.clock.now()
    with reader.db.reading() as connection:
        row = _read(connection, instance_id, authorize)
        view = read_view(connection, row.content_hash)
        zone = ZoneInfo(view.timezone)
        lang = language if language in view.languages else view.fallback_language
        bases = legal_bases([(c.id, c.sector, c.basis, c.reference)
                             for c in views.active_consents(connection, instance_id)])
        personal = set(view.personal)
        why = hidden_for(view.sectors, viewer, bases)
        years, months = age_on(row.subject_birth_date, now.date())
        env = _GuardValues({**row.data, "age_years": years, "age_months": months},
                           now, zone, view.country)
        assigned = {a.role: {"party": a.party, "for": "child"}
                    for a in views.subject_assigned(connection, row.subject_id)}
        assigned.update({a.role: {"party": a.party, "for": "pathway"}
                         for a in views.active_assignments(connection, instance_id)})
        return {
            **summary(row),
            "title": view.title,
            "responsible": view.responsible[row.state],
            "parent": ({"id": row.parent_id, "handover": row.handover,
                        "pathway": row.parent_pathway} if row.parent_id else None),
            "children": [{"id": c.id, "pathway": c.pathway_id, "state": c.state,
                          "status": c.status, "handover": c.handover}
                         for c in views.children_of(connection, instance_id)],
            "assigned": assigned,
            "consents": [{"sector": sector, "basis": text.split(":", 1)[0],
                          "reference": text.split(": ", 1)[1]}
                         for sector, text in sorted(bases.items())],
            "data": _redacted(row.data, personal, why),
            "may_send": view.may_send(row.state, env) if row.status == "active" else {},
            "language": lang, "timezone": view.timezone,
            "title_text": view.text(view.title, lang, row.pathway_id),
            "state_title": view.text(view.state_titles.get(row.state), lang, row.state),
            "responsible_label": (view.text((view.role_labels or {}).get(
                view.responsible[row.state] or ""), lang, view.responsible[row.state] or "")
                if view.responsible[row.state] else None),
            "deadlines": _titled(_folded([deadline_view(d, now, zone)
                                          for d in views.deadlines_of(connection, instance_id)]),
                                 view, lang),
            "history": [audit_view(e, personal, why)
                        for e in views.history_of(connection, instance_id)],
        }


class _GuardValues(dict[str, Any]):
    """What `may_send`'s guards read; the moment (hour, weekday, holiday, working day) only
    when a guard asks, so `show` loads no holiday calendar for pathways that never ask."""

    def __init__(self, values: dict[str, Any], now: dt.datetime, zone: ZoneInfo,
                 country: str) -> None:
        super().__init__(values)
        self._when: tuple[dt.datetime, ZoneInfo, str] | None = (now, zone, country)

    def get(self, key: str, default: Any = None) -> Any:
        if key.startswith("event_") and key not in self and self._when is not None:
            self.update(moment(*self._when))
            self._when = None
        return super().get(key, default)


def _folded(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mark a deadline a later row of the same name and state replaced (a migration cancels
    the old version's and opens the new one's): `superseded`, so it is not read twice."""
    latest = {(r["name"], r["state"]): i for i, r in enumerate(rows)}
    for i, r in enumerate(rows):
        r["superseded"] = latest[(r["name"], r["state"])] != i and r["status"] == "cancelled"
    return rows


def _titled(rows: list[dict[str, Any]], view: Any, lang: str) -> list[dict[str, Any]]:
    for r in rows:
        r["title"] = view.text((view.deadline_titles or {}).get(r["name"]), lang,
                               r["name"].replace("_", " "))
    return rows


def history(reader: Reader, instance_id: str, *, viewer: Viewer | None = None,
            authorize: AuthorizeRead | None = None) -> list[dict[str, Any]]:
    with reader.db.reading() as connection:
        row = _read(connection, instance_id, authorize)
        view = read_view(connection, row.content_hash)
        bases = legal_bases([(c.id, c.sector, c.basis, c.reference)
                             for c in views.active_consents(connection, instance_id)])
        personal = set(view.personal)
        why = hidden_for(view.sectors, viewer, bases)
        return [audit_view(e, personal, why) for e in views.history_of(connection, instance_id)]


def list_instances(reader: Reader, *, pathway: str | None = None, state: str | None = None,
                   subject: str | None = None, areas: set[str] | None = None,
                   limit: int = 1000) -> list[dict[str, Any]]:
    from pathways_engine.runtime.subjects import key_of

    with reader.db.reading() as connection:
        rows = views.listed(connection, pathway=pathway, state=state,
                            subject_key=key_of(subject) if subject else None, areas=areas,
                            limit=limit)
        return [{**summary(r), "responsible": read_view(connection, r.content_hash)
                 .responsible.get(r.state) if r.status == "active" else None} for r in rows]


def overdue(reader: Reader, *, role: str | None = None, pathway: str | None = None,
            areas: set[str] | None = None, language: str | None = None) -> list[dict[str, Any]]:
    """Pending deadlines past due; titles in `language` where the pathway has it."""
    now = reader.clock.now()
    with reader.db.reading() as connection:
        rows = []
        for row in views.overdue(connection, now, role=role, pathway=pathway, areas=areas):
            view = read_view(connection, row.content_hash)
            zone = ZoneInfo(view.timezone)
            late = now - row.due_at
            rows.append({
                "instance": row.instance_id, "pathway": row.pathway_id,
                "subject": row.subject_ref, "state": row.instance_state, "area": row.area,
                "deadline": row.name, "responsible": row.responsible,
                "deadline_title": view.text(
                    (view.deadline_titles or {}).get(row.name),
                    language if language in view.languages else None,
                    row.name.replace("_", " ")),
                "due_utc": _iso(row.due_at), "due_local": row.due_at.astimezone(zone).isoformat(),
                "overdue_seconds": int(late.total_seconds()), "overdue_by": humanise(late),
                "rule": row.rule,
            })
        return rows


def humanise(delta: dt.timedelta, language: str = "en") -> str:
    """How long, as people say it ("3 days", "5 timer"): the largest whole unit, counted
    down (3 days 13 hours is "3 days"; Babel's format_timedelta would round it to 4, and 53
    days to "2 months"), worded by CLDR through Babel."""
    from babel.units import format_unit

    seconds = int(abs(delta).total_seconds())
    for unit, size in (("duration-day", 86400), ("duration-hour", 3600)):
        if seconds >= size:
            return str(format_unit(seconds // size, unit, length="long", locale=language))
    return str(format_unit(seconds // 60, "duration-minute", length="long", locale=language))
