"""Planning a deadline: the rule in force, when it falls due, and when it wakes the sweep.

Pure arithmetic over the definition and the national calendar; the step path writes the
result as one deadline row carrying its wake-ups. When each wake-up fires:

- a reminder "N before": N hours/minutes before the due time, or at 08:00 local time on the
  day N days/working days before it;
- the due (or timeout) wake-up: at the due time - the end of the local due day (23:59:59) for
  day-based deadlines unless `due_time` says another time of day, or exactly N hours later;
- the escalation: `after` past the due time, at the end of that day or at `escalate.at`.

Wake-ups at the same moment fire reminder, due, timeout, escalation, in that order.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from typing import Any
from zoneinfo import ZoneInfo

from pathways_engine.definition.parts import DeadlineSpec
from pathways_engine.definition.parts import PathwaySpec
from pathways_engine.definition.parts import VariantSpec
from pathways_engine.errors import FieldError
from pathways_engine.rules.calendars import END_OF_DAY
from pathways_engine.rules.calendars import WorkCalendar
from pathways_engine.rules.calendars import compute_after
from pathways_engine.rules.calendars import compute_before
from pathways_engine.rules.calendars import compute_due
from pathways_engine.rules.durations import Duration
from pathways_engine.rules.durations import parse_duration
from pathways_engine.rules.status import met_status
from pathways_engine.store.rows import DeadlineRow
from pathways_engine.store.rows import InstanceRow

_ORDER = {"reminder": 0, "due": 1, "timeout": 2, "escalation": 3}
DAY_UNITS = {"days", "weeks", "months", "working_days"}


def _clock(text: str | None) -> dt.time:
    if text is None:
        return END_OF_DAY
    hours, minutes = text.split(":")
    return dt.time(int(hours), int(minutes))


def rule_in_force(deadline: DeadlineSpec, anchor: dt.date,
                  switches: Collection[str]) -> tuple[int | None, str, str, str]:
    """(variant index or None, duration, status, source) of the rule for this anchor date."""
    for index, variant in enumerate(deadline.variants):
        if applies(variant, anchor, switches):
            return index, variant.duration, variant.status, variant.source
    return None, deadline.duration, deadline.status, deadline.source


def applies(variant: VariantSpec, anchor: dt.date, switches: Collection[str]) -> bool:
    if variant.switch is not None and variant.switch not in switches:
        return False
    if variant.effective_from and anchor < dt.date.fromisoformat(variant.effective_from):
        return False
    return not (variant.effective_until and
                anchor > dt.date.fromisoformat(variant.effective_until))


def rule_of(spec: PathwaySpec, deadline: DeadlineSpec, variant: int | None = None,
            warning: str | None = None) -> dict[str, Any]:
    """What `show` and reports print about the rule behind a deadline (stored on the row)."""
    chosen = deadline.variants[variant] if variant is not None else None
    rule: dict[str, Any] = {
        "duration": str(parse_duration(chosen.duration if chosen else deadline.duration,
                                       allow_zero=True)),
        "from": deadline.counts_from,
        "status": chosen.status if chosen else deadline.status,
        "source": chosen.source if chosen else deadline.source,
        "country": spec.country,
        "roll_forward": deadline.calendar.rules().roll_forward,
        "closed_day": deadline.calendar.policy(),
        "on_timeout": deadline.on_timeout,
    }
    if deadline.title:
        rule["title"] = dict(deadline.title)
    if chosen is not None:
        rule["variant"] = {"index": variant, "switch": chosen.switch,
                           "effective_from": chosen.effective_from,
                           "effective_until": chosen.effective_until}
    if deadline.met_by:
        rule["met_by"] = deadline.met_by.changed()
    if deadline.not_before:
        rule["not_before"] = deadline.not_before
    if deadline.repeat:
        rule["repeat"] = deadline.repeat.every
    if deadline.extend:
        rule["extend"] = {"by": deadline.extend.by, "times": deadline.extend.times}
    if warning:
        rule["warning"] = warning
    return rule


def start_of(spec: PathwaySpec, deadline: DeadlineSpec, instance: InstanceRow,
             entered_at: dt.datetime) -> dt.datetime:
    """The moment a deadline counts from: entering its state, the start, or a date field."""
    origin = deadline.counts_from
    if origin == "state_entered":
        return entered_at
    if origin == "pathway_started":
        return instance.started_at
    field = origin.removeprefix("field:")
    value = instance.data.get(field)
    if value is None:
        raise FieldError(
            f"deadline {deadline.name!r} counts from field {field!r}, which has no value yet; "
            f"give it with --set {field}=YYYY-MM-DD"
        )
    zone = ZoneInfo(spec.timezone)
    return dt.datetime.combine(dt.date.fromisoformat(value), dt.time(0), tzinfo=zone)


def calendar_of(spec: PathwaySpec, deadline: DeadlineSpec) -> WorkCalendar:
    return WorkCalendar(spec.country, deadline.calendar.rules())


def fires_for(spec: PathwaySpec, deadline: DeadlineSpec,
              due: dt.datetime) -> list[tuple[str, dt.datetime]]:
    """The wake-ups of a deadline due at `due`, in firing order (module docstring)."""
    zone = ZoneInfo(spec.timezone)
    calendar = calendar_of(spec, deadline)
    fires = [("reminder", compute_before(due, parse_duration(lead), calendar, zone))
             for lead in deadline.reminders]
    if deadline.remind_at_due or deadline.on_timeout:
        fires.append(("timeout" if deadline.on_timeout else "due", due))
    if deadline.escalate:
        fires.append(("escalation", compute_after(
            due, parse_duration(deadline.escalate.after), calendar, zone,
            _clock(deadline.escalate.at))))
    fires.sort(key=lambda fire: (fire[1], _ORDER[fire[0]]))
    return fires


def due_after(spec: PathwaySpec, deadline: DeadlineSpec, start: dt.datetime,
              duration: Duration) -> dt.datetime:
    return compute_due(start, duration, calendar_of(spec, deadline), ZoneInfo(spec.timezone),
                       _clock(deadline.due_time))


def plan(spec: PathwaySpec, deadline: DeadlineSpec, start: dt.datetime,
         duration: str | None = None) -> tuple[dt.datetime, list[tuple[str, dt.datetime]]]:
    """The due time and the wake-ups of one deadline counted from `start`."""
    due = due_after(spec, deadline, start,
                    parse_duration(duration or deadline.duration, allow_zero=True))
    return due, fires_for(spec, deadline, due)


def closed_day_warning(spec: PathwaySpec, deadline: DeadlineSpec, due: dt.datetime,
                       language: str) -> str | None:
    """For `closed_day: warn`: which holiday (or weekday) the due date falls on."""
    if deadline.calendar.policy() != "warn":
        return None
    zone = ZoneInfo(spec.timezone)
    reason = calendar_of(spec, deadline).closed_because(due.astimezone(zone).date(), language)
    if reason is None:
        return None
    kind, label = reason
    words = _CLOSED_WORDS.get(language, _CLOSED_WORDS["en"])
    if kind == "weekend":
        label = words["weekdays"][int(label)]
    return f"{words[kind]}: {label}"


# What staff read on a `closed_day: warn` deadline, in the pathway's language.
_CLOSED_WORDS: dict[str, dict[str, Any]] = {
    "da": {"holiday": "falder på en helligdag", "weekend": "falder på en weekenddag",
           "extra": "falder på en lukkedag", "weekdays": ["mandag", "tirsdag", "onsdag",
           "torsdag", "fredag", "lørdag", "søndag"]},
    "nb": {"holiday": "faller på en helligdag", "weekend": "faller i helgen",
           "extra": "faller på en stengt dag", "weekdays": ["mandag", "tirsdag", "onsdag",
           "torsdag", "fredag", "lørdag", "søndag"]},
    "sv": {"holiday": "infaller på en helgdag", "weekend": "infaller på en helg",
           "extra": "infaller på en stängd dag", "weekdays": ["måndag", "tisdag", "onsdag",
           "torsdag", "fredag", "lördag", "söndag"]},
    "en": {"holiday": "falls on a public holiday", "weekend": "falls on a weekend",
           "extra": "falls on a closed day", "weekdays": ["Monday", "Tuesday", "Wednesday",
           "Thursday", "Friday", "Saturday", "Sunday"]},
}


def new_deadline(spec: PathwaySpec, deadline: DeadlineSpec, instance: InstanceRow,
                 state: str | None, entered_at: dt.datetime,
                 switches: Collection[str] = (), occurrence: int = 1,
                 start: dt.datetime | None = None, length: str | None = None) -> DeadlineRow:
    """A deadline opened now; `start` and `length` override where it counts from and how long
    it runs (a repeat counts its `every` from the previous due date)."""
    start = start or start_of(spec, deadline, instance, entered_at)
    zone = ZoneInfo(spec.timezone)
    variant, duration, _, _ = rule_in_force(deadline, start.astimezone(zone).date(), switches)
    due, fires = plan(spec, deadline, start, length or duration)
    window = None
    if deadline.not_before:
        opens = parse_duration(deadline.not_before)
        window = due_after(spec, deadline, start, opens)
        if opens.unit in DAY_UNITS:  # a window opens at the start of its first day
            window = dt.datetime.combine(window.astimezone(zone).date(), dt.time(0),
                                         tzinfo=zone).astimezone(dt.UTC)
    warning = closed_day_warning(spec, deadline, due, spec.fallback_language)
    responsible = deadline.responsible or (spec.states[state].responsible if state else None)
    return DeadlineRow(
        instance_id=instance.id, name=deadline.name, state=state, responsible=responsible,
        started_at=start.astimezone(dt.UTC), due_at=due, status="pending", closed_at=None,
        rule=rule_of(spec, deadline, variant, warning), fires=fires,
        met_by=deadline.met_by.markers() if deadline.met_by else None,
        cancelled_by=deadline.cancelled_by.markers() if deadline.cancelled_by else None,
        window_start=window, occurrence=occurrence)


def next_occurrence(spec: PathwaySpec, deadline: DeadlineSpec, row: DeadlineRow,
                    instance: InstanceRow, switches: Collection[str]) -> DeadlineRow:
    """The next occurrence of a repeating deadline: due `every` after the previous due date."""
    assert deadline.repeat is not None
    return new_deadline(spec, deadline, instance, row.state, row.due_at, switches,
                        row.occurrence + 1, start=row.due_at, length=deadline.repeat.every)


def closed_status(row: DeadlineRow, at: dt.datetime) -> str:
    """How a deadline met at `at` ends (rules/status.py; store/writes.py has it as SQL)."""
    return met_status(at, row.due_at, row.window_start, row.paused_at)
