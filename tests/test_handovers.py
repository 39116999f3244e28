"""Across sectors (issue 15): one pathway handing the child over to another, in one transaction;
the answer coming back exactly once; a parent's end taking its children along; one child's
whole picture; filters that refuse a typo; corrections and undo as audited steps.

Two small pathways written for the rules they check (`parent` hands over to `child` and waits
for its outcome), driven through the real CLI - in child processes where a kill or a race
matters - on both databases.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pathways_engine import FixedClock
from pathways_engine import PathwayEngine
from pathways_engine import Registry
from pathways_engine.definition.registry import load_all
from pathways_engine.store.database import Database
from support import ACTORS
from support import ROOT
from support import Cli
from support import run_killed

sys.path.insert(0, str(ROOT))
from bench.common import statements  # noqa: E402 - the benchmarks' own counter

PARENT = """\
id: parent
version: 1
title: {da: Henvisning, en: Referral}
country: DK
timezone: Europe/Copenhagen
languages: [da, en]
fallback_language: da
roles:
  gp: {label: {da: Egen læge}, sector: primary_care}
  ltt: {label: {da: Behandlingstilbuddet}, sector: municipal_health}
  contact_person: {label: {da: Kontaktperson}, sector: municipal_social}
fields:
  received: {type: date}
  outcome: {type: enum, values: [better, bup]}
  second: {type: enum, values: [better, bup]}
start: {roles: [gp], accepts: [received]}
states:
  referred: {initial: true, responsible: gp}
  waiting: {responsible: ltt}
  advised: {responsible: gp}
  done: {final: true}
transitions:
  - {event: offer, from: referred, to: waiting, roles: [gp]}
  - {event: finished, from: waiting, to: done, accepts: [outcome], guard: "outcome != 'bup'"}
  - {event: finished, from: waiting, to: advised, accepts: [outcome], guard: "outcome == 'bup'"}
  - {event: close, from: [referred, advised, waiting], to: done, roles: [gp]}
handovers:
  - name: to_offer
    when: {event: offer}
    start: child
    as: ltt
    carry: {received_at: received}
    returns: {event: finished, fields: {outcome: result}}
    on_end: cancel
"""

CHILD = """\
id: child
version: 1
title: {da: Behandlingstilbud, en: Low-threshold offer}
country: DK
timezone: Europe/Copenhagen
languages: [da, en]
fallback_language: da
roles:
  ltt: {label: {da: Behandlingstilbuddet}, sector: municipal_health}
  contact_person: {label: {da: Kontaktperson}, sector: municipal_social}
fields:
  received_at: {type: date}
  result: {type: enum, values: [better, bup]}
start: {roles: [ltt], accepts: [received_at], allow_parallel: true}
states:
  open:
    initial: true
    responsible: ltt
    deadlines:
      - name: first_talk
        duration: 10 working days
        from: field:received_at
        status: local_agreement
        source: test
  ended: {final: true}
transitions:
  - {event: end, from: open, to: ended, roles: [ltt], requires: [result]}
notifications:
  - when: {enter: open}
    template: step_assigned
    to: [contact_person]
"""

TEMPLATE = "Til {{ recipient.name or recipient.role_label }}: {{ instance.state_title }}\n"

PARTIES = """\
areas: [norddjurs]
parties:
  - {id: ltt_nord, roles: [ltt], name: LTT Nord, email: ltt@example.dk, channel: console}
  - {id: kontakt_a, roles: [contact_person], name: Hanne Holm, email: hanne@example.dk}
  - {id: kontakt_b, roles: [contact_person], name: Kontor B, email: b@example.dk}
