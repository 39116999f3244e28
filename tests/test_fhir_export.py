"""`pathways export --format fhir`: a valid FHIR R4 Bundle, statuses on the Task state machine."""

from __future__ import annotations

import json

from fhir.resources.R4B.bundle import Bundle
from support import Cli

START = ["start", "mistrivsel_referral", "--subject", "F-1", "--birth-date", "2014-05-02",
         "--set", "severity=moderate", "--set", "consent_exchange=true", "--as", "dr.a",
         "--role", "gp", "--at", "2026-11-02T09:00"]


def test_export_is_a_valid_bundle_with_careplan_and_tasks(run: Cli) -> None:
    instance = run(*START).output.strip()
    run("advance", instance, "refer_bup", "--set", "referral_received=2026-11-03", "--as", "p",
        "--role", "ppr", "--at", "2026-11-03T10:00")
    exported = run("export", instance, "--format", "fhir").output
    bundle = Bundle.model_validate_json(exported)  # validates every resource again
    resources = [e.resource for e in bundle.entry]
    careplan, tasks = resources[0], resources[1:]
    assert careplan.get_resource_type() == "CarePlan"
    assert careplan.status == "active"
    assert careplan.subject.identifier.value == "F-1"
    assert [t.status for t in tasks] == ["completed", "in-progress", "requested", "requested"]
    assert [t.code.text for t in tasks] == ["referred", "bup_referred", "information_letter",
                                            "assessment_right"]
    assert tasks[1].owner.display == "bup"
    assert tasks[1].restriction is None  # both BUP deadlines are obligations: Tasks of their own
    letter, assessment = tasks[2], tasks[3]
    assert letter.code.coding[0].system == "urn:pathways:mistrivsel_referral:deadline"
    assert str(letter.restriction.period.end).startswith("2026-11-13")  # §90: 8 working days
    assert str(assessment.restriction.period.end).startswith("2026-12-03")  # §82 b: 30 days
    assert letter.owner.display == "bup"
    assert tasks[0].businessStatus.text == "municipal_triage: met"
    run("advance", instance, "information_letter_sent", "--as", "b", "--role", "bup", "--at",
        "2026-11-05T10:00")
    after = Bundle.model_validate_json(run("export", instance, "--format", "fhir").output)
    tasks = [e.resource for e in after.entry][1:]
    assert [t.code.text for t in tasks] == ["referred", "bup_referred", "information_letter",
                                            "assessment_right"]  # an internal event: same step
    assert [t.status for t in tasks[2:]] == ["completed", "requested"]
    assert str(tasks[2].executionPeriod.end).startswith("2026-11-05")
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
    assert {e["resource"]["status"] for e in data["entry"][1:]} == {"completed"}
    assert "no pathway instance 'nope'" in run("export", "nope", code=1).stderr
