"""The legal clock (issue 16): obligations that acts meet, same-day and windowed deadlines,
repeats, extensions and pauses, time of day, closed-day policies, rules in force by date,
guards that see when an event happens, and `check` refusing each misuse.

Each test drives a small pathway written for the rule it checks, through the engine on both
databases, and reads the outcome the way staff do (`show`, `report`, `export`).
"""

from __future__ import annotations

import datetime as dt
import json
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from pathways_engine import Database
from pathways_engine import FixedClock
from pathways_engine import PathwayEngine
from pathways_engine import Registry
from pathways_engine.errors import PathwaysError
from pathways_engine.reading.views import show
from pathways_engine.runtime import clocks
from pathways_engine.runtime.sweep import tick
from support import DEFINITIONS
from support import Cli

from pathways.cli import cli

CPH = dt.timezone(dt.timedelta(hours=1))  # Copenhagen in winter (CET)

CLOCK = """\
id: clock
version: 1
title: {da: Lovens ur, en: The legal clock}
country: DK
timezone: Europe/Copenhagen
languages: [da, en]
fallback_language: da
roles:
  gp: {label: {da: Egen læge}, sector: primary_care}
  bup: {label: {da: BUP}, sector: psychiatry}
fields:
  received: {type: date}
  forced: {type: bool}
start: {roles: [gp], requires: [received]}
states:
  referred:
    initial: true
    responsible: bup
    deadlines:
      - name: letter
        duration: 8 working days
        from: field:received
        status: law
        source: "Sundhedsloven §90 (domain.md §1.1)"
        met_by: {events: [letter_sent]}
        cancelled_by: {events: [decline]}
      - name: same_day
        duration: 0 days
        status: local_agreement
        source: "same day (test)"
        due_time: "16:00"
        met_by: {events: [letter_sent, accept]}
      - name: feedback
        duration: 3 weeks
        not_before: 2 weeks
        status: local_agreement
        source: "2-3 weeks (domain.md §1.2, Helse Møre og Romsdal)"
        met_by: {events: [feedback_sent]}
      - name: assessment
        duration: 30 days
        from: field:received
        status: law
        source: "Sundhedsloven §82 b (domain.md §1.1)"
        met_by: {events: [assessed]}
        extend: {by: 2 weeks, times: 1, roles: [bup]}
        pause: {roles: [bup]}
        reminders: ["2 working days"]
        escalate: {after: "1 working day", at: "08:00", to: [gp]}
        variants:
          - {effective_from: "2027-01-01", duration: 1 months, status: law, source: "from 2027 (test)"}
          - {switch: l45, duration: 2 months, status: proposal, source: "L 45 (test)"}
      - name: local
        duration: 10 days
        status: local_agreement
        source: "met by leaving (test)"
  assessing:
    responsible: bup
    deadlines:
      - name: evaluation
        duration: 6 weeks
        status: guideline
        source: "pakkeforløp (domain.md §1.2)"
        met_by: {events: [evaluated]}
        repeat: {every: 12 weeks}
  done: {final: true}
transitions:
  - {event: letter_sent, from: [referred, assessing], internal: true, roles: [bup]}
  - {event: feedback_sent, from: [referred, assessing], internal: true, roles: [bup]}
  - {event: assessed, from: [referred, assessing], internal: true, roles: [bup]}
  - {event: evaluated, from: assessing, internal: true, roles: [bup]}
  - event: accept
    from: referred
    to: assessing
    roles: [bup]
    guard: "not forced == true or (event_hour >= 7 and event_hour < 21 and not event_is_holiday)"
    accepts: [forced]
  - {event: back, from: assessing, to: referred, roles: [bup]}
  - {event: decline, from: [referred, assessing], to: done, roles: [bup]}
  - {event: finish, from: [referred, assessing], to: done, roles: [bup]}
notifications:
  - when: {deadline: assessment, kind: escalation}
    template: note
    to: [bup]
"""

