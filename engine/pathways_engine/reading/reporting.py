"""The steering group's figures (store/reports.py computes them in the database)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from typing import TYPE_CHECKING
from typing import Any

from pathways_engine.definition.view import cached_view
from pathways_engine.store import reports
from pathways_engine.store import views

if TYPE_CHECKING:
    from pathways_engine.runtime.engine import PathwayEngine

GROUPINGS = reports.GROUPINGS
WHOLE_PATHWAY, NO_AREA = reports.WHOLE_PATHWAY, reports.NO_AREA


def report(engine: PathwayEngine, *, start: dt.datetime, end: dt.datetime, now: dt.datetime,
           pathway: str | None, by: str, routing: reports.Routing | None = None,
           areas: Collection[str] | None = None) -> list[dict[str, Any]]:
    """The figures; whose a step is comes from the stored snapshot of the version each
    instance runs on, not from today's files (which a coordinator may have changed, or
    left half-edited)."""
    with engine.db.reading(read_only=False) as connection:
        return reports.report(connection, start=start, end=end, now=now, pathway=pathway, by=by,
                              roles=roles_by_version(connection), routing=routing,
                              areas=areas)


def roles_by_version(connection: Any) -> dict[tuple[str, str], str]:
    """(content hash, state) -> the role responsible, for every stored definition version."""
    roles = {}
    for content_hash, source in views.snapshots(connection):
        view = cached_view(content_hash, source)
        if view is not None:
            roles.update({(content_hash, state): role
                          for state, role in view.responsible.items() if role})
    return roles
