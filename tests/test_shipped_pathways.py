"""Every shipped pathway passes check and is walked end to end on the real engine."""

from __future__ import annotations

import datetime as dt

import pytest
from click.testing import CliRunner
from pathways_engine import FixedClock
from pathways_engine import PathwayEngine
from pathways_engine import Registry
from pathways_engine.errors import EventNotAllowed
from pathways_engine.reading.views import Viewer
from pathways_engine.reading.views import show
from support import DEFINITIONS

from pathways.cli import cli

T0 = dt.datetime(2026, 11, 2, 8, 0, tzinfo=dt.UTC)


def step(engine: PathwayEngine, instance: str, event: str, role: str, days: float,
         **values: object) -> str:
    at = T0 + dt.timedelta(days=days)
    engine.clock = FixedClock(at)
    return engine.advance(instance, event, actor=f"{role}-1", role=role, values=values,
                          at=at).to_state


def test_shipped_definitions_check_clean() -> None:
    result = CliRunner().invoke(cli, ["check", str(DEFINITIONS)])
    assert result.exit_code == 0, result.output
    shipped = len([p for p in DEFINITIONS.iterdir() if (p / "pathway.yaml").is_file()])
    assert shipped >= 9  # every seed document has its pathways (issue 7)
    assert result.stderr == f"{shipped} definitions OK\n"  # and no warnings
    assert result.stdout == ""
    with_parties = CliRunner().invoke(cli, ["check"])  # with the demo parties and actors files
    assert with_parties.exit_code == 0, with_parties.output


def test_mistrivsel_referral_end_to_end(engine: PathwayEngine) -> None:
    child = engine.start("mistrivsel_referral", subject_ref="C-1", birth_date=dt.date(2013, 4, 9),
                         values={"severity": "moderate", "consent_exchange": True}, actor="gp-1",
                         role="gp", at=T0)
    assert step(engine, child, "triage_to_ppr", "ppr", 1) == "ppr_assessment"
    assert step(engine, child, "refer_bup", "ppr", 20,
                referral_received="2026-11-23") == "bup_referred"
    assert step(engine, child, "bup_accepts", "bup", 25) == "bup_assessment"
    assert step(engine, child, "information_letter_sent", "bup", 26) == "bup_assessment"
    assert step(engine, child, "diagnosis_made", "bup", 40) == "bup_treatment"
    assert step(engine, child, "discharge", "bup", 90, outcome="improved",
                discharge_date="2027-01-31") == "closed"
    data = show(engine, child)
    assert data["status"] == "completed"
    statuses = {d["name"]: d["status"] for d in data["deadlines"]}
    assert statuses == {"municipal_triage": "met", "information_letter": "met",
                        "assessment_right": "met"}
    # the municipality takes over: BUP's discharge started the follow-up pathway (seed 001)
    [follow_up] = data["children"]
    assert (follow_up["pathway"], follow_up["state"], follow_up["handover"]) == (
        "discharge_to_municipality", "discharge_planned", "municipal_follow_up")
    taken_over = show(engine, follow_up["id"])
    assert taken_over["parent"] == {"id": child, "handover": "municipal_follow_up",
                                    "pathway": "mistrivsel_referral"}
    assert taken_over["data"] == {"discharge_date": "2027-01-31",
                                  "consent_to_municipality": True}