"""

START = ["start", "parent", "--subject", "H-1", "--birth-date", "2014-05-02", "--set",
         "received=2026-11-02", "--as", "dr.a", "--role", "gp", "--at", "2026-11-02T09:00",
         "--json"]
OFFER = ["offer", "--as", "dr.a", "--role", "gp", "--at", "2026-11-03T09:00"]


def write_pathways(root: Path, parent: str = PARENT, child: str = CHILD) -> Path:
    for name, text in (("parent", parent), ("child", child)):
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "pathway.yaml").write_text(text, encoding="utf-8")
        for lang in ("da", "en"):
            template = folder / "templates" / "step_assigned"
            template.mkdir(parents=True, exist_ok=True)
            (template / f"{lang}.subject.j2").write_text("Forløb {{ pathway.title }}\n")
            (template / f"{lang}.txt.j2").write_text(TEMPLATE)
    (root / "parties.yaml").write_text(PARTIES, encoding="utf-8")
    return root


@pytest.fixture
def defs(tmp_path: Path) -> Path:
    return write_pathways(tmp_path / "defs")


def instances(run: Cli, subject: str = "H-1") -> dict[str, dict[str, object]]:
    """The child's pathways by pathway id (the newest of each)."""
    rows = json.loads(run("list", "--subject", subject, "--json").output)
    return {str(r["pathway"]): r for r in rows}


def handed_over(run: Cli) -> tuple[str, str]:
    parent = json.loads(run(*START).output)["id"]
    run("advance", parent, *OFFER)
    child = instances(run)["child"]["id"]
    return str(parent), str(child)


# ------------------------------------------------------------------ check across definitions

MISUSES = [
    ("parent", "    start: child\n", "    start: chlid\n",
     "handover 'to_offer': no pathway chlid (did you mean 'child'?)"),
    ("parent", "    as: ltt\n", "    as: gp\n",
     "handover 'to_offer' to 'child': role 'gp' may not start it; its start roles: ltt"),
    ("parent", "carry: {received_at: received}", "carry: {received_on: received}",
     "handover 'to_offer' to 'child': it has no field 'received_on' (did you mean "
     "'received_at'?)"),
    ("parent", "carry: {received_at: received}", "carry: {received_at: outcome}",
     "'outcome' cannot fill 'received_at': a enum is not a date"),
    ("parent", "fields: {outcome: result}", "fields: {outcome: reslt}",
     "it has no field 'reslt' (did you mean 'result'?)"),
    ("child", "accepts: [received_at]", "requires: [received_at, result]",
     "its start requires result: carry them"),
    ("parent", "returns: {event: finished", "returns: {event: offer",
     "the pathway waits for 'offer' in 'waiting', but no transition for 'offer' leaves "
     "'waiting'"),
    ("parent", "    when: {event: offer}\n", "    when: {event: ofer}\n", "unknown event 'ofer'"),
    ("child", "  - {event: end, from: open, to: ended, roles: [ltt], requires: [result]}\n",
     "  - {event: end, from: open, to: ended, roles: [ltt], requires: [result]}\n"
     "handovers:\n  - {name: back, when: {event: end}, start: parent, as: gp}\n",
     "handovers form a cycle: child -> parent -> child"),
]


@pytest.mark.parametrize(("which", "old", "new", "message"), MISUSES,
                         ids=[m[3][:40] for m in MISUSES])
def test_check_refuses_each_handover_misuse_with_file_and_line(
        tmp_path: Path, which: str, old: str, new: str, message: str) -> None:
    texts = {"parent": PARENT, "child": CHILD}
    assert old in texts[which]
    texts[which] = texts[which].replace(old, new, 1)
    root = write_pathways(tmp_path, texts["parent"], texts["child"])
    _, problems = load_all([root])
    errors = [p for p in problems if not p.warning]
    assert any(message in p.message for p in errors), [p.message for p in errors]
    hit = next(p for p in errors if message in p.message)
    assert hit.line is not None
    assert str(hit.path).endswith("pathway.yaml")


