"""What the CLI and the HTTP API both read out: one function each, so the two answer alike
and the web layer needs no click command module."""

from __future__ import annotations

import datetime as dt
from typing import Any

from .app import App


def report_period(app: App, start: dt.date | None, end: dt.date | None, *,
                  prefix: str = "--") -> tuple[dt.date, dt.date]:
    """The report's first and last day: by default the year up to today. A refusal names the
    bounds as the reader gave them: `--from` on the command line, `from` (prefix "") in an
    address."""
    from pathways_engine.errors import InvalidArgument

    end = end or app.clock.now().date()
    start = start or end - dt.timedelta(days=365)
    if start > end:
        raise InvalidArgument(f"{prefix}from {start} is after {prefix}to {end}")
    return start, end


def report_rows(app: App, start: dt.date | None, end: dt.date | None, pathway: str | None,
                by: str, *, area: str | None = None, reader: str | None = None,
                prefix: str = "--") -> list[dict[str, object]]:
    """The report's rows (the CLI, the HTTP API and the report page show the same).

    `area`: only that area's instances. `reader`: the actor who reads over HTTP; one who
    works for some areas only reads their figures, and is refused another area's, as she is
    refused its children (the CLI's reader has the database itself)."""
    from pathways_engine.reading.reporting import report as compute

    from .cases import filters

    start, end = report_period(app, start, end, prefix=prefix)
    if pathway is not None:
        from pathways_engine.errors import DefinitionError

        try:
            app.registry.get(pathway)  # an unknown pathway is an error, not an empty report
        except DefinitionError:  # the files do not load (`check` says why): the stored
            filters(app, pathway=pathway, prefix=prefix)  # versions say which pathways exist
    wanted = filters(app, area=area, prefix=prefix).areas
    scope = app.actors.scope(reader) if reader is not None else None
    if scope is not None:
        if area is not None and area not in scope:
            from pathways_engine.errors import NotAuthorized

            raise NotAuthorized(f"actor {reader!r} works for {', '.join(sorted(scope))}; "
                                f"the figures of {area} are not theirs to read")
        wanted = wanted or scope
    begin = dt.datetime.combine(start, dt.time(0), tzinfo=dt.UTC)
    until = dt.datetime.combine(end + dt.timedelta(days=1), dt.time(0), tzinfo=dt.UTC)
    routing: dict[tuple[str, str | None], str] = {}
    for party in (app.parties.by_id.values() if app.parties else []):
        for role in party.roles:
            served: list[str | None] = list(party.areas) or [None]
            for code in served:
                routing.setdefault((role, code), party.id)  # the first party wins, as routing
    return compute(app.engine, start=begin, end=until, now=app.clock.now(), pathway=pathway,
                   by=by, routing=routing, areas=wanted)


def outbox_rows(app: App, status: str | None, limit: int | None = None) -> list[dict[str, Any]]:
    """The outbox as `outbox --json` and the HTTP API give it: oldest first, the newest
    `limit` messages only when given one."""
    from pathways_engine.store import views

    with app.db.reading() as connection:
        return [{
            "id": m.id, "message_id": m.message_id, "instance": m.instance_id, "role": m.role,
            "party": m.party, "channel": m.channel, "status": m.status, "attempts": m.attempts,
            "subject": m.subject, "personal_data": m.personal_data, "legal_basis": m.legal_basis,
            "created_at": m.created_at.isoformat(), "last_error": m.last_error,
            "sent_at": m.sent_at.isoformat() if m.sent_at else None,
        } for m in views.outbox_rows(connection, status, limit)]
