"""`pathways export --format fhir`: a valid FHIR R4 (4.0.1) Bundle, statuses on the Task state
machine. Read back here with fhirclient's R4 models in strict mode, independently of the check
the export itself runs."""

from __future__ import annotations

import datetime as dt
import json
import sys
from typing import Any

import pytest
from fhirclient.models.bundle import Bundle
from fhirclient.models.plandefinition import PlanDefinition
from support import Cli

START = ["start", "mistrivsel_referral", "--subject", "F-1", "--birth-date", "2014-05-02",
         "--set", "severity=moderate", "--set", "consent_exchange=true", "--as", "dr.a",
         "--role", "gp", "--at", "2026-11-02T09:00"]


def r4(text: str) -> Any:
    """A Bundle or PlanDefinition as the R4 models read it (strict: unknown elements, wrong
    types and missing required elements raise)."""
    data = json.loads(text)
    kind = {"Bundle": Bundle, "PlanDefinition": PlanDefinition}[data["resourceType"]]
    return kind(data, strict=True)


def of_type(resources: list[Any], kind: str) -> list[Any]:
    return [r for r in resources if r.resource_type == kind]


def test_export_is_a_valid_bundle_with_careplan_and_tasks(run: Cli) -> None:
    instance = run(*START).output.strip()
    run("advance", instance, "refer_bup", "--set", "referral_received=2026-11-03", "--as", "p",
        "--role", "ppr", "--at", "2026-11-03T10:00")
    exported = run("export", instance, "--format", "fhir").output
    bundle = r4(exported)  # validates every resource again
    resources = [e.resource for e in bundle.entry]
    careplan, tasks = resources[0], of_type(resources, "Task")
    assert careplan.resource_type == "CarePlan"
    assert careplan.status == "active"
    assert careplan.subject.identifier.value == "F-1"
    assert [t.status for t in tasks] == ["completed", "in-progress", "requested", "requested"]
    assert [t.code.text for t in tasks] == ["referred", "bup_referred", "information_letter",
                                            "assessment_right"]
    assert tasks[1].owner.display == "bup"
    assert tasks[1].restriction is None  # both BUP deadlines are obligations: Tasks of their own
    letter, assessment = tasks[2], tasks[3]
    assert letter.code.coding[0].system == "urn:pathways:mistrivsel_referral:deadline"
    assert letter.restriction.period.end.isostring.startswith("2026-11-13")  # §90: 8 working days
    assert assessment.restriction.period.end.isostring.startswith("2026-12-03")  # §82 b: 30 days
    assert letter.owner.display == "bup"
    assert tasks[0].businessStatus.text == "municipal_triage: met"
    run("advance", instance, "information_letter_sent", "--as", "b", "--role", "bup", "--at",
        "2026-11-05T10:00")
    after = r4(run("export", instance, "--format", "fhir").output)
    tasks = of_type([e.resource for e in after.entry], "Task")
    assert [t.code.text for t in tasks] == ["referred", "bup_referred", "information_letter",
                                            "assessment_right"]  # an internal event: same step
    assert [t.status for t in tasks[2:]] == ["completed", "requested"]
    assert tasks[2].executionPeriod.end.isostring.startswith("2026-11-05")
    urls = {e.fullUrl for e in bundle.entry}
    assert {a.reference.reference for a in careplan.activity} <= urls
    assert "Ida" not in exported


def test_export_of_a_closed_pathway_and_unknown_instance(run: Cli) -> None:
    instance = run(*START).output.strip()
    run("advance", instance, "close", "--set", "outcome=no_need", "--as", "p", "--role", "ppr",
        "--at", "2026-11-04T10:00")
    data = json.loads(run("export", instance).output)
    careplan = data["entry"][0]["resource"]
    assert careplan["status"] == "completed"
    assert "end" in careplan["period"]
    assert {e["resource"]["status"] for e in data["entry"][1:]
            if e["resource"]["resourceType"] == "Task"} == {"completed"}
    assert "no pathway instance 'nope'" in run("export", "nope", code=1).stderr


