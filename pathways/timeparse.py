"""ISO 8601 times and dates from the command line, with messages naming the option."""

from __future__ import annotations

import datetime as dt
from typing import Any

import click


class IsoDateTime(click.ParamType):  # type: ignore[type-arg]
    """An ISO 8601 time; without an offset it stays naive (the pathway's local time)."""

    name = "TIME"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> dt.datetime:
        if isinstance(value, dt.datetime):
            return value
        text = str(value).strip()
        try:
            parsed = dt.datetime.fromisoformat(text)  # 3.11 reads "Z" itself
        except ValueError:
            self.fail(f"{text!r} is not an ISO 8601 time such as 2026-11-23T09:30 or "
                      "2026-11-23T09:30+01:00", param, ctx)
        return parsed


class IsoDate(click.ParamType):  # type: ignore[type-arg]
    name = "DATE"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> dt.date:
        if isinstance(value, dt.date):
            return value
        try:
            return dt.date.fromisoformat(str(value).strip())
        except ValueError:
            self.fail(f"{value!r} is not a date (YYYY-MM-DD)", param, ctx)


class Lasting(click.ParamType):  # type: ignore[type-arg]
    """How long, as definitions write it ("90 days", "12 hours", "P90D"); elapsed time, so
    minutes, hours, days or weeks (zero allowed: at once)."""

    name = "DURATION"
    _SPAN = {"minutes": dt.timedelta(minutes=1), "hours": dt.timedelta(hours=1),
             "days": dt.timedelta(days=1), "weeks": dt.timedelta(weeks=1)}

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> dt.timedelta:
        if isinstance(value, dt.timedelta):
            return value
        from pathways_engine.rules.durations import parse_duration

        try:
            duration = parse_duration(str(value), allow_zero=True)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)
        if duration.unit not in self._SPAN:
            self.fail(f"{value!r}: give minutes, hours, days or weeks (such as '90 days' or "
                      "'P90D'), not working days or months", param, ctx)
        return duration.amount * self._SPAN[duration.unit]


ISO_TIME = IsoDateTime()
ISO_DATE = IsoDate()
LASTING = Lasting()


def aware_or_utc(value: dt.datetime | None) -> dt.datetime | None:
    """For --now: a naive time is taken as UTC (it is not tied to one pathway)."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=dt.UTC)