def test_check_of_one_file_finds_the_pathway_it_hands_over_to_among_the_configured(
        defs: Path) -> None:
    from click.testing import CliRunner

    from pathways.cli import cli

    def check(*args: str) -> tuple[int, str]:
        result = CliRunner().invoke(cli, list(args))
        return result.exit_code, result.output

    code, out = check("--definitions", str(defs), "check")
    assert code == 0, out
    # one file, checked against the configured definitions that give it `child`
    code, out = check("--definitions", str(defs), "check", str(defs / "parent"))
    assert code == 0, out
    code, out = check("--definitions", str(defs / "parent"), "check")
    assert code == 1
    assert f"{defs / 'parent' / 'pathway.yaml'}:" in out
    assert "no pathway child" in out


# ------------------------------------------------------------------ one transaction, once


def test_a_handover_commits_with_its_step_or_not_at_all(defs: Path, db_url: str) -> None:
    run = Cli(db_url, defs)
    parent = json.loads(run(*START).output)["id"]
    killed = run_killed(db_url, "advance.before_commit=kill", "advance", parent, *OFFER,
                        definitions=defs)
    assert killed.returncode == -9, killed.stderr
    mine = instances(run)
    assert set(mine) == {"parent"}  # no child without the step that started it
    assert mine["parent"]["state"] == "referred"
    run("advance", parent, *OFFER)  # the rerun completes it: exactly one child
    rows = json.loads(run("list", "--subject", "H-1", "--json").output)
    assert sorted(str(r["pathway"]) for r in rows) == ["child", "parent"]
    child = instances(run)["child"]
    shown = json.loads(run("show", str(child["id"]), "--json").output)
    assert shown["parent"] == {"id": parent, "handover": "to_offer", "pathway": "parent"}
    assert shown["data"]["received_at"] == "2026-11-02"  # carried
    assert [d["name"] for d in shown["deadlines"]] == ["first_talk"]
    history = json.loads(run("history", parent, "--json").output)
    assert [h["kind"] for h in history].count("handover") == 1
    run("audit", "verify")


def test_the_answer_reaches_the_waiting_parent_once_though_delivery_was_killed(
        defs: Path, db_url: str) -> None:
    run = Cli(db_url, defs)
    parent, child = handed_over(run)
    killed = run_killed(db_url, "signals.before_commit=kill", "advance", child, "end", "--set",
                        "result=bup", "--as", "l", "--role", "ltt", "--at", "2026-11-20T10:00",
                        definitions=defs)
    assert killed.returncode == -9, killed.stderr
    mine = instances(run)
    assert mine["child"]["status"] == "completed"  # committed before the delivery was killed
    assert mine["parent"]["state"] == "waiting"
    swept = json.loads(run("tick", "--json").output)
    assert swept["signals"] == 1
    assert json.loads(run("tick", "--json").output)["signals"] == 0
    shown = json.loads(run("show", parent, "--json").output)
    assert shown["state"] == "advised"  # the guard read the outcome carried back
    assert shown["data"]["outcome"] == "bup"
    history = json.loads(run("history", parent, "--json").output)
    assert [h["event"] for h in history].count("finished") == 1
    run("audit", "verify")


CONCURRENT = PARENT.replace(
    "  - {event: close,",
    "  - {event: second_back, from: [waiting, advised], internal: true, accepts: [second]}\n"
    "  - {event: close,").replace(
    "    on_end: cancel\n",
    "    on_end: cancel\n"
    "  - name: second_offer\n    when: {event: offer}\n    start: child\n    as: ltt\n"
    "    carry: {received_at: received}\n"
    "    returns: {event: second_back, fields: {second: result}}\n")