T0 = dt.datetime(2026, 11, 2, 9, 0, tzinfo=CPH)  # Monday 2 November 2026, 09:00


def _write(folder: Path, text: str = CLOCK) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "pathway.yaml").write_text(textwrap.dedent(text), encoding="utf-8")
    for language in ("da", "en"):
        note = folder / "templates" / "note"
        note.mkdir(parents=True, exist_ok=True)
        (note / f"{language}.subject.j2").write_text("Frist {{ deadline }}\n")
        (note / f"{language}.txt.j2").write_text("Frist {{ deadline }}\n")
    return folder


@pytest.fixture
def make(db_url: str, tmp_path: Path) -> Callable[..., PathwayEngine]:
    """An engine over the test pathway (optionally edited) with deployment switches."""
    engines: list[PathwayEngine] = []

    def build(text: str = CLOCK, switches: tuple[str, ...] = ()) -> PathwayEngine:
        folder = _write(tmp_path / f"defs{len(engines)}" / "clock", text)
        engine = PathwayEngine(Database(db_url), Registry.from_paths([folder.parent]),
                               clock=FixedClock(T0), switches=switches)
        engines.append(engine)
        return engine

    yield build
    for engine in engines:
        engine.db.dispose()


def _start(engine: PathwayEngine, at: dt.datetime = T0, received: str = "2026-11-02") -> str:
    engine.clock = FixedClock(at)
    return engine.start("clock", subject_ref=f"C-{at:%m%d%H%M}", actor="gp1", role="gp",
                        values={"received": received}, at=at)


def _do(engine: PathwayEngine, instance: str, event: str, at: dt.datetime,
        **values: object) -> str:
    engine.clock = FixedClock(at)
    return engine.advance(instance, event, actor="b", role="bup", values=values, at=at).to_state


def _deadlines(engine: PathwayEngine, instance: str) -> dict[str, dict[str, object]]:
    return {d["name"]: d for d in show(engine, instance)["deadlines"]}


def _status(engine: PathwayEngine, instance: str) -> dict[str, object]:
    return {name: d["status"] for name, d in _deadlines(engine, instance).items()}


def test_an_obligation_is_met_by_its_act_not_by_leaving_and_unmet_when_the_pathway_ends(
        make: Callable[..., PathwayEngine]) -> None:
    engine = make()
    child = _start(engine)
    assert _do(engine, child, "accept", T0 + dt.timedelta(days=1)) == "assessing"
    status = _status(engine, child)
    assert status["local"] == "met"  # an ordinary deadline: leaving meets it
    assert status["letter"] == "pending"  # an obligation: still owed after the step is left
    assert status["assessment"] == "pending"
    assert _do(engine, child, "letter_sent", T0 + dt.timedelta(days=3)) == "assessing"
    assert _status(engine, child)["letter"] == "met"
    _do(engine, child, "finish", T0 + dt.timedelta(days=10))
    status = _status(engine, child)
    assert status["assessment"] == "unmet"  # the pathway ended before the act
    assert status["letter"] == "met"


def test_a_cancelling_event_cancels_and_an_obligation_opens_once_on_return(
        make: Callable[..., PathwayEngine]) -> None:
    engine = make()
    child = _start(engine)
    _do(engine, child, "accept", T0 + dt.timedelta(days=1))
    _do(engine, child, "back", T0 + dt.timedelta(days=2))  # re-enter `referred`
    rows = [d for d in show(engine, child)["deadlines"] if d["name"] == "letter"]
    assert len(rows) == 1  # the legal clock keeps running from the first entry
    assert rows[0]["due_local"] == "2026-11-12T23:59:59+01:00"
    _do(engine, child, "decline", T0 + dt.timedelta(days=3))
    assert _status(engine, child)["letter"] == "cancelled"


