"""The steering group's figures, computed in the database so they stay fast on a million cases.

Per pathway and step (state), or per responsible role, or per organisation (the party
responsible: the one assigned to the instance for the role, else the one the parties file routes
the role to in the instance's area), or per area (municipality or region), over a period:

- started: entries into the step in the period, by a start, a transition or an undo;
  completed: exits from it by a transition, an undo or a withdrawal; migrated: stays a
  migration moved to a new version (neither an entry nor an exit, and not timed);
- median and 90th percentile time in the step, over the exits in the period;
- deadlines met: of the deadlines closed in the period, the share met on time
  ((met + met_early) / (met + met_early + met_late + timed_out + unmet)): an obligation the
  pathway ended without is a miss; cancelled ones (a migration, a rule that made them moot)
  do not count; met_early (before a window opened) is also counted on its own;
- paused days: the time legal clocks of those deadlines stood still (`pathways pause`),
  reported apart, never subtracted from the time in a step;
- overdue now: pending deadlines already past due.

Only the instances of the areas asked for (`areas`; None: every instance, those started
without an area too): a caseworker of one municipality reads her own municipality's figures.

Stays are the audit trail's start/transition/migration/undo/withdrawn entries paired with the
next one by a
window function (LAG); percentiles are picked by ROW_NUMBER, so SQLite and PostgreSQL give the
same answer without loading rows into Python.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Collection
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Column
from sqlalchemy import ColumnElement
from sqlalchemy import Connection
from sqlalchemy import Float
from sqlalchemy import MetaData
from sqlalchemy import String
from sqlalchemy import Table
from sqlalchemy import and_
from sqlalchemy import case
from sqlalchemy import func
from sqlalchemy import insert
from sqlalchemy import literal
from sqlalchemy import or_
from sqlalchemy import select

from .tables import UTCDateTime
from .tables import assignments as assignment_table
from .tables import audit as audit_table
from .tables import deadlines as deadline_table
from .tables import instances as instance_table

GROUPINGS = ("step", "role", "organisation", "area")
WHOLE_PATHWAY = "(whole pathway)"  # the step of a deadline over the whole pathway
NO_AREA = "(no area)"  # the area of an instance started without one
_STAY_KINDS = ("start", "transition", "migration", "undo", "withdrawn")
# (role, area) -> party; area None: the role's default party
Routing = Mapping[tuple[str, str | None], str]
_ON_TIME = ("met", "met_early")
_COUNTED = ("met", "met_early", "met_late", "timed_out", "unmet")


def _seconds(later: Any, earlier: Any, dialect: str) -> ColumnElement[Any]:
    if dialect == "postgresql":
        return func.extract("epoch", later - earlier)
    return (func.julianday(later) - func.julianday(earlier)) * 86400.0


def _role_of(version: Any, state: Any, roles: Mapping[tuple[str, str], str]) -> Any:
    """The role responsible for `state` in the definition version (content hash) `version`:
    an instance on an older version keeps the roles it runs by."""
    whens = [(and_(version == v, state == s), literal(role)) for (v, s), role in roles.items()]
    return case(*whens, else_=literal(None)) if whens else literal(None)


def _party_of(instance_id: Any, role: Any, area: Any, routing: Routing) -> ColumnElement[Any]:
    """The party responsible: assigned to the instance for the role, else routed by area."""
    assigned = (select(assignment_table.c.party)
                .where(assignment_table.c.instance_id == instance_id,
                       assignment_table.c.role == role, assignment_table.c.active.is_(True))
                .limit(1).scalar_subquery())
    local = [(and_(role == r, area == a), literal(p)) for (r, a), p in routing.items() if a]
    default = [(role == r, literal(p)) for (r, a), p in routing.items() if a is None]
    routed = case(*local, *default, else_=literal(None)) if local or default else literal(None)
    return func.coalesce(assigned, routed)


def _group(by: str, instance: Any, state: Any, roles: Mapping[tuple[str, str], str],
           routing: Routing) -> ColumnElement[Any]:
    """The group a stay belongs to; NULL (left out) where it has none, e.g. a final state."""
    if by == "step":
        return state  # type: ignore[no-any-return]
    if by == "area":
        return func.coalesce(instance.area, literal(NO_AREA))
    role = _role_of(instance.content_hash, state, roles)
    if by == "role":
        return role  # type: ignore[no-any-return]
    return _party_of(instance.id, role, instance.area, routing)


def report(connection: Connection, *, start: dt.datetime, end: dt.datetime, now: dt.datetime,
           pathway: str | None, by: str, roles: Mapping[tuple[str, str], str],
           routing: Routing | None = None,
           areas: Collection[str] | None = None) -> list[dict[str, Any]]:
    """One row per pathway and group, sorted; every figure is computed by the database.

    `roles`: (content hash, state) -> the role responsible, for the version each instance
    runs on now (a migrated instance's earlier stays count under its new version's roles)."""
    dialect = connection.dialect.name
    AuditEntry, Deadline, Instance = audit_table.c, deadline_table.c, instance_table.c
    routing = routing or {}
    steps = (select(AuditEntry.instance_id, AuditEntry.seq, AuditEntry.at, AuditEntry.to_state,
                    AuditEntry.kind)
             .where(AuditEntry.kind.in_(_STAY_KINDS)))
    which = [Instance.pathway_id == pathway] if pathway else []
    if areas is not None:
        which.append(Instance.area.in_(sorted(areas)))
    if which:
        steps = steps.join(instance_table, Instance.id == AuditEntry.instance_id).where(*which)
    s = steps.subquery()
    stays = select(
        s.c.instance_id, s.c.to_state.label("state"), s.c.at.label("entered"),
        s.c.kind.label("entered_by"),
        func.lead(s.c.at).over(partition_by=s.c.instance_id, order_by=s.c.seq).label("left"),
        func.lead(s.c.kind).over(partition_by=s.c.instance_id, order_by=s.c.seq)
        .label("left_by"),
    ).subquery()  # filtered outside: WHERE runs before the window functions
    grp = _group(by, Instance, stays.c.state, roles, routing)
    relevant = (select(Instance.pathway_id.label("pathway"), grp.label("grp"),
                       stays.c.entered, stays.c.left, stays.c.entered_by, stays.c.left_by,
                       _seconds(stays.c.left, stays.c.entered, dialect).label("secs"))
                .select_from(stays).join(instance_table, Instance.id == stays.c.instance_id)
                .where(stays.c.entered < end, or_(stays.c.left.is_(None), stays.c.left >= start),
                       stays.c.entered_by != "withdrawn", grp.is_not(None)))
    # The window pass over the audit trail runs once, into a temporary table the three
    # aggregates below read; as subqueries each would repeat it (bench/report.py).
    base = _stays_table()
    base.drop(connection, checkfirst=True)
    base.create(connection)
    connection.execute(insert(base).from_select(
        ["pathway", "grp", "entered", "left", "entered_by", "left_by", "secs"], relevant))

    moved_in, moved_out = base.c.entered_by == "migration", base.c.left_by == "migration"
    started = dict(_counted(connection, base, base.c.entered, start, end, ~moved_in))
    completed = dict(_counted(connection, base, base.c.left, start, end,
                              or_(base.c.left_by.is_(None), ~moved_out)))
    migrated = dict(_counted(connection, base, base.c.left, start, end, moved_out))
    ranked = select(
        base.c.pathway, base.c.grp, base.c.secs,
        func.row_number().over(partition_by=(base.c.pathway, base.c.grp),
                               order_by=base.c.secs).label("rn"),
        func.count().over(partition_by=(base.c.pathway, base.c.grp)).label("n"),
    ).where(base.c.left.is_not(None), base.c.left >= start, base.c.left < end,
            ~moved_in, ~moved_out).subquery()
    quantiles: dict[tuple[str, str], dict[str, float]] = {}
    median_rank, p90_rank = _ceil(ranked.c.n, 1, 2), _ceil(ranked.c.n, 9, 10)
    for row in connection.execute(select(ranked.c.pathway, ranked.c.grp, ranked.c.secs, ranked.c.rn,
                                      ranked.c.n).where((ranked.c.rn == median_rank)
                                                        | (ranked.c.rn == p90_rank))):
        figures = quantiles.setdefault((row.pathway, row.grp), {})
        if row.rn == math.ceil(row.n * 0.5):
            figures["median"] = float(row.secs)
        if row.rn == math.ceil(row.n * 0.9):
            figures["p90"] = float(row.secs)

    deadline_group = _deadline_group(by, roles, routing, Deadline, Instance)
    closed = (select(Instance.pathway_id, deadline_group,
                     func.sum(case((Deadline.status.in_(_ON_TIME), 1), else_=0)),
                     func.sum(case((Deadline.status.in_(_COUNTED), 1), else_=0)),
                     func.sum(case((Deadline.status == "met_early", 1), else_=0)),
                     func.sum(Deadline.paused_seconds))
              .select_from(deadline_table).join(instance_table, Instance.id == Deadline.instance_id)
              .where(Deadline.closed_at >= start, Deadline.closed_at < end,
                     deadline_group.is_not(None))
              .group_by(Instance.pathway_id, deadline_group))
    overdue = (select(Instance.pathway_id, deadline_group, func.count())
               .select_from(deadline_table).join(instance_table, Instance.id == Deadline.instance_id)
               .where(Deadline.status == "pending", Deadline.due_at < now,
                      deadline_group.is_not(None))
               .group_by(Instance.pathway_id, deadline_group))
    if which:
        closed, overdue = closed.where(*which), overdue.where(*which)
    met = {(p, g): (int(m or 0), int(t or 0), int(e or 0), float(s or 0))
           for p, g, m, t, e, s in connection.execute(closed)}
    late = {(p, g): int(n) for p, g, n in connection.execute(overdue)}

    base.drop(connection)
    keys = sorted(set(started) | set(completed) | set(migrated) | set(met) | set(late),
                  key=lambda k: (k[0], str(k[1])))
    rows = []
    for key in keys:
        on_time, closed_count, early, paused = met.get(key, (0, 0, 0, 0.0))
        figures = quantiles.get(key, {})
        rows.append({
            "pathway": key[0], by: key[1], "started": started.get(key, 0),
            "completed": completed.get(key, 0), "migrated": migrated.get(key, 0),
            "median_days": _days(figures.get("median")), "p90_days": _days(figures.get("p90")),
            "deadlines_closed": closed_count,
            "deadlines_met_share": round(on_time / closed_count, 3) if closed_count else None,
            "deadlines_met_early": early, "paused_days": _days(paused) or 0.0,
            "overdue_now": late.get(key, 0),
        })
    return rows


def _stays_table() -> Table:
    return Table("pathways_report_stays", MetaData(),
                 Column("pathway", String(64)), Column("grp", String(128)),
                 Column("entered", UTCDateTime()), Column("left", UTCDateTime()),
                 Column("entered_by", String(32)), Column("left_by", String(32)),
                 Column("secs", Float()), prefixes=["TEMPORARY"])


def _counted(connection: Connection, base: Any, column: Any, start: dt.datetime,
             end: dt.datetime, which: Any) -> list[tuple[tuple[str, str], int]]:
    query = (select(base.c.pathway, base.c.grp, func.count())
             .where(column.is_not(None), column >= start, column < end, which)
             .group_by(base.c.pathway, base.c.grp))
    return [((p, g), int(n)) for p, g, n in connection.execute(query)]


def _ceil(n: Any, numerator: int, denominator: int) -> ColumnElement[int]:
    """ceil(n * numerator / denominator) in integer arithmetic, the same on both databases."""
    return (n * numerator + (denominator - 1)) // denominator  # type: ignore[no-any-return]


def _deadline_group(by: str, roles: Mapping[tuple[str, str], str], routing: Routing,
                    Deadline: Any, Instance: Any) -> ColumnElement[Any]:  # noqa: N803
    if by == "step":
        return func.coalesce(Deadline.state, literal(WHOLE_PATHWAY))
    if by == "area":
        return func.coalesce(Instance.area, literal(NO_AREA))
    role = func.coalesce(Deadline.responsible, _role_of(Instance.content_hash, Deadline.state,
                                                        roles))
    if by == "role":
        return role
    return _party_of(Instance.id, role, Instance.area, routing)


def _days(seconds: float | None) -> float | None:
    return round(seconds / 86400, 2) if seconds is not None else None
