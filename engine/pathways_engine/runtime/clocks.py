"""Changing a running legal clock: extend a deadline, pause it, resume it - steps, audited.

The definition says which deadlines may be extended (by how much, how often, by whom) and
paused (by whom); each change records its reason, and the new due time and wake-ups in its
audit entry, so `audit verify` can check the row against it. Pausing stops the clock: while
paused the deadline wakes no one and is not overdue; resuming adds the time it stood still to
its due time, in the deadline's own unit (working days for a working-day deadline), and
`report` counts the paused time apart.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from pathways_engine.definition.parts import DeadlineSpec
from pathways_engine.errors import InvalidArgument
from pathways_engine.errors import NotAuthorized
from pathways_engine.errors import did_you_mean
from pathways_engine.errors import names
from pathways_engine.rules.calendars import shift
from pathways_engine.rules.durations import parse_duration
from pathways_engine.store.rows import DeadlineRow

from .deadlines import calendar_of
from .deadlines import due_after
from .deadlines import fires_for
from .step import StepContext

MAX_REASON = 500


def _open_row(step: StepContext, name: str) -> tuple[DeadlineRow, DeadlineSpec]:
    pending = {row.name: row for row in step.case.pending()}
    row = pending.get(name)
    if row is None:
        raise InvalidArgument(f"instance {step.instance.id} has no open deadline {name!r}"
                              f"{did_you_mean(name, pending)}; open now: {names(pending)}")
    return row, step.compiled.deadline_specs[(row.state, row.name)]


def _reason(reason: str) -> str:
    reason = reason.strip()
    if not reason or len(reason) > MAX_REASON:
        raise InvalidArgument(f"give the reason (1 to {MAX_REASON} characters) with --reason")
    return reason


def _replan(step: StepContext, row: DeadlineRow, spec: DeadlineSpec) -> None:
    """New wake-ups for the new due time; those already past are not fired late."""
    row.fires = fires_for(step.spec, spec, row.due_at)
    row.fire_index = sum(1 for _, at in row.fires if at <= step.now)
    row.changed = True


def _effects(row: DeadlineRow) -> dict[str, object]:
    return {"deadline": row.name, "due": row.due_at.isoformat(), "fire_index": row.fire_index,
            "extensions": row.extensions, "paused_seconds": row.paused_seconds}


def extend(step: StepContext, name: str, *, reason: str, actor: str, role: str) -> DeadlineRow:
    reason = _reason(reason)  # before anything changes
    row, spec = _open_row(step, name)
    rule = spec.extend
    if rule is None:
        raise InvalidArgument(f"deadline {name!r} cannot be extended: its definition declares "
                              "no `extend:`")
    if role not in rule.roles:
        raise NotAuthorized(f"role {role!r} may not extend {name!r}; it may be extended by: "
                            f"{names(rule.roles)}")
    if row.extensions >= rule.times:
        raise InvalidArgument(f"deadline {name!r} has been extended {row.extensions} time"
                              f"{'s' if row.extensions != 1 else ''} already, the most its "
                              f"definition allows")
    step.bump()
    before = row.due_at
    row.due_at = due_after(step.spec, spec, row.due_at, parse_duration(rule.by))
    row.extensions += 1
    _replan(step, row, spec)
    step.audit("deadline_extended", at=step.now, actor=actor, role=role,
               changes={"deadline": name, "due": [before.isoformat(), row.due_at.isoformat()],
                        "by": rule.by},
               note=reason, effects=_effects(row))
    return row


def _may_pause(spec: DeadlineSpec, name: str, role: str) -> None:
    if spec.pause is None:
        raise InvalidArgument(f"the clock of {name!r} cannot be paused: its definition "
                              "declares no `pause:`")
    if role not in spec.pause.roles:
        raise NotAuthorized(f"role {role!r} may not pause or resume {name!r}; it may be done "
                            f"by: {names(spec.pause.roles)}")


def pause(step: StepContext, name: str, *, reason: str, actor: str, role: str) -> DeadlineRow:
    reason = _reason(reason)
    row, spec = _open_row(step, name)
    _may_pause(spec, name, role)
    if row.paused_at is not None:
        raise InvalidArgument(f"the clock of {name!r} is paused already (since "
                              f"{row.paused_at.isoformat()})")
    step.bump()
    row.paused_at, row.changed = step.now, True
    step.audit("deadline_paused", at=step.now, actor=actor, role=role,
               changes={"deadline": name}, note=reason, effects=_effects(row))
    return row


def resume(step: StepContext, name: str, *, reason: str, actor: str, role: str) -> DeadlineRow:
    reason = _reason(reason)
    row, spec = _open_row(step, name)
    _may_pause(spec, name, role)
    if row.paused_at is None:
        raise InvalidArgument(f"the clock of {name!r} is not paused")
    step.bump()
    zone = ZoneInfo(step.spec.timezone)
    calendar = calendar_of(step.spec, spec)
    stood_still = step.now - row.paused_at
    working = None
    if parse_duration(spec.duration, allow_zero=True).unit == "working_days":
        first, last = row.paused_at.astimezone(zone).date(), step.now.astimezone(zone).date()
        working = sum(1 for n in range((last - first).days)
                      if not calendar.is_closed(first + dt.timedelta(days=n + 1)))
    before = row.due_at
    row.due_at = shift(row.due_at, stood_still, working, calendar, zone)
    row.paused_seconds += int(stood_still.total_seconds())
    row.paused_at = None
    _replan(step, row, spec)
    step.audit("deadline_resumed", at=step.now, actor=actor, role=role,
               changes={"deadline": name, "due": [before.isoformat(), row.due_at.isoformat()],
                        "paused_for": str(stood_still)},
               note=reason, effects=_effects(row))
    return row