def test_a_same_day_deadline_falls_due_that_day(make: Callable[..., PathwayEngine]) -> None:
    engine = make()
    child = _start(engine)
    same_day = _deadlines(engine, child)["same_day"]
    assert same_day["due_local"] == "2026-11-02T16:00:00+01:00"
    engine.clock = FixedClock(T0 + dt.timedelta(hours=8))  # 17:00
    assert _status(engine, child)["same_day"] == "overdue"


@pytest.mark.parametrize(("after", "expected"), [
    (dt.timedelta(days=9), "met_early"),
    (dt.timedelta(days=16), "met"),
    (dt.timedelta(days=22), "met_late"),
])
def test_a_window_tells_early_from_on_time_from_late(
        make: Callable[..., PathwayEngine], after: dt.timedelta, expected: str) -> None:
    engine = make()
    child = _start(engine)
    feedback = _deadlines(engine, child)["feedback"]
    assert feedback["window_start"] == "2026-11-15T23:00:00+00:00"  # opens 16 Nov, 00:00
    _do(engine, child, "feedback_sent", T0 + after)
    assert _status(engine, child)["feedback"] == expected


def test_a_repeating_deadline_opens_its_next_occurrence_from_the_previous_due_date(
        make: Callable[..., PathwayEngine]) -> None:
    engine = make()
    child = _start(engine)
    _do(engine, child, "accept", T0 + dt.timedelta(days=1))
    first = _deadlines(engine, child)["evaluation"]
    assert (first["occurrence"], first["due_local"]) == (1, "2026-12-15T23:59:59+01:00")
    _do(engine, child, "evaluated", T0 + dt.timedelta(days=40))
    rows = [d for d in show(engine, child)["deadlines"] if d["name"] == "evaluation"]
    assert [(d["occurrence"], d["status"], d["due_local"]) for d in rows] == [
        (1, "met", "2026-12-15T23:59:59+01:00"),
        (2, "pending", "2027-03-09T23:59:59+01:00")]  # 12 weeks after the first due date
    _do(engine, child, "finish", T0 + dt.timedelta(days=50))
    assert [d["status"] for d in show(engine, child)["deadlines"]
            if d["name"] == "evaluation"] == ["met", "unmet"]


def test_extend_is_capped_by_role_with_a_reason_and_audited(
        make: Callable[..., PathwayEngine]) -> None:
    engine = make()
    child = _start(engine)
    with pytest.raises(PathwaysError, match="role 'gp' may not extend 'assessment'"), \
            engine.step(child) as step:
        clocks.extend(step, "assessment", reason="why", actor="gp1", role="gp")
    with pytest.raises(PathwaysError, match="give the reason"), engine.step(child) as step:
        clocks.extend(step, "assessment", reason="  ", actor="b", role="bup")
    with engine.step(child) as step:
        row = clocks.extend(step, "assessment", reason="familien ønsker en senere tid",
                            actor="b", role="bup")
    assert row.due_at == dt.datetime(2026, 12, 16, 22, 59, 59, tzinfo=dt.UTC)  # +2 weeks
    with pytest.raises(PathwaysError, match="extended 1 time already"), \
            engine.step(child) as step:
        clocks.extend(step, "assessment", reason="again", actor="b", role="bup")
    with pytest.raises(PathwaysError, match="cannot be extended"), engine.step(child) as step:
        clocks.extend(step, "letter", reason="why", actor="b", role="bup")
    history = show(engine, child)["history"]
    extended = next(h for h in history if h["kind"] == "deadline_extended")
    assert extended["note"] == "familien ønsker en senere tid"
    assert extended["changes"]["by"] == "2 weeks"


