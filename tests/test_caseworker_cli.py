"""Caseworker commands against real databases: results, every error case, nothing half-written."""

from __future__ import annotations

import json

import pytest
from support import DEFINITIONS
from support import Cli
from support import version_of

START = ["start", "mistrivsel_referral", "--subject", "C-1", "--birth-date", "2014-05-02",
         "--set", "severity=moderate", "--set", "consent_exchange=true", "--as", "dr.a",
         "--role", "gp", "--at", "2026-11-02T09:00"]


def started(run: Cli) -> str:
    return str(json.loads(run(*START, "--json").output)["id"])


def snapshot(run: Cli, instance: str) -> dict[str, object]:
    data = json.loads(run("show", instance, "--json").output)
    return data


def test_start_show_advance_history(run: Cli) -> None:
    instance = started(run)
    shown = snapshot(run, instance)
    assert shown["state"] == "referred"
    assert shown["pathway"] == "mistrivsel_referral"
    shipped = (DEFINITIONS / "mistrivsel_referral" / "pathway.yaml").read_text()
    assert shown["version"] == version_of(shipped)
    assert shown["data"] == {"severity": "moderate", "consent_exchange": True}
    assert shown["may_send"]["ppr"] == ["close", "refer_bup", "triage_to_ltt", "triage_to_ppr"]
    assert shown["history"][0]["kind"] == "start"
    assert shown["history"][0]["at"] == "2026-11-02T08:00:00+00:00"  # local 09:00 CET

    out = run("advance", instance, "triage_to_ltt", "--as", "p1", "--role", "ppr",
              "--note", "fits LTT", "--json").output
    assert json.loads(out)["to"] == "ltt_offer"
    history = json.loads(run("history", instance, "--json").output)
    steps = [h for h in history if h["kind"] in {"start", "transition"}]
    assert [h["event"] for h in steps] == [None, "triage_to_ltt"]
    assert steps[1]["note"] == "fits LTT"
    queued = [h for h in history if h["kind"] == "notification_queued"]
    assert [q["changes"]["to"] for q in queued] == [["ppr"]]  # the LTT's own pathway tells it
    [handover] = [h for h in history if h["kind"] == "handover"]
    assert handover["changes"]["pathway"] == "behandlingstilbud_ltt"
    listed = json.loads(run("list", "--state", "ltt_offer", "--json").output)
    assert [row["id"] for row in listed] == [instance]
    assert json.loads(run("list", "--subject", "nobody", "--json").output) == []


@pytest.mark.parametrize(("args", "needle"), [
    (["advance", "{id}", "triage_to_lt", "--as", "p", "--role", "ppr"],
     "unknown event 'triage_to_lt' (did you mean 'triage_to_ltt'?); allowed now:"),
    (["advance", "{id}", "bup_accepts", "--as", "p", "--role", "bup"],
     "event 'bup_accepts' is not allowed in state 'referred'; allowed now: close, refer_bup"),
    (["advance", "{id}", "triage_to_ppr", "--as", "p", "--role", "gp"],
     "role 'gp' may not send 'triage_to_ppr'; it may be sent by: ppr"),
    (["advance", "{id}", "triage_to_ppr", "--as", "p", "--role", "ppx"],
     "unknown role 'ppx' (did you mean 'ppr'?)"),
    (["advance", "{id}", "close", "--as", "p", "--role", "ppr"],
     "event 'close' needs 'outcome': give --set outcome=..."),
    (["advance", "{id}", "close", "--as", "p", "--role", "ppr", "--set", "outcome=maybe"],
     "field 'outcome' must be one of improved, no_need, moved, referred_elsewhere"),
    (["advance", "{id}", "close", "--as", "p", "--role", "ppr", "--set", "outcom=no_need"],
     "unknown field 'outcom' (did you mean 'outcome'?)"),
    (["advance", "{id}", "triage_to_ppr", "--as", "p", "--role", "ppr", "--set", "severity=mild"],
     "field 'severity' cannot be set by event 'triage_to_ppr'"),
    (["advance", "{id}", "triage_to_ppr", "--as", "p", "--role", "ppr", "--at", "2099-01-01"],
     "is in the future"),
    (["advance", "{id}", "triage_to_ppr", "--as", "p", "--role", "ppr", "--at", "2026-11-01"],
     "is before the instance's last step"),
    (["advance", "nope", "triage_to_ppr", "--as", "p", "--role", "ppr"],
     "no pathway instance 'nope'"),
    (["show", "nope"], "no pathway instance 'nope'"),
    (["start", "mistrivsel_referal", "--subject", "X", "--as", "a", "--role", "gp"],
     "unknown pathway 'mistrivsel_referal' (did you mean 'mistrivsel_referral'?)"),
    (["start", "mistrivsel_referral", "--subject", "X", "--birth-date", "2000-01-01", "--set",
      "severity=mild", "--set", "consent_exchange=true", "--as", "a", "--role", "gp"],
     "is for ages up to and including 17"),
    (["start", "mistrivsel_referral", "--subject", "X", "--set", "severity=mild", "--set",
      "consent_exchange=true", "--as", "a", "--role", "gp"], "needs the subject's birth date"),
    (["start", "mistrivsel_referral", "--subject", "X", "--birth-date", "2015-01-01", "--set",
      "severity=mild", "--set", "consent_exchange=perhaps", "--as", "a", "--role", "gp"],
     "field 'consent_exchange' must be true or false, not 'perhaps'"),
    (["start", "mistrivsel_referral", "--subject", "X", "--birth-date", "2015-01-01", "--set",
      "severity=mild", "--as", "a", "--role", "gp"], "needs 'consent_exchange'"),
    (["start", "mistrivsel_referral", "--subject", "X", "--birth-date", "2015-01-01", "--set",
      "severity=mild", "--set", "consent_exchange=true", "--as", "a", "--role", "ppr"],
     "role 'ppr' may not send 'start'"),
])
def test_user_errors_exit_1_with_one_line_and_write_nothing(run: Cli, args: list[str],
                                                            needle: str) -> None:
    instance = started(run)
    before = snapshot(run, instance)
    before_list = run("list", "--json").output
    result = run(*[a.replace("{id}", instance) for a in args], code=1)
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert needle in lines[0]
    assert "Traceback" not in result.output
    assert snapshot(run, instance) == before
    assert run("list", "--json").output == before_list