def test_two_children_completing_at_once_both_reach_the_parent(tmp_path: Path,
                                                               db_url: str) -> None:
    defs = write_pathways(tmp_path / "defs", parent=CONCURRENT)
    run = Cli(db_url, defs)
    parent = json.loads(run(*START).output)["id"]
    run("advance", parent, *OFFER)
    rows = json.loads(run("list", "--subject", "H-1", "--pathway", "child", "--json").output)
    handover = {json.loads(run("show", str(r["id"]), "--json").output)["parent"]["handover"]:
                r["id"] for r in rows}
    assert set(handover) == {"to_offer", "second_offer"}
    go = tmp_path / "go"
    env = {**os.environ, "PATHWAYS_FAILPOINTS": f"advance.after_read=wait:{go}"}
    ends = {"to_offer": "bup", "second_offer": "better"}
    procs = [subprocess.Popen(
        [sys.executable, "-m", "pathways", "--db", db_url, "--definitions", str(defs),
         "--actors", str(ACTORS), "advance", str(handover[name]), "end", "--set",
         f"result={value}", "--as", "l", "--role", "ltt", "--at", "2026-11-20T10:00"],
        env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for name, value in ends.items()]
    deadline = time.monotonic() + 60
    while (len(list(tmp_path.glob("go.*.waiting"))) < 1 and time.monotonic() < deadline):
        time.sleep(0.05)
    go.touch()
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    run("tick")  # whatever a deliverer skipped while the other held the parent
    shown = json.loads(run("show", parent, "--json").output)
    assert shown["data"]["second"] == "better"
    assert shown["data"]["outcome"] == "bup"
    assert shown["state"] == "advised"  # whichever came first, both were taken
    history = json.loads(run("history", parent, "--json").output)
    events = [h["event"] for h in history]
    assert events.count("finished") == 1
    assert events.count("second_back") == 1
    run("audit", "verify")


def test_a_parent_withdrawn_takes_the_children_it_cancels_along(defs: Path,
                                                               db_url: str) -> None:
    run = Cli(db_url, defs)
    parent, child = handed_over(run)
    refused = run("withdraw", parent, "--reason", "moved away", "--as", "dr.a", "--role", "gp",
                  code=4)
    assert "may not withdraw" in refused.stderr
    assert "`may:`" in refused.stderr
    run("withdraw", parent, "--reason", "moved to another municipality", "--as", "leader",
        "--role", "contact_person")
    mine = instances(run)
    assert mine["parent"]["status"] == "withdrawn"
    assert mine["child"]["status"] == "withdrawn"
    shown = json.loads(run("show", child, "--json").output)
    assert all(d["status"] != "pending" for d in shown["deadlines"])
    refused = run("advance", child, "end", "--set", "result=better", "--as", "l", "--role",
                  "ltt", code=1)
    assert "withdrawn" in refused.stderr
    run("audit", "verify")


def test_a_handover_costs_at_most_twice_the_statements_of_a_plain_step(
        defs: Path, database: Database) -> None:
    engine = PathwayEngine(database, Registry.from_paths([defs]),
                           clock=FixedClock(dt.datetime(2026, 11, 3, 9, tzinfo=dt.UTC)))
    first, second, third = (
        engine.start("parent", subject_ref=f"S-{n}", birth_date=dt.date(2014, 1, 1),
                     actor="gp1", role="gp", values={"received": "2026-11-02"})
        for n in range(3))
    engine.advance(first, "offer", actor="gp1", role="gp")  # warm the caches
    with statements(database.engine) as plain:
        engine.advance(second, "close", actor="gp1", role="gp")
    with statements(database.engine) as handing:
        step = engine.advance(third, "offer", actor="gp1", role="gp")
    assert len(step.started) == 1
    assert handing.statements <= 2 * plain.statements, (handing, plain)


# ------------------------------------------------------------------ one child's picture


def test_subject_shows_every_pathway_with_deadlines_and_one_contact_person(
        defs: Path, db_url: str) -> None:
    run = Cli(db_url, defs)
    parent, child = handed_over(run)
    run("assign", child, "contact_person", "kontakt_a", "--as", "leader", "--role",
        "contact_person", "--for-child")
    picture = json.loads(run("subject", "H-1", "--json").output)
    assert picture["contact_person"] == "kontakt_a"
    assert picture["contact_person_name"] == "Hanne Holm"
    by_pathway = {p["pathway"]: p for p in picture["pathways"]}
    assert by_pathway["child"]["parent"] == parent
    assert by_pathway["child"]["assigned"]["contact_person"] == "kontakt_a"
    assert by_pathway["parent"]["assigned"]["contact_person"] == "kontakt_a"
    [talk] = by_pathway["child"]["open_deadlines"]
    assert talk["name"] == "first_talk"
    assert talk["due_local"].startswith("2026-11-16")  # 10 working days from 2 November
    assert by_pathway["parent"]["state_title"] == "waiting"
    text = run("subject", "H-1").output
    assert "contact person: Hanne Holm" in text
    assert "(from " + parent + ")" in text
    # times in the pathway's zone, as `show` prints them (the offer was sent at 09:00 local,
    # 08:00 UTC)
    assert "latest: 2026-11-03 09:00 handover by dr.a" in text
    assert "due 2026-11-16 23:59" in text
    # a later pathway of the child is routed to the same contact person
    later = json.loads(run("start", "child", "--subject", "H-1", "--birth-date", "2014-05-02",
                           "--set", "received_at=2026-11-04", "--as", "l", "--role", "ltt",
                           "--json").output)["id"]
    outbox = json.loads(run("outbox", "--json").output)
    mine = [m for m in outbox if m["instance"] == later]
    assert [m["party"] for m in mine] == ["kontakt_a"]


def test_subject_reads_a_constant_number_of_statements_however_many_pathways(
        defs: Path, database: Database) -> None:
    from pathways_engine.reading.subjects import subject

    engine = PathwayEngine(database, Registry.from_paths([defs]),
                           clock=FixedClock(dt.datetime(2026, 11, 3, 9, tzinfo=dt.UTC)))
    for ref, count in (("ONE", 1), ("MANY", 10)):
        for _ in range(count):
            engine.start("child", subject_ref=ref, actor="l", role="ltt",
                         values={"received_at": "2026-11-02"})
    subject(engine, "ONE")  # warm the caches
    with statements(database.engine) as one:
        subject(engine, "ONE")
    with statements(database.engine) as many:
        assert len(subject(engine, "MANY")["pathways"]) == 10
    assert many.statements == one.statements


# ------------------------------------------------------------------ filters that refuse typos


def test_a_filter_with_a_typo_is_refused_with_a_suggestion(defs: Path, db_url: str) -> None:
    run = Cli(db_url, defs)
    handed_over(run)
    refused = run("overdue", "--role", "lt", code=1)
    assert "--role 'lt'" in refused.stderr
    assert "did you mean 'ltt'?" in refused.stderr
    refused = run("list", "--pathway", "chlid", code=1)
    assert "did you mean 'child'?" in refused.stderr
    refused = run("list", "--pathway", "child", "--state", "opn", code=1)
    assert "did you mean 'open'?" in refused.stderr
    assert [r["pathway"] for r in json.loads(run("list", "--pathway", "child", "--state",
                                                 "open", "--json").output)] == ["child"]


# ------------------------------------------------------------------ putting mistakes right


def test_a_correction_recounts_the_deadlines_and_stays_in_the_trail(defs: Path,
                                                                     db_url: str) -> None:
    run = Cli(db_url, defs)
    _, child = handed_over(run)
    refused = run("correct", child, "--set", "received_at=2026-11-09", "--reason", "typo",
                  "--as", "l", "--role", "ltt", code=4)
    assert "may not correct" in refused.stderr
    run("correct", child, "--set", "received_at=2026-11-09", "--reason",
        "the referral arrived on the 9th", "--as", "leader", "--role", "contact_person")
    shown = json.loads(run("show", child, "--json").output)
    [talk] = [d for d in shown["deadlines"] if d["closed_at"] is None]
    assert talk["due_local"].startswith("2026-11-23")  # 10 working days from 9 November
    history = json.loads(run("history", child, "--json").output)
    [entry] = [h for h in history if h["kind"] == "correction"]
    assert entry["note"] == "the referral arrived on the 9th"
    run("audit", "verify")


def test_undo_takes_back_the_latest_step_but_not_a_handover(defs: Path, db_url: str) -> None:
    run = Cli(db_url, defs)
    parent, _ = handed_over(run)
    refused = run("undo", parent, "--reason", "wrong child", "--as", "leader", "--role",
                  "contact_person", code=1)
    assert "withdraw" in refused.stderr
    other = json.loads(run(*[a if a != "H-1" else "H-2" for a in START]).output)["id"]
    run("advance", other, "close", "--as", "dr.a", "--role", "gp", "--at", "2026-11-04T09:00")
    done = json.loads(run("undo", other, "--reason", "closed by mistake", "--as", "leader",
                          "--role", "contact_person", "--json").output)
    assert done["changes"]["state"] == ["done", "referred"]
    shown = json.loads(run("show", other, "--json").output)
    assert shown["status"] == "active"
    assert shown["state"] == "referred"
    run("advance", other, *OFFER)  # it goes on from where it was
    run("audit", "verify")


# ------------------------------------------------------------------ a pathway already running

def test_a_handover_joins_the_pathway_the_child_already_has_instead_of_refusing_the_step(
        tmp_path: Path, db_url: str) -> None:
    """The municipality started the offer itself before the GP's step hands over to it: the
    step is not refused for a duplicate; it waits for the running one, which answers it."""
    defs = write_pathways(tmp_path / "defs", child=CHILD.replace(", allow_parallel: true", ""))
    run = Cli(db_url, defs)
    own = json.loads(run("start", "child", "--subject", "H-1", "--birth-date", "2014-05-02",
                         "--set", "received_at=2026-10-30", "--as", "l", "--role", "ltt",
                         "--at", "2026-11-02T08:00", "--json").output)["id"]
    parent = json.loads(run(*START).output)["id"]
    run("advance", parent, *OFFER)
    rows = json.loads(run("list", "--subject", "H-1", "--json").output)
    assert sorted(str(r["pathway"]) for r in rows) == ["child", "parent"]  # no second child
    shown = json.loads(run("show", own, "--json").output)
    assert shown["parent"] == {"id": parent, "handover": "to_offer", "pathway": "parent"}
    assert shown["data"] == {"received_at": "2026-10-30"}  # what it holds is not overwritten
    history = json.loads(run("history", own, "--json").output)
    assert history[-1]["kind"] == "joined"
    assert history[-1]["changes"] == {"parent": parent, "handover": "to_offer"}
    handover = [h for h in json.loads(run("history", parent, "--json").output)
                if h["kind"] == "handover"]
    assert handover[0]["changes"]["instance"] == own
    assert handover[0]["changes"]["joined"] is True
    assert json.loads(run("show", parent, "--json").output)["state"] == "waiting"
    run("advance", own, "end", "--set", "result=better", "--as", "l", "--role", "ltt",
        "--at", "2026-11-10T10:00")
    after = json.loads(run("show", parent, "--json").output)
    assert (after["state"], after["data"]["outcome"]) == ("done", "better")  # answered once
    run("audit", "verify")


def test_a_waiting_handover_to_a_pathway_that_answers_another_is_refused_in_one_line(
        tmp_path: Path, db_url: str) -> None:
    defs = write_pathways(tmp_path / "defs", child=CHILD.replace(", allow_parallel: true", ""))
    run = Cli(db_url, defs)
    first, child = handed_over(run)
    second = json.loads(run(*START[:-1], "--allow-duplicate", "--json").output)["id"]
    refused = run("advance", second, *OFFER, code=1)
    assert refused.stderr.strip().splitlines() == [
        f"error: handover 'to_offer': subject 'H-1' already has a running 'child' ({child}), "
        f"which answers parent {first}; this step would wait for it for ever: finish or "
        f"withdraw it first"]
    assert json.loads(run("show", second, "--json").output)["state"] == "referred"
    assert json.loads(run("show", child, "--json").output)["parent"]["id"] == first


def test_a_handover_that_does_not_wait_leaves_a_pathway_of_another_parent_with_it(
        tmp_path: Path, db_url: str) -> None:
    """docs/definitions.md: only a pathway without a parent becomes the joining handover's."""
    defs = write_pathways(
        tmp_path / "defs",
        parent=PARENT.replace("    returns: {event: finished, fields: {outcome: result}}\n", ""),
        child=CHILD.replace(", allow_parallel: true", ""))
    run = Cli(db_url, defs)
    first, child = handed_over(run)
    before = json.loads(run("history", child, "--json").output)
    second = json.loads(run(*START[:-1], "--allow-duplicate", "--json").output)["id"]
    run("advance", second, *OFFER)
    assert json.loads(run("show", child, "--json").output)["parent"]["id"] == first
    assert json.loads(run("history", child, "--json").output) == before  # no `joined`
    [link] = [h for h in json.loads(run("history", second, "--json").output)
              if h["kind"] == "handover"]
    assert (link["changes"]["instance"], link["changes"]["joined"]) == (child, True)
    assert sorted(str(r["pathway"]) for r in json.loads(
        run("list", "--subject", "H-1", "--json").output)) == ["child", "parent", "parent"]


YOUNG = """\
id: young
version: 1
title: {da: Småbørn, en: Under fives}
country: DK
timezone: Europe/Copenhagen
languages: [da, en]
fallback_language: da
roles:
  ltt: {label: {da: Behandlingstilbuddet}, sector: municipal_health}
eligibility: {max_age_years: 5}
start: {roles: [ltt]}
states:
  open: {initial: true, responsible: ltt}
  ended: {final: true}
transitions:
  - {event: end, from: open, to: ended, roles: [ltt]}
"""


def test_a_step_refused_after_its_handover_joined_leaves_the_joined_pathway_as_it_was(
        tmp_path: Path, database: Database) -> None:
    """In one batch: the parent's step joins the running offer, then its second handover is
    refused (the child is too old for it), so the step is refused; the offer, sent its own
    event later in the same batch, must end unlinked, answering nobody."""
    from pathways_engine import StepRequest
    from pathways_engine.errors import PathwaysError
    from pathways_engine.reading.views import history
    from pathways_engine.reading.views import show
    from pathways_engine.runtime.sweep import tick

    second = ("  - {name: to_young, when: {event: offer}, start: young, as: ltt}\n")
    defs = write_pathways(tmp_path / "defs", parent=PARENT + second,
                          child=CHILD.replace(", allow_parallel: true", ""))
    (defs / "young").mkdir()
    (defs / "young" / "pathway.yaml").write_text(YOUNG, encoding="utf-8")
    engine = PathwayEngine(database, Registry.from_paths([defs]),
                           clock=FixedClock(dt.datetime(2026, 11, 3, 9, tzinfo=dt.UTC)))
    own = engine.start("child", subject_ref="H-1", birth_date=dt.date(2014, 5, 2), actor="l",
                       role="ltt", values={"received_at": "2026-10-30"})
    parent = engine.start("parent", subject_ref="H-1", actor="gp1", role="gp",
                          values={"received": "2026-11-02"})
    refused, ended = engine.advance_many([
        StepRequest(parent, "offer", actor="gp1", role="gp"),
        StepRequest(own, "end", actor="l", role="ltt", values={"result": "better"})])
    assert isinstance(refused, PathwaysError), refused
    assert "young" in str(refused)
    assert not isinstance(ended, PathwaysError), ended
    shown = show(engine, own)
    assert (shown["status"], shown["parent"]) == ("completed", None)
    assert "joined" not in [h["kind"] for h in history(engine, own)]
    assert tick(engine, dt.datetime(2026, 11, 3, 10, tzinfo=dt.UTC)).signals == 0  # no answer
    assert show(engine, parent)["state"] == "referred"
