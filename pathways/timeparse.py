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


ISO_TIME = IsoDateTime()
ISO_DATE = IsoDate()


def aware_or_utc(value: dt.datetime | None) -> dt.datetime | None:
    """For --now: a naive time is taken as UTC (it is not tied to one pathway)."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=dt.UTC)
