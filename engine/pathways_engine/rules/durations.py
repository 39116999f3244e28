"""Durations as coordinators write them: "30 days", "10 working days", "24 hours", "P30D".

ISO 8601 parsing is isodate's; the readable form is a number and one unit. A duration
keeps its unit because the unit decides the arithmetic (hours are elapsed time, days are
calendar days in the pathway's zone, working days skip closed days).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache
from typing import Literal

import isodate

Unit = Literal["hours", "minutes", "days", "working_days", "weeks", "months"]

_UNITS: dict[str, Unit] = {
    "minute": "minutes",
    "minutes": "minutes",
    "hour": "hours",
    "hours": "hours",
    "day": "days",
    "days": "days",
    "calendar day": "days",
    "calendar days": "days",
    "working day": "working_days",
    "working days": "working_days",
    "workday": "working_days",
    "workdays": "working_days",
    "week": "weeks",
    "weeks": "weeks",
    "month": "months",
    "months": "months",
}

_READABLE = re.compile(r"^\s*(\d{1,5})\s+([a-z ]+?)\s*$")
MAX_AMOUNT = 10_000


@dataclass(frozen=True)
class Duration:
    amount: int
    unit: Unit

    def __str__(self) -> str:
        unit = self.unit.replace("_", " ")
        return f"{self.amount} {unit[:-1] if self.amount == 1 else unit}"


def parse_duration(text: str, *, allow_zero: bool = False) -> Duration:
    """Parse a readable or ISO 8601 duration; raise ValueError with a message for the user.

    Zero ("0 days": the same day) is allowed where a deadline's length is meant.
    """
    if not isinstance(text, str):
        raise ValueError(f"a duration must be text such as '30 days' or 'P30D', not {text!r}")
    duration = _parse(text)
    if duration.amount == 0 and not allow_zero:
        raise ValueError(f"duration {text!r} must be longer than zero")
    return duration


@lru_cache(maxsize=1024)
def _parse(text: str) -> Duration:  # a step plans its deadlines with the same few texts
    if not isinstance(text, str):
        raise ValueError(f"a duration must be text such as '30 days' or 'P30D', not {text!r}")
    if text.strip().upper().startswith("P"):
        return _parse_iso(text.strip())
    match = _READABLE.match(text.lower())
    if not match:
        raise ValueError(
            f"cannot read duration {text!r}; write a number and a unit "
            f"(e.g. '30 days', '10 working days', '24 hours') or ISO 8601 ('P30D')"
        )
    amount, unit_text = int(match.group(1)), match.group(2)
    unit = _UNITS.get(unit_text)
    if unit is None:
        allowed = ", ".join(sorted({u.replace("_", " ") for u in _UNITS.values()}))
        raise ValueError(f"unknown unit {unit_text!r} in duration {text!r}; allowed: {allowed}")
    return _checked(Duration(amount, unit), text)


def _parse_iso(text: str) -> Duration:
    try:
        value = isodate.parse_duration(text)
    except (isodate.ISO8601Error, ValueError):
        raise ValueError(f"{text!r} is not an ISO 8601 duration (e.g. P30D, PT24H, P1M)") from None
    if isinstance(value, isodate.Duration):
        if value.tdelta or value.years and value.months:
            raise ValueError(f"duration {text!r} mixes units; use one unit (P1M or P30D)")
        months = int(value.years * 12 + value.months)
        if months != value.years * 12 + value.months:
            raise ValueError(f"duration {text!r} must be a whole number of months")
        return _checked(Duration(months, "months"), text)
    assert isinstance(value, timedelta)
    seconds = int(value.total_seconds())
    if seconds != value.total_seconds():
        raise ValueError(f"duration {text!r} must be whole minutes")
    if seconds % 86400 == 0 and "T" not in text.upper():
        days = seconds // 86400
        if text.upper().endswith("W"):
            return _checked(Duration(days // 7, "weeks"), text)
        return _checked(Duration(days, "days"), text)
    if seconds % 3600 == 0:
        return _checked(Duration(seconds // 3600, "hours"), text)
    if seconds % 60 == 0:
        return _checked(Duration(seconds // 60, "minutes"), text)
    raise ValueError(f"duration {text!r} must be whole minutes")


def _checked(duration: Duration, text: str) -> Duration:
    if duration.amount < 0:  # pragma: no cover - the readable form has no sign
        raise ValueError(f"duration {text!r} must not be negative")
    if duration.amount > MAX_AMOUNT:
        raise ValueError(f"duration {text!r} is implausibly long (more than {MAX_AMOUNT} units)")
    return duration
