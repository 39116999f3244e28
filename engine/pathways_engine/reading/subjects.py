"""One child across sectors: every pathway, what is open, who is responsible, who the contact
person is, which consents exist - in a fixed number of queries however many pathways.

Personal fields are shown per pathway only where the viewer's sector has consent or a legal
basis in that pathway (the same rule as `show`).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any
from zoneinfo import ZoneInfo

from pathways_engine.errors import InvalidArgument
from pathways_engine.rules.ages import age_on
from pathways_engine.store import reads
from pathways_engine.store import views
from pathways_engine.store.rows import legal_bases

from .views import Reader
from .views import Viewer
from .views import _iso
from .views import _redacted
from .views import deadline_view
from .views import hidden_for
from .views import read_view

LATEST = 3


def subject(reader: Reader, ref: str, *, viewer: Viewer | None = None,
            language: str | None = None, areas: set[str] | None = None) -> dict[str, Any]:
    from pathways_engine.runtime.subjects import key_of

    now = reader.clock.now()
    with reader.db.reading() as connection:
        found = reads.subject_by_key(connection, key_of(ref))
        if found is None:
            raise InvalidArgument(f"no child with reference {ref!r} has a pathway here")
        rows = [r for r in views.instances_of_subject(connection, found.id)
                if areas is None or r.area in areas]
        ids = [r.id for r in rows]
        open_rows: dict[str, list[Any]] = defaultdict(list)
        for d in views.open_deadlines_of(connection, ids):
            open_rows[d.instance_id].append(d)
        consents: dict[str, list[Any]] = defaultdict(list)
        for c in views.consents_of(connection, ids):
            consents[c.instance_id].append(c)
        assigned: dict[str, dict[str, str]] = defaultdict(dict)
        for a in views.assignments_of(connection, ids):
            assigned[a.instance_id][a.role] = a.party
        latest: dict[str, list[Any]] = defaultdict(list)
        for e in views.latest_entries(connection, ids, LATEST):
            latest[e.instance_id].append(e)
        everywhere = {a.role: a.party for a in views.subject_assigned(connection, found.id)}
        pathways = [_pathway(connection, row, now, language, viewer, open_rows[row.id],
                             consents[row.id], {**everywhere, **assigned[row.id]},
                             latest[row.id]) for row in rows]
    years, _ = age_on(found.birth_date, now.date())
    return {
        "subject": found.ref, "age_years": years,
        "contact_person": everywhere.get("contact_person") or next(
            (p["assigned"]["contact_person"] for p in pathways
             if p["status"] == "active" and "contact_person" in p["assigned"]), None),
        "assigned_for_the_child": everywhere,
        "pathways": pathways,
    }


def _pathway(connection: Any, row: Any, now: dt.datetime, language: str | None,
             viewer: Viewer | None, open_rows: list[Any], consents: list[Any],
             assigned: dict[str, str], latest: list[Any]) -> dict[str, Any]:
    view = read_view(connection, row.content_hash)
    zone = ZoneInfo(view.timezone)
    lang = language if language in view.languages else view.fallback_language
    bases = legal_bases([(c.id, c.sector, c.basis, c.reference) for c in consents])
    why = hidden_for(view.sectors, viewer, bases)
    responsible = view.responsible.get(row.state)
    deadlines = []
    for d in open_rows:
        shown = deadline_view(d, now, zone)
        shown["title"] = view.text((view.deadline_titles or {}).get(d.name), lang, d.name)
        deadlines.append(shown)
    return {
        "id": row.id, "pathway": row.pathway_id, "version": row.pathway_version,
        "title": view.text(view.title, lang, row.pathway_id),
        "state": row.state,
        "state_title": view.text(view.state_titles.get(row.state), lang, row.state),
        "status": row.status, "area": row.area, "timezone": view.timezone,
        "parent": row.parent_id, "handover": row.handover,
        "started_at": _iso(row.started_at), "completed_at": _iso(row.completed_at),
        "responsible": responsible,
        "responsible_party": assigned.get(responsible) if responsible else None,
        "assigned": assigned,
        "open_deadlines": deadlines,
        "consents": [{"sector": c.sector, "basis": c.basis, "reference": c.reference,
                      "since": _iso(c.at)} for c in consents],
        "data": _redacted(dict(row.data), set(view.personal), why),
        "latest": [{"at": _iso(e.at), "kind": e.kind, "event": e.event, "from": e.from_state,
                    "to": e.to_state, "actor": e.actor, "role": e.role} for e in latest],
    }