def test_a_paused_clock_wakes_no_one_and_resumes_with_the_time_added(
        make: Callable[..., PathwayEngine], db_url: str, tmp_path: Path) -> None:
    engine = make()
    child = _start(engine)
    engine.clock = FixedClock(T0 + dt.timedelta(days=5))
    with engine.step(child) as step:
        clocks.pause(step, "assessment", reason="familien har bedt om en senere dato",
                     actor="b", role="bup")
    # paused: neither overdue nor firing, however late it gets
    later = T0 + dt.timedelta(days=40)
    engine.clock = FixedClock(later)
    assert _status(engine, child)["assessment"] == "paused"
    fired_while_paused = tick(engine, later)
    assert "assessment" not in {h["changes"].get("deadline") for h in show(engine, child)[
        "history"] if h["kind"].startswith("timer_")}, fired_while_paused
    with engine.step(child) as step:
        row = clocks.resume(step, "assessment", reason="ny tid aftalt", actor="b", role="bup")
    # 35 days stood still: 2 December 23:59:59 + 35 days
    assert row.due_at.astimezone(CPH).date() == dt.date(2027, 1, 6)
    assert _deadlines(engine, child)["assessment"]["paused_seconds"] == 35 * 86400
    _do(engine, child, "assessed", later + dt.timedelta(days=1))
    result = CliRunner().invoke(cli, [
        "--db", db_url, "--definitions", str(tmp_path / "defs0"),
        "report", "--from", "2026-11-01", "--to", "2027-01-31", "--format", "json"])
    assert result.exit_code == 0, result.output
    referred = next(r for r in json.loads(result.stdout) if r["step"] == "referred")
    assert referred["paused_days"] == 35.0
    assert referred["deadlines_met_share"] == 1.0  # met on time: the pause moved it


def test_due_time_and_escalation_at_a_time_of_day(make: Callable[..., PathwayEngine]) -> None:
    engine = make()
    child = _start(engine)
    with engine.db.reading() as connection:
        from pathways_engine.store.tables import deadlines
        from sqlalchemy import select

        fires = {r.name: r.fires for r in connection.execute(
            select(deadlines).where(deadlines.c.instance_id == child))}
    local = {kind: dt.datetime.fromisoformat(at).astimezone(CPH).isoformat()
             for kind, at in fires["assessment"]}
    assert local == {
        "reminder": "2026-11-30T08:00:00+01:00",  # 2 working days before, at 08:00
        "due": "2026-12-02T23:59:59+01:00",
        "escalation": "2026-12-03T08:00:00+01:00",  # 1 working day after, at the day's start
    }


@pytest.mark.parametrize(("policy", "due"), [
    ("none", "2027-03-29T23:59:59+02:00"),
    ("warn", "2027-03-29T23:59:59+02:00"),
    ("roll_forward", "2027-03-30T23:59:59+02:00"),
    ("roll_back", "2027-03-24T23:59:59+01:00"),
])
def test_closed_day_policies(make: Callable[..., PathwayEngine], policy: str, due: str) -> None:
    """A 3-day deadline from Good Friday 2027 (26 March) ends on Easter Monday."""
    text = CLOCK.replace("""        status: local_agreement
        source: "met by leaving (test)"
""", f"""        status: local_agreement
        source: "met by leaving (test)"
        calendar: {{closed_day: {policy}}}
""").replace("duration: 10 days", "duration: 3 days")
    engine = make(text)
    child = _start(engine, dt.datetime(2027, 3, 26, 10, 0, tzinfo=CPH), received="2027-03-26")
    local = _deadlines(engine, child)["local"]
    assert local["due_local"] == due
    warning = local["rule"].get("warning")
    assert warning == ("falder på en helligdag: Anden påskedag" if policy == "warn" else None)


def test_se_1930_173_moves_midsummer_eve_to_the_next_weekday(tmp_path: Path) -> None:
    from pathways_engine.definition.loader import load_path
    from pathways_engine.runtime.deadlines import plan

    definition = load_path(DEFINITIONS / "sip_utskrivning" / "pathway.yaml")
    spec = definition.spec
    deadline = spec.states["utskrivningsklar"].deadlines[0]
    start = dt.datetime(2027, 6, 22, 10, 0, tzinfo=dt.UTC)  # 3 days: Friday 25 June, midsommarafton
    due, _ = plan(spec, deadline, start)
    assert due.astimezone(dt.timezone(dt.timedelta(hours=2))).isoformat() == \
        "2027-06-28T23:59:59+02:00"


