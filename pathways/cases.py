"""My cases: `list` and `overdue` filtered by actor, party, area, role, pathway and state.

Every filter value is checked against what exists - the pathways, states and roles of the
definitions instances run on (and the configured files), the deployment's areas and parties -
so a typo is one line with a suggestion and exit 1, never a silent empty answer that could hide
an overdue statutory deadline.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pathways_engine.errors import InvalidArgument
from pathways_engine.errors import did_you_mean

from .app import App


@dataclass(frozen=True)
class Filters:
    pathway: str | None = None
    state: str | None = None
    roles: frozenset[str] | None = None
    areas: frozenset[str] | None = None
    party: str | None = None


def _known(app: App, pathway: str | None) -> tuple[set[str], set[str], set[str]]:
    """(pathways, states, roles) of every stored definition and every configured file; the
    states and roles of `pathway` only, if one is named."""
    from pathways_engine.definition.view import cached_view
    from pathways_engine.store import views

    pathways: set[str] = set()
    states: set[str] = set()
    roles: set[str] = set()

    def take(pid: str, its_states: Iterable[str], its_roles: Iterable[str]) -> None:
        pathways.add(pid)
        if pathway is None or pid == pathway:
            states.update(its_states)
            roles.update(its_roles)

    with app.db.reading() as connection:
        for row in views.snapshots(connection):
            view = cached_view(row.content_hash, row.source)
            if view is not None:
                take(view.id, view.responsible, view.sectors)
    try:
        for definition in app.registry.all():
            take(definition.spec.id, definition.spec.states, definition.spec.roles)
    except Exception:  # noqa: BLE001 - broken files are `check`'s to report, not a filter's
        pass
    return pathways, states, roles


def _checked(option: str, value: str | None, known: Iterable[str], kind: str) -> None:
    known = sorted(set(known))
    if value is not None and value not in known:
        listed = ", ".join(known[:15]) + (f", ... ({len(known) - 15} more)"
                                          if len(known) > 15 else "")
        raise InvalidArgument(f"{option} {value!r}: no such {kind}{did_you_mean(value, known)}; "
                              f"known: {listed or '(none)'}")


def filters(app: App, *, pathway: str | None = None, state: str | None = None,
            role: str | None = None, area: str | None = None, party: str | None = None,
            mine: str | None = None, prefix: str = "--") -> Filters:
    """The filters, each value checked; `mine`: an actor's roles, areas and organisation.
    A refusal names the value as the reader gave it: `--area` on the command line, `area`
    (prefix "") in an address."""
    if any(v is not None for v in (pathway, state, role)):
        pathways, states, roles = _known(app, pathway)
        _checked(f"{prefix}pathway", pathway, pathways, "pathway")
        _checked(f"{prefix}state", state, states, "state")
        _checked(f"{prefix}role", role, roles, "role")
    # the parties file only when a filter needs it: reading it costs pydantic's start-up
    parties = app.parties if area is not None or party is not None else None
    if area is not None:
        from pathways_engine.areas import check_area

        check_area(area, f"{prefix}area")
        if parties is not None:
            _checked(f"{prefix}area", area, parties.areas, "area in the parties file")
    if party is not None:
        if parties is None:
            where = "--parties or PATHWAYS_PARTIES" if prefix else \
                "this server was started without one: `pathways serve --parties` or " \
                "PATHWAYS_PARTIES"
            raise InvalidArgument(f"{prefix}party needs the parties file ({where})")
        _checked(f"{prefix}party", party, parties.by_id, "party")
    roles_wanted = frozenset([role]) if role else None
    areas = frozenset([area]) if area else None
    if mine is not None:
        actor = app.actors.known(mine)
        held = frozenset(actor.roles)
        roles_wanted = held if roles_wanted is None else roles_wanted & held
        scope = app.actors.scope(mine)
        if scope is not None:
            areas = scope if areas is None else areas & scope
        party = party or actor.organisation
    return Filters(pathway, state, roles_wanted, areas, party)


def overdue_cases(app: App, chosen: Filters, *, scope: Iterable[str] | None = None,
                  language: str | None = None) -> list[dict[str, Any]]:
    """What is overdue that the filters ask for, within the reader's areas (`scope`; None:
    every area), each row naming the party whose turn it is (`responsible_party`): the CLI's
    `overdue`, the API's and the coordinators' page answer alike."""
    from pathways_engine.reading.views import overdue as overdue_rows

    areas = chosen.areas
    if scope is not None:
        areas = frozenset(scope) if areas is None else areas & frozenset(scope)
    rows = overdue_rows(app, pathway=chosen.pathway, language=language,
                        areas=set(areas) if areas is not None else None)
    if chosen.roles is not None:
        rows = [r for r in rows if r["responsible"] in chosen.roles]
    assigned = assigned_by_instance(app, sorted({r["instance"] for r in rows}))
    for r in rows:
        r["responsible_party"] = party_of(app, r["responsible"], r["area"],
                                          assigned.get(r["instance"], {}))
    if chosen.party is not None:
        rows = [r for r in rows if r["responsible_party"] == chosen.party]
    return rows


def party_of(app: App, role: str | None, area: str | None,
             assigned: dict[str, str]) -> str | None:
    """Who has `role` for this case: its assignment, else the area's party, else the default."""
    if role is None:
        return None
    if role in assigned:
        return assigned[role]
    routed = app.parties.for_role(role, area) if app.parties is not None else None
    return routed.id if routed else None


def assigned_by_instance(app: App, ids: list[str]) -> dict[str, dict[str, str]]:
    """Active assignments (the child's, then the pathway's own) of these instances."""
    from pathways_engine.store import views
    from pathways_engine.store.tables import instances
    from pathways_engine.store.tables import subject_assignments
    from sqlalchemy import select

    if not ids:
        return {}
    found: dict[str, dict[str, str]] = {i: {} for i in ids}
    with app.db.reading() as connection:
        for row in connection.execute(
                select(instances.c.id, subject_assignments.c.role, subject_assignments.c.party)
                .join(subject_assignments,
                      subject_assignments.c.subject_id == instances.c.subject_id)
                .where(instances.c.id.in_(ids), subject_assignments.c.active.is_(True))):
            found[row.id][row.role] = row.party
        for a in views.assignments_of(connection, ids):
            found[a.instance_id][a.role] = a.party
    return found


def keep(app: App, rows: list[dict[str, Any]], chosen: Filters, *, role_key: str,
         instance_key: str) -> list[dict[str, Any]]:
    """The rows whose responsible role and party the filters ask for."""
    if chosen.roles is not None:
        rows = [r for r in rows if r.get(role_key) in chosen.roles]
    if chosen.party is not None:
        assigned = assigned_by_instance(app, sorted({r[instance_key] for r in rows}))
        rows = [r for r in rows if party_of(app, r.get(role_key), r.get("area"),
                                            assigned.get(r[instance_key], {})) == chosen.party]
    return rows