def test_guard_failure_names_the_condition(run: Cli) -> None:
    out = run(*[a.replace("severity=moderate", "severity=severe") for a in START], "--json")
    instance = json.loads(out.output)["id"]
    result = run("advance", instance, "triage_to_ltt", "--as", "p", "--role", "ppr", code=1)
    assert "the condition \"severity in ['mild', 'moderate']\" is false" in result.stderr


@pytest.mark.parametrize("args", [
    ["start"],
    ["advance", "x"],
    ["start", "p", "--subject", "s", "--as", "a", "--role", "r", "--birth-date", "2020-13-01"],
    ["advance", "x", "e", "--as", "a", "--role", "r", "--at", "yesterday"],
    ["list", "--limit", "0"],
    ["nonsense"],
])
def test_usage_errors_exit_2(run: Cli, args: list[str]) -> None:
    result = run(*args, code=2)
    assert "Traceback" not in result.output


def test_expect_revision_refuses_with_exit_3(run: Cli) -> None:
    instance = started(run)
    revision = snapshot(run, instance)["revision"]
    run("advance", instance, "triage_to_ppr", "--as", "p", "--role", "ppr",
        "--expect-revision", str(revision))
    result = run("advance", instance, "close", "--as", "p", "--role", "ppr", "--set",
                 "outcome=no_need", "--expect-revision", str(revision), code=3)
    assert "was changed by someone else" in result.stderr
    assert snapshot(run, instance)["state"] == "ppr_assessment"


def test_finished_instance_refuses_events(run: Cli) -> None:
    instance = started(run)
    run("advance", instance, "close", "--as", "p", "--role", "ppr", "--set", "outcome=no_need")
    assert snapshot(run, instance)["status"] == "completed"
    result = run("advance", instance, "triage_to_ppr", "--as", "p", "--role", "ppr", code=1)
    assert "has finished in state 'closed'" in result.stderr


def test_definitions_lists_shipped_pathways(run: Cli) -> None:
    rows = json.loads(run("definitions", "--json").output)
    ids = {r["id"] for r in rows}
    assert {"mistrivsel_referral"} <= ids
    assert all(len(r["hash"]) == 64 for r in rows)


def test_definitions_titles_are_in_each_pathways_own_language_or_the_one_asked_for(
        run: Cli) -> None:
    def titles(*lang: str) -> dict[str, str]:
        lines = run("definitions", *lang).stdout.splitlines()[1:]
        return {line.split()[0]: line.split(None, 3)[3] for line in lines}

    own, english, swedish = titles(), titles("--lang", "en"), titles("--lang", "sv")
    assert own["mistrivsel_referral"].startswith("Henvisning")  # Danish, the pathway's own
    assert english["mistrivsel_referral"].startswith("Referral")
    assert swedish["mistrivsel_referral"] == own["mistrivsel_referral"]  # it has no Swedish
    assert own["barnekoordinator"] == "Barnekoordinator i kommunen"


def test_unreachable_database_is_one_line(tmp_path: object) -> None:
    cli = Cli("sqlite:////nonexistent-folder/x.db")
    result = cli("list", code=1)
    assert result.stderr.startswith("error: database folder")
    cli = Cli("mysql://x@localhost/db")
    assert "unsupported database 'mysql'" in cli("list", code=1).stderr


READ_PROBE = """\
import sys
from pathways.cli import cli
try:
    cli.main(sys.argv[1:], standalone_mode=False)
except SystemExit:
    pass
print(sorted(m for m in ("pydantic", "pathways_engine.definition.spec") if m in sys.modules))
"""


def test_read_commands_start_without_pydantic(sqlite_url: str) -> None:
    """Issue 14: the read commands read through Core and the stored snapshot, so they pay
    neither pydantic's start-up nor the definition format's models (about 170 ms of `list`
    and `overdue` before the parties file was left unread when no filter needs it)."""
    import subprocess
    import sys

    from support import ACTORS
    from support import ROOT

    run = Cli(sqlite_url)
    instance = started(run)
    # (`subject` names the responsible parties, so it reads the parties file and pydantic)
    for command in (["list"], ["overdue"], ["outbox"], ["show", instance],
                    ["history", instance]):
        probe = subprocess.run(
            [sys.executable, "-c", READ_PROBE, "--db", sqlite_url, "--definitions",
             str(DEFINITIONS), "--actors", str(ACTORS), *command],
            capture_output=True, text=True, cwd=ROOT, timeout=120)
        assert probe.returncode == 0, probe.stderr
        assert probe.stdout.strip().splitlines()[-1] == "[]", (command, probe.stdout)