def test_the_rule_in_force_at_the_anchor_date_applies(
        make: Callable[..., PathwayEngine]) -> None:
    engine = make()
    before = _start(engine)  # received 2 November 2026: the 30-day rule
    assert _deadlines(engine, before)["assessment"]["due_local"] == "2026-12-02T23:59:59+01:00"
    assert _deadlines(engine, before)["assessment"]["rule"]["status"] == "law"
    after = _start(engine, T0 + dt.timedelta(days=70), received="2027-01-11")
    shown = _deadlines(engine, after)["assessment"]
    assert shown["due_local"] == "2027-02-11T23:59:59+01:00"  # from 2027: 1 month
    assert shown["rule"]["source"] == "from 2027 (test)"
    switched = make(switches=("l45",))
    proposal = _start(switched, T0 + dt.timedelta(hours=1))
    shown = _deadlines(switched, proposal)["assessment"]
    assert shown["due_local"] == "2027-01-02T23:59:59+01:00"  # L 45 switched on: 2 months
    assert shown["rule"]["status"] == "proposal"


def test_guards_see_the_hour_and_holiday_of_the_event(
        make: Callable[..., PathwayEngine]) -> None:
    engine = make()
    child = _start(engine)
    night = dt.datetime(2026, 11, 2, 22, 30, tzinfo=CPH)
    with pytest.raises(PathwaysError, match="event_hour >= 7"):
        _do(engine, child, "accept", night, forced=True)
    holiday = dt.datetime(2026, 12, 25, 10, 0, tzinfo=CPH)
    with pytest.raises(PathwaysError, match="event_is_holiday"):
        _do(engine, child, "accept", holiday, forced=True)
    assert _do(engine, child, "accept", dt.datetime(2026, 12, 28, 10, 0, tzinfo=CPH),
               forced=True) == "assessing"


MISUSE = [
    ("a repeating deadline needs `met_by:`",
     lambda t: t.replace("        met_by: {events: [evaluated]}\n", "")),
    ("due_time needs a deadline in days",
     lambda t: t.replace('        due_time: "16:00"\n', "").replace(
         "        duration: 0 days\n", '        duration: 4 hours\n        due_time: "16:00"\n')),
    ("escalate.at needs `after` in days",
     lambda t: t.replace('escalate: {after: "1 working day"', 'escalate: {after: "2 hours"')),
    ("no earlier than it closes",
     lambda t: t.replace("not_before: 2 weeks", "not_before: 3 weeks")),
    ("effective_from is after effective_until",
     lambda t: t.replace('{effective_from: "2027-01-01",',
                         '{effective_from: "2027-01-01", effective_until: "2026-12-31",')),
    ("opened_by is for whole-pathway deadlines",
     lambda t: t.replace("        not_before: 2 weeks\n",
                         "        not_before: 2 weeks\n        opened_by: {events: [accept]}\n")),
    ("unknown event 'leter_sent' (did you mean 'letter_sent'?)",
     lambda t: t.replace("met_by: {events: [letter_sent]}", "met_by: {events: [leter_sent]}")),
    ("an internal transition stays in its state: leave out `to:`",
     lambda t: t.replace("{event: evaluated, from: assessing, internal: true,",
                         "{event: evaluated, from: assessing, internal: true, to: done,")),
    ("give `to:` (the state it leads to), or `internal: true`",
     lambda t: t.replace("{event: evaluated, from: assessing, internal: true,",
                         "{event: evaluated, from: assessing,")),
    ("give closed_day or the old roll_forward, not both",
     lambda t: t.replace('        source: "met by leaving (test)"\n',
                         '        source: "met by leaving (test)"\n'
                         "        calendar: {closed_day: warn, roll_forward: true}\n")),
    ("counts from field 'received', which the start does not require",
     lambda t: t.replace("start: {roles: [gp], requires: [received]}",
                         "start: {roles: [gp], accepts: [received]}") + textwrap.dedent("""\
         deadlines:
           - {name: whole, duration: 5 days, from: "field:received", status: law, source: "x y z"}
         """)),
]


