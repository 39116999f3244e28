"""Due times in the national calendars: holidays, daylight saving, month ends, roll-forward."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from pathways_engine.definition.spec import CalendarSpec
from pathways_engine.rules.calendars import WorkCalendar
from pathways_engine.rules.calendars import compute_before
from pathways_engine.rules.calendars import compute_due
from pathways_engine.rules.durations import Duration
from pathways_engine.rules.durations import parse_duration

ZONES = {"DK": "Europe/Copenhagen", "NO": "Europe/Oslo", "SE": "Europe/Stockholm"}


def due(country: str, start: str, duration: str, **rules: object) -> str:
    zone = ZoneInfo(ZONES[country])
    begin = dt.datetime.fromisoformat(start).replace(tzinfo=zone)
    result = compute_due(begin, parse_duration(duration),
                         WorkCalendar(country, CalendarSpec(**rules).rules()), zone)  # type: ignore[arg-type]
    return result.astimezone(zone).isoformat()


@pytest.mark.parametrize(("country", "expected"), [
    # 2026-12-22 Tue + 3 working days: 23 Dec, (24 Thu DK/NO normal, SE de facto via rule),
    # 25/26 holidays, 28 Dec Mon ...
    ("DK", "2026-12-28T23:59:59+01:00"),
    ("NO", "2026-12-28T23:59:59+01:00"),
    ("SE", "2026-12-28T23:59:59+01:00"),
])
def test_working_days_across_christmas(country: str, expected: str) -> None:
    assert due(country, "2026-12-22T10:00", "3 working days") == expected


def test_extra_closed_days_danish_christmas_eve() -> None:
    assert due("DK", "2026-12-22T10:00", "3 working days",
               extra_closed_days=["12-24", "12-31"]) == "2026-12-29T23:59:59+01:00"


def test_swedish_de_facto_holidays() -> None:
    assert due("SE", "2026-12-22T10:00", "3 working days",
               holiday_categories=["public", "de_facto"]) == "2026-12-29T23:59:59+01:00"


def test_new_year_and_epiphany_only_closed_in_sweden() -> None:
    # 2026-12-30 Wed + 5 working days; 31 Dec open (public only), 1 Jan closed; 6 Jan SE only.
    assert due("DK", "2026-12-30T10:00", "5 working days") == "2027-01-07T23:59:59+01:00"
    assert due("SE", "2026-12-30T10:00", "5 working days") == "2027-01-08T23:59:59+01:00"


def test_easter_maundy_thursday_closed_in_dk_and_no_not_se() -> None:
    # 2027-03-24 Wed + 2 working days: DK/NO skip Thu 25 (Maundy), Fri 26 and Mon 29
    # (Easter Monday), so Tue 30 and Wed 31; Sweden works on Thu 25: Thu 25 and Tue 30.
    assert due("DK", "2027-03-24T10:00", "2 working days") == "2027-03-31T23:59:59+02:00"
    assert due("NO", "2027-03-24T10:00", "2 working days") == "2027-03-31T23:59:59+02:00"
    assert due("SE", "2027-03-24T10:00", "2 working days") == "2027-03-30T23:59:59+02:00"
    assert due("SE", "2027-03-24T10:00", "1 working day") == "2027-03-25T23:59:59+01:00"
    assert due("DK", "2027-03-24T10:00", "1 working day") == "2027-03-30T23:59:59+02:00"


def test_norwegian_saturday_as_working_day() -> None:
    # Fri 2026-11-06 + 1 working day: Sat counts when the rule says so.
    assert due("NO", "2026-11-06T10:00", "1 working day") == "2026-11-09T23:59:59+01:00"
    assert due("NO", "2026-11-06T10:00", "1 working day",
               saturday_is_working_day=True) == "2026-11-07T23:59:59+01:00"


def test_swedish_roll_forward_for_calendar_days() -> None:
    # SIP meeting within 3 days: 2026-12-21 + 3 = Thu 24 Dec (julafton) -> roll to Mon 28.
    assert due("SE", "2026-12-21T10:00", "3 days") == "2026-12-24T23:59:59+01:00"
    assert due("SE", "2026-12-21T10:00", "3 days", roll_forward=True,
               holiday_categories=["public", "de_facto"]) == "2026-12-28T23:59:59+01:00"


def test_danish_calendar_days_do_not_roll() -> None:
    assert due("DK", "2026-11-25T10:00", "30 days") == "2026-12-25T23:59:59+01:00"


@pytest.mark.parametrize(("start", "expected_local", "elapsed_hours"), [
    # Fall back 2026-10-25 03:00 -> 02:00: 24 real hours end at 09:00 local, not 10:00.
    ("2026-10-24T10:00", "2026-10-25T09:00:00+01:00", 24),
    # Spring forward 2027-03-28 02:00 -> 03:00: 24 real hours end at 11:00 local.
    ("2027-03-27T10:00", "2027-03-28T11:00:00+02:00", 24),
])
def test_hours_are_elapsed_time_across_dst(start: str, expected_local: str,
                                           elapsed_hours: int) -> None:
    zone = ZoneInfo("Europe/Copenhagen")
    begin = dt.datetime.fromisoformat(start).replace(tzinfo=zone)
    result = compute_due(begin, Duration(24, "hours"), WorkCalendar("DK", CalendarSpec().rules()), zone)
    assert result.astimezone(zone).isoformat() == expected_local
    assert (result - begin).total_seconds() == elapsed_hours * 3600


def test_days_are_calendar_days_across_dst() -> None:
    assert due("DK", "2026-10-24T10:00", "1 day") == "2026-10-25T23:59:59+01:00"
    assert due("DK", "2027-03-27T10:00", "1 day") == "2027-03-28T23:59:59+02:00"


@pytest.mark.parametrize(("start", "duration", "expected"), [
    ("2027-01-31T10:00", "1 month", "2027-02-28T23:59:59+01:00"),
    ("2028-01-31T10:00", "1 month", "2028-02-29T23:59:59+01:00"),
    ("2026-10-31T10:00", "4 months", "2027-02-28T23:59:59+01:00"),
    ("2026-11-30T10:00", "P1M", "2026-12-30T23:59:59+01:00"),
    ("2026-11-30T10:00", "6 weeks", "2027-01-11T23:59:59+01:00"),
])
def test_months_clamp_at_month_end(start: str, duration: str, expected: str) -> None:
    assert due("DK", start, duration) == expected


def test_reminder_before_due_in_working_days() -> None:
    zone = ZoneInfo("Europe/Copenhagen")
    due_at = dt.datetime(2026, 12, 28, 23, 59, 59, tzinfo=zone)
    remind = compute_before(due_at, Duration(2, "working_days"),
                            WorkCalendar("DK", CalendarSpec().rules()), zone)
    assert remind.astimezone(zone).isoformat() == "2026-12-23T08:00:00+01:00"


@pytest.mark.parametrize(("text", "expected"), [
    ("30 days", Duration(30, "days")), ("10 working days", Duration(10, "working_days")),
    ("24 hours", Duration(24, "hours")), ("6 weeks", Duration(6, "weeks")),
    ("1 month", Duration(1, "months")), ("P30D", Duration(30, "days")),
    ("PT24H", Duration(24, "hours")), ("P6W", Duration(6, "weeks")), ("P1M", Duration(1, "months")),
])
def test_duration_forms(text: str, expected: Duration) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "days", "-3 days", "0 days", "3 fortnights", "P1M2D",
                                  "P", "PT0S", "3.5 days"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError, match=r"."):
        parse_duration(text)