def test_export_carries_consents_and_the_audit_trail_as_provenance(run: Cli) -> None:
    instance = run(*START).output.strip()
    run("consent", instance, "--sector", "municipal_health", "--basis", "consent",
        "--reference", "Ida Holm (mor), 2.11.2026", "--as", "dr.a")
    exported = run("export", instance).output
    bundle = r4(exported)
    resources = [e.resource for e in bundle.entry]
    [consent] = of_type(resources, "Consent")
    assert consent.provision.actor[0].reference.display == "municipal_health"
    assert consent.patient.identifier.value == "F-1"
    assert "Ida" not in exported  # who consented stays in the pathway
    history = json.loads(run("history", instance, "--json").output)
    given = next(h["at"] for h in history if h["kind"] == "consent")
    assert consent.dateTime.datetime == dt.datetime.fromisoformat(given)
    trail = of_type(resources, "Provenance")
    assert [(p.activity.coding[0].code, p.agent[0].who.identifier.value) for p in trail] == [
        (h["kind"], h["actor"]) for h in history]
    assert {p.target[0].reference for p in trail} == {bundle.entry[0].fullUrl}
    careplan = resources[0]
    assert careplan.instantiatesCanonical == ["urn:pathways:definition:mistrivsel_referral|3"]


def test_export_of_a_definition_is_a_plan_definition(run: Cli) -> None:
    plan = r4(
        run("export", "--definition", "mistrivsel_referral").output)
    assert (plan.url, plan.version, plan.status) == (
        "urn:pathways:definition:mistrivsel_referral", "3", "active")
    actions = {a.code[0].coding[0].code: a for a in plan.action}
    assert set(actions) >= {"referred", "bup_referred", "closed"}
    referred = actions["referred"]
    assert referred.participant[0].role.coding[0].code == "ppr"
    assert {r.actionId for r in referred.relatedAction} >= {"bup-referred", "ppr-assessment"}
    [triage] = referred.action
    assert (triage.timingDuration.value, triage.timingDuration.unit) == (10, "working days")
    assert "local_agreement" in triage.description
    letter = next(a for a in actions["bup_referred"].action
                  if a.code[0].coding[0].code == "information_letter")
    assert "law" in letter.description
    older = r4(
        run("export", "--definition", "discharge_to_municipality", "--version", "2").output)
    assert older.version == "2"
    assert "give INSTANCE, --subject REF or --definition" in run(
        "export", "x", "--definition", "mistrivsel_referral", code=1).stderr
    assert "did you mean 'mistrivsel_referral'" in run(
        "export", "--definition", "mistrivsel_referal", code=1).stderr


def test_the_export_refuses_what_r4_does_not_allow() -> None:
    from pathways.fhir import validated

    task = {"resourceType": "Task", "id": "t-1", "status": "requested", "intent": "plan"}
    assert validated(task) == task
    with pytest.raises(ValueError, match="intent"):
        validated({k: v for k, v in task.items() if k != "intent"})
    with pytest.raises(ValueError, match="Superfluous entry \"requestedPeriod\""):
        validated({**task, "requestedPeriod": {"start": "2026-11-02"}})  # R5 only
    with pytest.raises(ValueError, match="authoredOn"):
        validated({**task, "authoredOn": "2. november 2026"})
    with pytest.raises(ValueError, match="not a FHIR R4 id: 'a_b'"):
        validated({"resourceType": "Bundle", "type": "collection",
                   "entry": [{"resource": {**task, "id": "a_b"}}]})