def test_pregnancy_communication_end_to_end(engine: PathwayEngine) -> None:
    engine.clock = FixedClock(T0)
    mother = engine.start("pregnancy_communication", subject_ref="G-1", actor="gp-1", role="gp",
                          values={"vulnerability_level": 4, "expected_birth_date": "2027-05-20",
                                  "social_notes": "Bor alene"}, at=T0)
    assert step(engine, mother, "assess_specialised", "gp", 0.1) == "specialised"
    assert step(engine, mother, "birth", "birthplace", 197, birth_date="2027-05-18") == "postnatal"
    # the birth hands over to the pathway after the birth, carrying what the birthplace needs
    [postnatal] = show(engine, mother)["children"]
    assert (postnatal["pathway"], postnatal["state"], postnatal["handover"]) == (
        "postnatal_follow_up", "after_birth", "postnatal_care")
    baby = postnatal["id"]
    with pytest.raises(EventNotAllowed, match=r"allowed now: \(none\) \(the step waits for "
                       r"postnatal_finished, which only the engine sends\)$"):
        step(engine, mother, "discharge", "birthplace", 197.2)
    carried = show(engine, baby, viewer=Viewer("fode-1", "birthplace"))["data"]
    assert carried == {"birth_date": "2027-05-18", "vulnerability_level": 4,  # still personal:
                       "social_notes": "(personal: no consent or legal basis for hospital)"}
    assert step(engine, baby, "discharge", "birthplace", 197.5, ambulant=True) == \
        "home_after_discharge"
    data = show(engine, baby)
    contact = next(d for d in data["deadlines"] if d["name"] == "contact_after_ambulant_discharge")
    entered = dt.datetime.fromisoformat(data["history"][-1]["at"])
    assert dt.datetime.fromisoformat(contact["due_utc"]) - entered == dt.timedelta(hours=24)
    assert step(engine, baby, "family_contacted", "midwife", 198) == "health_visitor_follow_up"
    due = {d["name"]: d["due_local"] for d in show(engine, baby)["deadlines"]}
    assert due["first_home_visit"] == "2027-05-21T23:59:59+02:00"  # birth 18 May + 3 days
    assert due["second_home_visit"] == "2027-05-23T23:59:59+02:00"  # and + 5 days
    assert show(engine, mother)["state"] == "postnatal"  # waits for the health visitor
    assert step(engine, baby, "handover_complete", "health_visitor", 202) == "closed"
    assert (show(engine, mother)["state"], show(engine, mother)["status"]) == ("closed",
                                                                               "completed")


def test_bup_samhandlingsforlop_hands_over_to_the_barnekoordinator(engine: PathwayEngine) -> None:
    child = engine.start("bup_samhandlingsforlop", subject_ref="N-1",
                         birth_date=dt.date(2016, 3, 1), actor="kommune-1", role="kommune",
                         values={"alvorlighet": "alvorlig", "rett_til_barnekoordinator": True,
                                 "bekymring": "Mange tjenester"}, at=T0)
    assert step(engine, child, "henvis", "fastlege", 1,
                henvisning_mottatt="2026-11-03") == "henvist"
    assert step(engine, child, "rett_innvilget", "bup", 5, rett_til_helsehjelp=True) == \
        "utredning"
    [coordinator] = show(engine, child)["children"]
    assert (coordinator["pathway"], coordinator["state"]) == ("barnekoordinator", "melding")
    carried = show(engine, coordinator["id"], viewer=Viewer("ke-1", "koordinerende_enhet"))
    assert carried["data"] == {"rett_til_barnekoordinator": True, "behov":
                               "(personal: no consent or legal basis for municipal_health)"}
    assert step(engine, coordinator["id"], "oppnevn", "koordinerende_enhet", 12) == \
        "koordinering"
    # BUP ends; the coordinator goes on alongside (on_end: continue)
    assert step(engine, child, "avslutt_til_kommunen", "bup", 40) == "kommunal_oppfolging"
    assert step(engine, child, "avslutt", "kommune", 60) == "avsluttet"
    assert show(engine, coordinator["id"])["state"] == "koordinering"
    # without the right, no coordinator pathway starts
    other = engine.start("bup_samhandlingsforlop", subject_ref="N-2",
                         birth_date=dt.date(2016, 3, 1), actor="kommune-1", role="kommune",
                         values={"alvorlighet": "moderat"}, at=T0)
    step(engine, other, "henvis", "fastlege", 1, henvisning_mottatt="2026-11-03")
    step(engine, other, "rett_innvilget", "bup", 5, rett_til_helsehjelp=True)
    assert show(engine, other)["children"] == []


def test_discharge_to_municipality_end_to_end(engine: PathwayEngine) -> None:
    engine.clock = FixedClock(T0)
    teen = engine.start("discharge_to_municipality", subject_ref="B-2",
                        birth_date=dt.date(2011, 8, 1), actor="bup-1", role="bup", at=T0,
                        values={"discharge_date": "2026-11-10", "consent_to_municipality": True})
    assert step(engine, teen, "send_discharge_notice", "bup", 1) == "awaiting_agreement"
    assert step(engine, teen, "agree_follow_up", "municipality", 5,
                follow_up_plan="Samtaler hver uge") == "follow_up"
    review = next(d for d in show(engine, teen)["deadlines"] if d["name"] == "follow_up_review")
    assert review["due_local"].startswith("2027-02-07")  # 7 Nov + 3 months
    assert step(engine, teen, "complete_follow_up", "contact_person", 95) == "closed"


