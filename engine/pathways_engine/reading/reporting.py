"""The steering group's figures (store/reports.py computes them in the database)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from collections.abc import Mapping
from typing import TYPE_CHECKING
from typing import Any

from pathways_engine.store import reports

if TYPE_CHECKING:
    from pathways_engine.runtime.engine import PathwayEngine

GROUPINGS = reports.GROUPINGS
WHOLE_PATHWAY, NO_AREA = reports.WHOLE_PATHWAY, reports.NO_AREA


def report(engine: PathwayEngine, *, start: dt.datetime, end: dt.datetime, now: dt.datetime,
           pathway: str | None, by: str, roles: Mapping[tuple[str, str], str],
           routing: reports.Routing | None = None,
           areas: Collection[str] | None = None) -> list[dict[str, Any]]:
    with engine.db.reading(read_only=False) as connection:
        return reports.report(connection, start=start, end=end, now=now, pathway=pathway, by=by,
                              roles=roles, routing=routing, areas=areas)
