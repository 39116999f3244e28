"""Due times in the pathway's national calendar (domain.md §4).

Hours and minutes are elapsed time, so "24 hours" is 24 real hours across a daylight-saving
change. Days, weeks, months and working days are calendar arithmetic on local dates in the
pathway's zone, and fall due at the end of the local due day (23:59:59), or at the deadline's
`due_time`. "0 days" is the same day; "0 working days" the same day if it is a working day,
else the next one. Months clamp at the month end (31 January + 1 month = 28/29 February, as
Lag 1930:173 §1 says). Working days skip weekends, the country's public holidays (the
`holidays` package) and the rule's extra closed days.

A calendar-day deadline that lands on a closed day follows its policy: `none` (stays),
`warn` (stays; staff are told which holiday it is), `roll_forward` (next working day),
`roll_back` (the working day before), `se_1930_173` (Sweden's Lag 1930:173 §2: forward over
Saturdays, Sundays, holidays, midsommarafton, julafton and nyårsafton).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from zoneinfo import ZoneInfo

from dateutil.relativedelta import relativedelta

from .durations import Duration
from .holiday_cache import holiday_file

END_OF_DAY = dt.time(23, 59, 59)


@lru_cache(maxsize=256)
def _holidays(country: str, year: int, categories: tuple[str, ...]) -> frozenset[dt.date]:
    kept = holiday_file()  # the dates a previous run computed, if they can be trusted
    if kept is not None and (dates := kept.lookup((country, year, categories))) is not None:
        return dates
    import holidays  # imported on first use: commands that compute no deadline skip it

    table = holidays.country_holidays(country, years=[year], categories=categories)
    dates = frozenset(table.keys())
    if kept is not None:
        kept.remember((country, year, categories), dates)
    return dates


@lru_cache(maxsize=8)
def supported_categories(country: str) -> tuple[str, ...]:
    """The `holidays` package's categories for a country (e.g. SE has de_facto, NO does not)."""
    import holidays

    return tuple(sorted(holidays.country_holidays(country).supported_categories))


def unsupported_categories(country: str, categories: Iterable[str]) -> list[str]:
    supported = set(supported_categories(country))
    return [c for c in categories if c not in supported]


@dataclass(frozen=True)
class CalendarRules:
    """One deadline's calendar settings (the definition's `calendar:` block)."""

    extra_closed_days: tuple[str, ...] = ()
    holiday_categories: tuple[str, ...] = ("public",)
    saturday_is_working_day: bool = False
    roll_forward: bool = False
    policy: str = "none"  # none | warn | roll_forward | roll_back | se_1930_173


class WorkCalendar:
    """Which local dates are working days under one deadline's rules."""

    def __init__(self, country: str, rules: CalendarRules) -> None:
        self.country = country
        self.rules = rules
        self.categories = tuple(sorted(rules.holiday_categories))
        self.extra = {tuple(int(x) for x in day.split("-")) for day in rules.extra_closed_days}

    def is_closed(self, day: dt.date) -> bool:
        last_working_weekday = 5 if self.rules.saturday_is_working_day else 4
        if day.weekday() > last_working_weekday:
            return True
        if (day.month, day.day) in self.extra:
            return True
        return day in _holidays(self.country, day.year, self.categories)

    def next_open(self, day: dt.date) -> dt.date:
        while self.is_closed(day):
            day += dt.timedelta(days=1)
        return day

    def previous_open(self, day: dt.date) -> dt.date:
        while self.is_closed(day):
            day -= dt.timedelta(days=1)
        return day

    def closed_because(self, day: dt.date, language: str = "en") -> tuple[str, str] | None:
        """Why `day` is closed - ("holiday", its name), ("extra", "24-12") or ("weekend",
        weekday number as text) - or None if it is open."""
        if not self.is_closed(day):
            return None
        import holidays

        names = holidays.country_holidays(self.country, years=[day.year],
                                          categories=self.categories, language=language)
        if day in names:
            return "holiday", str(names[day])
        if (day.month, day.day) in self.extra:
            return "extra", f"{day:%d-%m}"
        return "weekend", str(day.weekday())

    def add_working_days(self, day: dt.date, count: int) -> dt.date:
        while count > 0:
            day += dt.timedelta(days=1)
            if not self.is_closed(day):
                count -= 1
        return day

    def subtract_working_days(self, day: dt.date, count: int) -> dt.date:
        while count > 0:
            day -= dt.timedelta(days=1)
            if not self.is_closed(day):
                count -= 1
        return day