def test_running_instances_stay_pinned_when_the_file_changes_or_goes(tmp_path: object,
                                                                     sqlite_url: str) -> None:
    import shutil
    from pathlib import Path

    from support import Cli

    folder = Path(str(tmp_path)) / "defs"
    shutil.copytree(DEFINITIONS / "discharge_to_municipality", folder / "discharge")
    run = Cli(sqlite_url, folder)
    out = run("start", "discharge_to_municipality", "--subject", "B-1", "--birth-date",
              "2011-08-01", "--set", "discharge_date=2026-11-10", "--set",
              "consent_to_municipality=true", "--as", "b", "--role", "bup", "--json").output
    import json

    instance = json.loads(out)["id"]
    pathway = folder / "discharge" / "pathway.yaml"
    from support import version_of
    from support import with_version

    text = pathway.read_text()
    shipped = version_of(text)
    text = with_version(text, shipped + 1).replace("    to: awaiting_agreement", "    to: closed")
    pathway.write_text(text)
    moved = json.loads(run("advance", instance, "send_discharge_notice", "--as", "b", "--role",
                           "bup", "--json").output)
    assert moved["to"] == "awaiting_agreement"  # the v1 snapshot, not the edited file
    shutil.rmtree(folder / "discharge")
    (folder / "other.yaml").write_text("id: x\n")
    shown = json.loads(Cli(sqlite_url, DEFINITIONS)("show", instance, "--json").output)
    assert shown["version"] == shipped
    assert shown["state"] == "awaiting_agreement"


def test_demo_runs_the_main_job_on_sqlite(sqlite_url: str) -> None:
    result = CliRunner().invoke(cli, ["--db", sqlite_url, "demo"])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "✉ to ppr_norddjurs (ppr)" in out  # messages flow through the console channel
    assert "⏰ sweep:" in out
    assert "SIP call due 27 Dec (24 Dec is julafton)" in out
    assert "kallelse_till_sip                  met       due 2027-12-27T23:59" in out
    again = CliRunner().invoke(cli, ["--db", sqlite_url, "demo"])  # a second run adds cases
    assert again.exit_code == 0, again.output
    assert CliRunner().invoke(cli, ["--db", sqlite_url, "audit", "verify"]).exit_code == 0


def test_the_read_view_says_what_the_full_model_says_for_every_shipped_pathway() -> None:
    """`show` reads the stored definition without pydantic (definition/view.py): same facts."""
    import itertools
    import json

    from pathways_engine.definition.compiler import compile_definition
    from pathways_engine.definition.view import view_of

    registry = Registry.from_paths([DEFINITIONS])
    for definition in registry.all():
        spec, compiled = definition.spec, compile_definition(definition)
        view = view_of(json.loads(definition.snapshot())["definition"])
        assert view.title == spec.title
        assert view.timezone == spec.timezone
        assert view.sectors == {n: r.sector for n, r in spec.roles.items()}
        assert view.responsible == {n: s.responsible for n, s in spec.states.items()}
        assert view.personal == {n for n, f in spec.fields.items() if f.personal}
        assert view.fallback_language == spec.fallback_language
        assert view.role_labels == {n: r.label for n, r in spec.roles.items()}
        assert view.deadline_titles == {d.name: d.title or {} for _, d in spec.all_deadlines()}
        samples = [dict(zip(spec.fields, values, strict=True)) for values in itertools.islice(
            itertools.product(*[(f.values or [None, 1, True, "2026-12-01"])[:2]
                                for f in spec.fields.values()]), 64)]
        for state, values in itertools.product(spec.states, samples):
            env = {**values, "age_years": 15, "age_months": 180}
            expected: dict[str, list[str]] = {}
            for index, transition in compiled.transitions_from(state):
                if compiled.guard_passes(index, env):
                    for role in transition.roles or ["system"]:
                        expected.setdefault(role, [])
                        if transition.event not in expected[role]:
                            expected[role].append(transition.event)
            assert view.may_send(state, env) == {r: sorted(e) for r, e in sorted(expected.items())}