@pytest.mark.parametrize(("message", "edit"), MISUSE, ids=[m[0][:40] for m in MISUSE])
def test_check_refuses_each_misuse_with_file_and_line(
        tmp_path: Path, message: str, edit: Callable[[str], str]) -> None:
    folder = _write(tmp_path / "clock", edit(CLOCK))
    result = CliRunner().invoke(cli, ["check", str(folder)])
    assert result.exit_code == 1, result.output
    assert f"{folder / 'pathway.yaml'}:" in result.stdout
    assert message in result.stdout, result.stdout


def test_check_warns_where_leaving_a_state_meets_a_legal_deadline(tmp_path: Path) -> None:
    text = CLOCK.replace("        met_by: {events: [letter_sent]}\n", "")
    text = text.replace('''        source: "met by leaving (test)"
''', '''        source: "met by leaving (test)"
        calendar: {roll_forward: true}
''')
    folder = _write(tmp_path / "clock", text)
    result = CliRunner().invoke(cli, ["check", str(folder)])
    assert result.exit_code == 0, result.output
    warnings = result.stdout.splitlines()
    assert any("warning: law deadline 'letter' is recorded met whenever 'referred' is left "
               "for 'assessing'" in w for w in warnings), warnings
    assert any("warning: calendar.roll_forward is deprecated" in w for w in warnings), warnings
    assert "1 definition OK, 2 warnings" in result.stderr


def test_a_changed_definition_under_its_old_version_is_refused(
        tmp_path: Path, sqlite_url: str) -> None:
    folder = _write(tmp_path / "defs" / "clock")
    run = Cli(sqlite_url, folder.parent)
    run("start", "clock", "--subject", "V-1", "--set", "received=2026-11-02", "--as", "gp1",
        "--role", "gp", "--at", "2026-11-02T09:00")
    import shutil

    moved = tmp_path / "moved" / "clock"  # the same files in another folder are the same v1
    shutil.copytree(folder, moved)
    Cli(sqlite_url, moved.parent)("start", "clock", "--subject", "V-0", "--set",
                                  "received=2026-11-02", "--as", "gp1", "--role", "gp")
    template = folder / "templates" / "note" / "da.txt.j2"
    template.write_text("Fristen {{ deadline }} er overskredet\n")
    refused = run("start", "clock", "--subject", "V-2", "--set", "received=2026-11-02", "--as",
                  "gp1", "--role", "gp", code=1)
    assert refused.stderr.startswith(f"error: {folder / 'pathway.yaml'}:2: pathway 'clock' "
                                     "version 1 has changed since instances started on it")
    assert "give the changed definition (or template) a new version, version 2" in refused.stderr
    (folder / "pathway.yaml").write_text(CLOCK.replace("version: 1", "version: 2"))
    run("start", "clock", "--subject", "V-2", "--set", "received=2026-11-02", "--as", "gp1",
        "--role", "gp")