def end_of_local_day(day: dt.date, zone: ZoneInfo, at: dt.time = END_OF_DAY) -> dt.datetime:
    return dt.datetime.combine(day, at, tzinfo=zone).astimezone(dt.UTC)


def due_day(start: dt.datetime, duration: Duration, calendar: WorkCalendar,
            zone: ZoneInfo) -> dt.date:
    """The local day a day-based deadline falls due (its closed-day policy applied)."""
    local_day = start.astimezone(zone).date()
    if duration.unit == "working_days":
        if duration.amount == 0:
            return calendar.next_open(local_day)
        return calendar.add_working_days(local_day, duration.amount)
    if duration.unit == "days":
        day = local_day + dt.timedelta(days=duration.amount)
    elif duration.unit == "weeks":
        day = local_day + dt.timedelta(weeks=duration.amount)
    else:
        day = local_day + relativedelta(months=duration.amount)
    if calendar.rules.roll_forward:
        day = calendar.next_open(day)
    elif calendar.rules.policy == "roll_back":
        day = calendar.previous_open(day)
    return day


def compute_due(start: dt.datetime, duration: Duration, calendar: WorkCalendar,
                zone: ZoneInfo, at: dt.time = END_OF_DAY) -> dt.datetime:
    """The UTC instant a deadline falls due, counted from the aware instant `start`."""
    if duration.unit == "hours":
        return start.astimezone(dt.UTC) + dt.timedelta(hours=duration.amount)
    if duration.unit == "minutes":
        return start.astimezone(dt.UTC) + dt.timedelta(minutes=duration.amount)
    return end_of_local_day(due_day(start, duration, calendar, zone), zone, at)


def compute_before(due: dt.datetime, lead: Duration, calendar: WorkCalendar,
                   zone: ZoneInfo) -> dt.datetime:
    """When a reminder `lead` before `due` fires (start of that local working day for days)."""
    if lead.unit in {"hours", "minutes"}:
        delta = dt.timedelta(hours=lead.amount) if lead.unit == "hours" else dt.timedelta(
            minutes=lead.amount)
        return due - delta
    local_day = due.astimezone(zone).date()
    if lead.unit == "working_days":
        day = calendar.subtract_working_days(local_day, lead.amount)
    elif lead.unit == "days":
        day = local_day - dt.timedelta(days=lead.amount)
    elif lead.unit == "weeks":
        day = local_day - dt.timedelta(weeks=lead.amount)
    else:
        day = local_day - relativedelta(months=lead.amount)
    return dt.datetime.combine(day, dt.time(8, 0), tzinfo=zone).astimezone(dt.UTC)


def compute_after(due: dt.datetime, lag: Duration, calendar: WorkCalendar,
                  zone: ZoneInfo, at: dt.time = END_OF_DAY) -> dt.datetime:
    """When an escalation `lag` after `due` fires (at `at` on its day, for day-based lags)."""
    return compute_due(due, lag, calendar, zone, at)


def shift(due: dt.datetime, delta: dt.timedelta, working_days: int | None,
          calendar: WorkCalendar, zone: ZoneInfo) -> dt.datetime:
    """`due` moved later: by `working_days` for a working-day deadline, else by `delta`.

    Used when a paused clock resumes: the time the clock stood still is added back, in the
    deadline's own unit, keeping its time of day.
    """
    if working_days is None:
        return due + delta
    local = due.astimezone(zone)
    day = calendar.add_working_days(local.date(), working_days)
    return dt.datetime.combine(day, local.time(), tzinfo=zone).astimezone(dt.UTC)


def moment(at: dt.datetime, zone: ZoneInfo, country: str) -> dict[str, int | bool]:
    """What a guard knows of when an event happens: local hour, ISO weekday (1 is Monday),
    public holiday, working day (Monday to Friday and not a public holiday)."""
    local = at.astimezone(zone)
    calendar = WorkCalendar(country, CalendarRules())
    holiday = local.date() in _holidays(country, local.year, ("public",))
    return {"event_hour": local.hour, "event_weekday": local.isoweekday(),
            "event_is_holiday": holiday, "event_is_working_day": not calendar.is_closed(local.date())}
