"""What people read (issue 17): every message of every shipped scenario, in the pathway's own
language and in English, as its recipient reads it - no engine ids, no UTC ISO strings, no CLI
commands; dates in the reader's language and the pathway's zone; a link to the case in the
deployment's own system."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from pathways_engine.definition.registry import load_all
from pathways_notifications.wording import how_long
from pathways_notifications.wording import local_time
from support import DEFINITIONS

from pathways.cli import cli
from pathways.scenarios import discover
from pathways.scenarios import run_file

ISO = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")
SCENARIOS = discover([DEFINITIONS])


def _ids() -> dict[str, set[str]]:
    """Per pathway: the deadline and state ids a reader should never see."""
    definitions, _ = load_all([DEFINITIONS])
    out: dict[str, set[str]] = {}
    for d in definitions:
        names = {x.name for x in d.spec.deadlines}
        for state_id, state in d.spec.states.items():
            names |= {x.name for x in state.deadlines}
            names.add(state_id)
        out[d.spec.id] = {n for n in names if "_" in n}  # one-word ids are ordinary words
    return out


def _english_parties(tmp_path: Path) -> Path:
    data = yaml.safe_load((DEFINITIONS / "parties.yaml").read_text(encoding="utf-8"))
    for party in data["parties"]:
        party["language"] = "en"
    path = tmp_path / "parties.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


@pytest.mark.parametrize("english", [False, True], ids=["own language", "english"])
def test_no_message_of_any_scenario_shows_an_id_an_iso_time_or_a_command(
        tmp_path: Path, english: bool) -> None:
    parties = _english_parties(tmp_path) if english else DEFINITIONS / "parties.yaml"
    ids = _ids()
    seen: set[tuple[str, str]] = set()
    for path in SCENARIOS:
        outcome = run_file(path, (DEFINITIONS,), parties)
        assert outcome.failures == [], (path, outcome.failures)
        for message in outcome.messages:
            words = f"{message['subject']}\n{message['text']}"
            where = f"{path.name}: {message['template']} ({message['language']}):\n{words}"
            assert not ISO.search(words), where
            assert "(UTC)" not in words, where
            assert "pathways show" not in words, where
            leaked = {i for pathway_ids in ids.values() for i in pathway_ids
                      if re.search(rf"\b{re.escape(i)}\b", words)}
            assert not leaked, (leaked, where)
            seen.add((message["template"], message["language"]))
    wanted = {"en"} if english else {"da", "nb", "sv"}
    assert {lang for _, lang in seen} >= wanted
    assert {t for t, _ in seen} >= {"step_assigned", "deadline_reminder", "deadline_escalation"}


def test_a_deadline_at_local_midnight_reads_as_the_reader_writes_it() -> None:
    end = dt.datetime(2026, 12, 31, 22, 59, 59, tzinfo=dt.UTC)
    assert local_time(end, "Europe/Copenhagen", "da") == "31. december 2026 kl. 23.59"
    assert local_time(end, "Europe/Oslo", "nb") == "31. desember 2026 kl. 23.59"
    assert local_time(end, "Europe/Stockholm", "sv") == "31 december 2026 kl. 23.59"
    assert local_time(end, "Europe/Copenhagen", "en") == "31 December 2026 at 23:59"
    summer = dt.datetime(2027, 6, 28, 21, 59, 59, tzinfo=dt.UTC)  # CEST: still 23.59 locally
    assert local_time(summer, "Europe/Stockholm", "sv") == "28 juni 2027 kl. 23.59"
    assert how_long(dt.timedelta(days=3, hours=2), "da") == "3 dage"
    assert how_long(dt.timedelta(hours=5), "nb") == "5 timer"


def test_a_danish_reminder_names_the_deadline_and_its_local_due_time() -> None:
    outcome = run_file(DEFINITIONS / "mistrivsel_referral" / "scenarios" /
                       "christmas_referral.yaml", (DEFINITIONS,), DEFINITIONS / "parties.yaml")
    reminders = [m for m in outcome.messages if m["template"] == "deadline_reminder"]
    assert reminders
    texts = "\n".join(m["text"] for m in reminders)
    assert re.search(r'Fristen "[A-ZÆØÅ][^"]+" udløber \d{1,2}\. [a-z]+ 20\d\d kl\. 23\.59',
                     texts), texts


def test_messages_link_to_the_case_in_the_deployments_own_system(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    deployment = tmp_path / "deployment.yaml"
    deployment.write_text("case_url: https://sag.norddjurs.example.dk/forloeb/{instance}\n")
    monkeypatch.setenv("PATHWAYS_DEPLOYMENT", str(deployment))
    db = f"sqlite:///{tmp_path / 'p.db'}"
    runner = CliRunner()
    started = runner.invoke(cli, ["--db", db, "start", "mistrivsel_referral", "--subject", "L-1",
                                  "--birth-date", "2014-05-02", "--set", "severity=moderate",
                                  "--set", "consent_exchange=true", "--as", "dr.jensen",
                                  "--role", "gp", "--json"])
    assert started.exit_code == 0, started.output
    instance = started.output.split('"id": "')[1].split('"')[0]
    shown = runner.invoke(cli, ["--db", db, "render", "mistrivsel_referral", "step_assigned",
                                "--instance", instance])
    assert f"https://sag.norddjurs.example.dk/forloeb/{instance}" in shown.output
    deployment.write_text("case_url: https://sag.example.dk/{instance}/{cpr}\n")
    refused = runner.invoke(cli, ["--db", db, "list"])
    assert refused.exit_code == 1
    assert refused.output.startswith(f"error: {deployment}: case_url may use {{instance}} and "
                                     "{subject} only, not cpr")


def test_render_refuses_a_language_the_pathway_is_not_written_in() -> None:
    result = CliRunner().invoke(cli, ["render", "mistrivsel_referral", "deadline_reminder",
                                      "--lang", "sv"])
    assert result.exit_code == 1
    assert result.output == ("error: --lang sv: pathway 'mistrivsel_referral' is written in "
                             "da, en (a recipient of another language gets da)\n")


def test_show_and_history_read_as_a_caseworker_reads_them(tmp_path: Path, db_url: str) -> None:
    import json
    import shutil

    from support import Cli
    from support import copy_pathway
    from support import version_of
    from support import with_version

    folder = copy_pathway(tmp_path / "defs" / "mistrivsel_referral")
    shutil.copy(DEFINITIONS / "parties.yaml", folder.parent / "parties.yaml")
    run = Cli(db_url, folder.parent)
    instance = json.loads(run("start", "mistrivsel_referral", "--subject", "W-1", "--birth-date",
                              "2014-05-02", "--set", "severity=moderate", "--set",
                              "consent_exchange=true", "--as", "dr.a", "--role", "gp", "--at",
                              "2026-11-23T09:00", "--json").output)["id"]
    run("advance", instance, "triage_to_ppr", "--as", "p", "--role", "ppr", "--at",
        "2026-11-26T09:00")
    run("advance", instance, "refer_bup", "--set", "referral_received=2026-11-27", "--as", "p",
        "--role", "ppr", "--at", "2026-11-27T09:00")
    run("assign", instance, "contact_person", "kontakt_hanne", "--as", "leader", "--role",
        "contact_person")
    run("consent", instance, "--sector", "psychiatry", "--basis", "consent", "--reference",
        "forældre 27.11.2026", "--as", "dr.a")
    text = run("show", instance, "--now", "2026-11-30T12:00").output
    assert "Henvisning af børn og unge i mental mistrivsel  (mistrivsel_referral" in text
    assert "step:      Henvist til BUP - barnet venter (bup_referred), active" in text
    assert "responsible: Børne- og ungdomspsykiatrien" in text
    assert "contact person: kontakt_hanne" in text
    assert "consent:   psychiatry (consent: forældre 27.11.2026)" in text
    assert ("Informationsbrev (§90) (information_letter): pending, due 9. december 2026 "
            "kl. 23.59") in text
    assert not ISO.search(text.split("history:")[0])
    english = run("show", instance, "--lang", "en", "--now", "2026-11-30T12:00").output
    assert "Information letter (§90) (information_letter): pending, due 9 December 2026 at 23:59" \
        in english
    history = run("history", instance).output
    # a message to two roles reads as such (it once read "to='contact_person'")
    assert "template='step_assigned', to=['bup', 'contact_person'], messages=2" in history
    assert "refer_bup  ppr_assessment -> bup_referred  referral_received='2026-11-27'" in history
    # after a migration the old version's deadlines are folded, not listed twice
    pathway = folder / "pathway.yaml"
    source = pathway.read_text(encoding="utf-8")
    pathway.write_text(with_version(source, version_of(source) + 1), encoding="utf-8")
    run("migrate", "--pathway", "mistrivsel_referral", "--to", str(version_of(source) + 1),
        "--as", "leader")
    text = run("show", instance, "--now", "2026-11-30T12:00").output
    assert text.count("(information_letter)") == 1
    assert "replaced by a migration; --json lists them)" in text
    shown = json.loads(run("show", instance, "--json").output)
    letters = [d for d in shown["deadlines"] if d["name"] == "information_letter"]
    assert [d["superseded"] for d in letters] == [True, False]