def test_tick_dry_run_fires_nothing_and_a_far_future_now_needs_force(sqlite_url: str) -> None:
    run = Cli(sqlite_url, DEFINITIONS)
    instance = run("start", "mistrivsel_referral", "--subject", "T-1", "--birth-date",
                   "2014-05-02", "--set", "severity=moderate", "--set", "consent_exchange=true",
                   "--as", "dr.a", "--role", "gp", "--at", "2026-11-02T09:00").output.strip()
    far = (dt.datetime.now(dt.UTC) + dt.timedelta(days=400)).strftime("%Y-%m-%dT%H:%M")
    refused = run("tick", "--now", far, code=1)
    assert "--now" in refused.stderr
    assert "--force" in refused.stderr
    dry = json.loads(run("tick", "--now", far, "--dry-run", "--json").output)
    assert dry["dry_run"] is True
    assert dry["fired"] >= 1
    history = json.loads(run("history", instance, "--json").output)
    assert not [h for h in history if h["kind"].startswith("timer_")]  # nothing was fired
    fired = json.loads(run("tick", "--now", far, "--force", "--json").output)
    assert fired["fired"] == dry["fired"]


def test_show_now_and_overdue_now_read_the_clock_they_are_given(sqlite_url: str) -> None:
    run = Cli(sqlite_url, DEFINITIONS)
    instance = run("start", "mistrivsel_referral", "--subject", "T-2", "--birth-date",
                   "2014-05-02", "--set", "severity=moderate", "--set", "consent_exchange=true",
                   "--as", "dr.a", "--role", "gp", "--at", "2026-11-02T09:00").output.strip()
    early = json.loads(run("show", instance, "--now", "2026-11-03T09:00", "--json").output)
    late = json.loads(run("show", instance, "--now", "2026-11-30T09:00", "--json").output)
    assert early["deadlines"][0]["status"] == "pending"
    assert late["deadlines"][0]["status"] == "overdue"
    overdue = json.loads(run("overdue", "--now", "2026-11-30T09:00", "--json").output)
    assert [(o["instance"], o["deadline"]) for o in overdue] == [(instance, "municipal_triage")]
    assert json.loads(run("overdue", "--now", "2026-11-03T09:00", "--json").output) == []


def test_shipped_pathways_carry_obligations_where_their_sources_name_an_act() -> None:
    """Issue 16's examples: the §90 letter, §82 b, receipt and evaluation are met by acts."""
    from pathways_engine.definition.registry import Registry as Shipped

    registry = Shipped.from_paths([DEFINITIONS])
    obligations = {(p, deadline.name) for p in registry.ids()
                   for _, deadline in registry.get(p).spec.all_deadlines()
                   if deadline.obligation}
    for expected in [("mistrivsel_referral", "information_letter"),
                     ("mistrivsel_referral", "assessment_right"),
                     ("bup_samhandlingsforlop", "evaluering"),
                     ("sip_utskrivning", "informationsoverforing"),
                     ("postnatal_follow_up", "first_home_visit")]:
        assert expected in obligations


def test_a_deployment_switch_turns_a_proposal_on_and_check_catches_a_typo(
        tmp_path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    deployment = tmp_path / "deployment.yaml"
    deployment.write_text("switches: [dk_l45]\n")
    monkeypatch.setenv("PATHWAYS_DEPLOYMENT", str(deployment))
    run = Cli(sqlite_url, DEFINITIONS)
    instance = run("start", "mistrivsel_referral", "--subject", "L-1", "--birth-date",
                   "2014-05-02", "--set", "severity=severe", "--set", "consent_exchange=true",
                   "--as", "dr.a", "--role", "gp", "--at", "2026-11-02T09:00").output.strip()
    run("advance", instance, "refer_bup", "--set", "referral_received=2026-11-02", "--as", "p",
        "--role", "ppr", "--at", "2026-11-02T10:00")
    shown = {d["name"]: d for d in json.loads(run("show", instance, "--json").output)["deadlines"]}
    assert shown["assessment_right"]["due_local"] == "2027-01-02T23:59:59+01:00"  # 2 months
    assert shown["assessment_right"]["rule"]["status"] == "proposal"
    deployment.write_text("switches: [dk_l54]\n")
    result = CliRunner().invoke(cli, ["check"])
    assert result.exit_code == 1
    assert (f"{deployment}:1: switches: 'dk_l54' is named by no deadline variant of these "
            "definitions (did you mean 'dk_l45'?)") in result.stdout