def test_without_the_fhir_extra_the_export_says_which_to_install(
        run: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    instance = run(*START).output.strip()
    monkeypatch.setitem(sys.modules, "fhirclient.models.fhirelementfactory", None)
    result = run("export", instance, code=1)
    assert result.stderr.strip() == ("error: a FHIR export needs the 'fhir' extra: "
                                     "pip install 'nordic-pathways[fhir]'")


def test_export_of_a_subject_is_patient_episode_and_a_careplan_per_pathway(run: Cli) -> None:
    instance = run(*START).output.strip()
    exported = run("export", "--subject", "F-1").output
    bundle = r4(exported)
    resources = [e.resource for e in bundle.entry]
    [patient] = of_type(resources, "Patient")
    [episode] = of_type(resources, "EpisodeOfCare")
    [careplan] = of_type(resources, "CarePlan")
    assert patient.identifier[0].value == "F-1"
    assert episode.status == "active"
    assert episode.period.end is None
    assert episode.patient.reference == bundle.entry[0].fullUrl
    assert (careplan.id, careplan.status, careplan.partOf) == (instance, "active", None)
    [task] = of_type(resources, "Task")  # the open deadline: PPR's answer to the referral
    assert task.status == "requested"
    assert task.restriction.period.end is not None
    assert [a.reference.reference for a in careplan.activity] == [bundle.entry[-1].fullUrl]
    assert "Ida" not in exported
    same = r4(run("subject", "F-1", "--fhir").output)
    assert [e.as_json() for e in same.entry] == [e.as_json() for e in bundle.entry]
    assert bundle.timestamp.isostring.endswith("+00:00")


TWO_DEADLINES = """\
id: twice
version: 1
title: {en: Twice}
country: DK
timezone: Europe/Copenhagen
languages: [en]
fallback_language: en
roles:
  gp: {label: {en: GP}, sector: primary_care}
start: {roles: [gp]}
states:
  open:
    initial: true
    responsible: gp
    deadlines:
      - {name: answer, duration: 5 days, status: local_agreement, source: "test"}
      - {name: plan, duration: 10 days, status: local_agreement, source: "test"}
  waiting: {responsible: gp}
  done: {final: true}
transitions:
  - {event: ask, from: open, to: waiting, roles: [gp]}
  - {event: reply, from: waiting, to: open, roles: [gp]}
  - {event: finish, from: open, to: done, roles: [gp]}
"""


def test_every_deadline_of_every_visit_of_a_step_is_a_task(tmp_path: Any, db_url: str) -> None:
    (tmp_path / "twice.yaml").write_text(TWO_DEADLINES, encoding="utf-8")
    run = Cli(db_url, tmp_path)
    instance = run("start", "twice", "--subject", "T-1", "--as", "dr.a", "--role", "gp",
                   "--at", "2026-11-02T09:00").output.strip()
    run("advance", instance, "ask", "--as", "dr.a", "--role", "gp", "--at", "2026-11-03T09:00")
    run("advance", instance, "reply", "--as", "dr.a", "--role", "gp", "--at",
        "2026-11-20T09:00")
    tasks = of_type([e.resource for e in r4(run("export", instance).output).entry], "Task")
    steps = [(t.code.text, t.restriction.period.end.isostring[:10] if t.restriction else None,
              t.status) for t in tasks if t.code.coding[0].system.endswith(":state")]
    assert steps == [("open", "2026-11-07", "completed"), ("waiting", None, "completed"),
                     ("open", "2026-11-25", "in-progress")]  # each visit its own deadline
    own = sorted((t.code.text, t.restriction.period.end.isostring[:10], t.status)
                 for t in tasks if t.code.coding[0].system.endswith(":deadline"))
    assert own == [("plan", "2026-11-12", "completed"), ("plan", "2026-11-30", "requested")]


def test_after_a_migration_the_step_keeps_its_deadline(tmp_path: Any, db_url: str) -> None:
    from support import copy_pathway
    from support import version_of
    from support import with_version

    folder = copy_pathway(tmp_path / "defs" / "mistrivsel_referral")
    run = Cli(db_url, folder.parent)
    instance = run(*START).output.strip()
    source = (folder / "pathway.yaml").read_text(encoding="utf-8")
    newer = version_of(source) + 1
    (folder / "pathway.yaml").write_text(with_version(source, newer), encoding="utf-8")
    run("migrate", "--pathway", "mistrivsel_referral", "--to", str(newer), "--as", "leader")
    tasks = of_type([e.resource for e in r4(run("export", instance).output).entry], "Task")
    steps = [t for t in tasks if t.code.coding[0].system.endswith(":state")]
    assert [t.code.text for t in steps] == ["referred", "referred"]  # before and after
    assert steps[-1].status == "in-progress"
    assert steps[-1].businessStatus.text == "municipal_triage: overdue"  # the real clock
    assert steps[-1].restriction.period.end.isostring.startswith("2026-11-16")
    assert steps[0].status == "completed"  # the replaced deadline stays with the first visit
    assert steps[0].businessStatus.text == "municipal_triage: cancelled"
