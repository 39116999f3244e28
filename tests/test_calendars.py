"""Due times in the national calendars: holidays, daylight saving, month ends, roll-forward."""

from __future__ import annotations

import datetime as dt
import json
import stat
import sys
from collections.abc import Callable
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from pathways_engine.definition.parts import CalendarSpec
from pathways_engine.rules import calendars
from pathways_engine.rules import holiday_cache
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


# ------------------------------------------------------------------ kept holiday dates

@pytest.fixture
def kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A cache folder of the test's own, with every in-process memo of it cleared."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("PATHWAYS_CACHE_DIR", str(folder))
    calendars._holidays.cache_clear()
    holiday_cache.holiday_file.cache_clear()
    yield folder
    calendars._holidays.cache_clear()
    holiday_cache.holiday_file.cache_clear()


def _forget() -> None:
    """As a new process starts: nothing in memory, only what the file holds."""
    calendars._holidays.cache_clear()
    holiday_cache.holiday_file.cache_clear()


def _without_holidays_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "holidays", None)  # `import holidays` now fails


DK_2026 = ("DK", 2026, ("public",))


def test_a_second_run_reads_the_kept_dates_without_the_holidays_package(
        kept: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    computed = calendars._holidays(*DK_2026)
    assert dt.date(2026, 12, 25) in computed
    assert len(computed) == 10
    [written] = kept.glob("holidays-*.json")
    assert stat.S_IMODE(kept.stat().st_mode) == 0o700
    assert stat.S_IMODE(written.stat().st_mode) == 0o600
    _forget()
    _without_holidays_package(monkeypatch)
    assert calendars._holidays(*DK_2026) == computed
    assert due("DK", "2026-12-22T10:00", "3 working days") == "2026-12-28T23:59:59+01:00"


@pytest.mark.parametrize("tamper", [
    lambda dates: dates + ["2027-01-01"],          # a date of another year
    lambda dates: dates[:-1] + ["26 December"],   # not an ISO date
    lambda dates: {"dates": dates},                # not a list
])
def test_a_tampered_entry_is_ignored_and_rewritten(
        kept: Path, tamper: Callable[[list[str]], object]) -> None:
    computed = calendars._holidays(*DK_2026)
    [written] = kept.glob("holidays-*.json")
    data = json.loads(written.read_text())
    data["dates"]["DK|2026|public"] = tamper(data["dates"]["DK|2026|public"])
    written.write_text(json.dumps(data))
    _forget()
    assert calendars._holidays(*DK_2026) == computed
    repaired = json.loads(written.read_text())["dates"]["DK|2026|public"]
    assert repaired == sorted(day.isoformat() for day in computed)


def test_a_folder_others_may_write_is_not_trusted(
        kept: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calendars._holidays(*DK_2026)
    [written] = kept.glob("holidays-*.json")
    data = json.loads(written.read_text())
    data["dates"]["DK|2026|public"] = ["2026-06-01"]  # well-formed, but not Denmark's
    written.write_text(json.dumps(data))
    kept.chmod(0o777)
    _forget()
    assert dt.date(2026, 6, 1) not in calendars._holidays(*DK_2026)
    assert json.loads(written.read_text())["dates"]["DK|2026|public"] == ["2026-06-01"]
    kept.chmod(0o700)
    _forget()
    _without_holidays_package(monkeypatch)
    assert calendars._holidays(*DK_2026) == frozenset({dt.date(2026, 6, 1)})  # control


def test_an_empty_cache_setting_turns_the_cache_off(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATHWAYS_CACHE_DIR", "")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    holiday_cache.holiday_file.cache_clear()
    try:
        assert holiday_cache.holiday_file() is None
    finally:
        holiday_cache.holiday_file.cache_clear()
    monkeypatch.delenv("PATHWAYS_CACHE_DIR")
    assert holiday_cache.folder() == tmp_path / "pathways"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert holiday_cache.folder() == tmp_path / "home" / ".cache" / "pathways"


def test_a_cache_folder_that_cannot_be_made_costs_nothing_but_the_cache(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("PATHWAYS_CACHE_DIR", str(blocker / "cache"))  # under a file: no folder
    _forget()
    try:
        assert len(calendars._holidays("NO", 2026, ("public",))) > 5
        assert blocker.read_text() == ""
    finally:
        _forget()


def test_the_file_is_named_for_the_installed_package_record(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    site = tmp_path / "site"
    (site / "fakecal").mkdir(parents=True)
    (site / "fakecal" / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(site))
    holiday_cache.fingerprint.cache_clear()
    try:
        assert holiday_cache.fingerprint("fakecal") is None  # no RECORD: never cached
        record = site / "fakecal-1.0.dist-info" / "RECORD"
        record.parent.mkdir()
        record.write_text("fakecal/__init__.py,sha256=abc,0\n")
        holiday_cache.fingerprint.cache_clear()
        first = holiday_cache.fingerprint("fakecal")
        record.write_text("fakecal/__init__.py,sha256=def,0\n")  # a patched file
        holiday_cache.fingerprint.cache_clear()
        assert first is not None
        assert holiday_cache.fingerprint("fakecal") not in {None, first}
        stale = site / "fakecal-0.9.dist-info" / "RECORD"  # an old version left behind
        stale.parent.mkdir()
        stale.write_text("fakecal/__init__.py,sha256=old,0\n")
        holiday_cache.fingerprint.cache_clear()
        assert holiday_cache.fingerprint("fakecal") is None
    finally:
        holiday_cache.fingerprint.cache_clear()
