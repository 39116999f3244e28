"""One instance as FHIR R4 (4.0.1) resources: a CarePlan with a Task for every step it was in.

Every resource is checked against the R4 models of `fhirclient` (SMART on FHIR's models,
generated from the 4.0.1 StructureDefinitions) before it leaves: an unknown element, a wrong
type, a malformed date or a missing required element fails here, not in the receiving system.
They are the `fhir` extra (`pip install 'nordic-pathways[fhir]'`); without it an export says so
in one line. (fhir.resources, used before, has no R4 models that run on pydantic 2; it built
R4B 4.3.0, which an R4 receiver may reject.)
Statuses follow the FHIR Task state machine:

- a step the pathway has left: `completed`; a step it is in now: `in-progress`;
- a finished pathway's last step: `completed`;
- the earliest deadline that visit of the step opened goes in `restriction.period.end`, and
  how it went (met, met_late, overdue, timed_out, cancelled) in `businessStatus`; any other
  deadline of the step is a Task of its own, as below;
- a deadline that timed out makes its Task `failed`; a cancelled one `cancelled`;
- every obligation (a deadline an act meets, not leaving a step: the §90 letter, an
  evaluation point) and every whole-pathway deadline is a Task of its own, coded by the
  deadline's name, with `restriction.period` from its start (or the window's opening) to its
  due time: `requested` while open, `completed` when met, `failed` when missed or unmet,
  `cancelled` when cancelled; each occurrence of a repeating one is its own Task.

Each recorded consent or statutory basis is a Consent (the sector it permits sharing with; a
statutory basis names its provision, a consent does not name who gave it), and each entry of
the audit trail a Provenance on the CarePlan (who, in which role, what, when).

The subject is referred to only by its pseudonymous reference: an export carries no name or
personal identity number (domain.md §5).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from pathways_engine.errors import MissingExtra

SUBJECT_SYSTEM = "urn:pathways:subject"
INSTANCE_SYSTEM = "urn:pathways:instance"
AUDIT_SYSTEM = "urn:pathways:audit-kind"
ACTOR_SYSTEM = "urn:pathways:actor"


def instance_bundle(app: Any, instance: str,
                    authorize: Any = None) -> dict[str, Any]:
    """The Bundle of one instance, with the responsible roles of the definition it is pinned to
    (not the newest file: an instance on an older version keeps its own states). The CLI's
    `export` and the API's `.../fhir` both answer with this."""
    from pathways_engine.reading.views import show

    data = show(app.engine, instance, authorize=authorize)
    with app.db.reading() as connection:
        spec = app.engine.compiled_for(connection, data["definition_hash"]).spec
    roles = {name: state.responsible for name, state in spec.states.items()}
    return bundle(data, roles, app.clock.now())


def bundle(data: dict[str, Any], responsible: dict[str, str | None],
           now: dt.datetime) -> dict[str, Any]:
    """`show --json` of an instance (and each state's responsible role) -> a validated FHIR R4
    collection Bundle, as a dict."""
    steps = _steps(data)
    obligations = [d for d in data["deadlines"] if d["obligation"] or d["state"] is None]
    subject = {"identifier": {"system": SUBJECT_SYSTEM, "value": data["subject"]},
               "display": f"pseudonym {data['subject']}"}
    plan_id = data["id"]
    chosen = _step_deadlines(data, steps, obligations)
    chosen_ids = {id(d) for d in chosen if d is not None}
    # every other deadline - an obligation, a whole-pathway one, a step's second - has its own
    own = obligations + [d for d in data["deadlines"]
                         if d not in obligations and id(d) not in chosen_ids]
    tasks = []
    for index, (step, deadline) in enumerate(zip(steps, chosen, strict=True)):
        task: dict[str, Any] = {
            "resourceType": "Task", "id": f"{plan_id}-{index + 1}",
            "identifier": [{"system": INSTANCE_SYSTEM, "value": f"{plan_id}/{index + 1}"}],
            "status": _task_status(step, deadline, data["status"]), "intent": "plan",
            "basedOn": [{"reference": f"urn:uuid:{_uuid(plan_id)}"}],
            "code": {"coding": [{"system": f"urn:pathways:{data['pathway']}:state",
                                 "code": step["state"]}], "text": step["state"]},
            "for": subject,
            "authoredOn": step["entered"],
            "executionPeriod": {"start": step["entered"], **({"end": step["left"]}
                                                             if step["left"] else {})},
        }
        if responsible.get(step["state"]):
            task["owner"] = {"display": responsible[step["state"]]}
        if deadline is not None:
            task["restriction"] = {"period": {"end": deadline["due_utc"]}}
            task["businessStatus"] = {"text": f"{deadline['name']}: {deadline['status']}"}
        tasks.append(task)
    for index, obligation in enumerate(own, len(steps) + 1):
        tasks.append(_obligation_task(data, plan_id, index, obligation, subject))
    title = data["title"].get("en") or next(iter(data["title"].values()))
    trail = [_provenance(plan_id, entry) for entry in data["history"]]
    consents = [_consent(data, plan_id, n, basis, subject)
                for n, basis in enumerate(data["consents"], 1)]
    careplan = {
        "resourceType": "CarePlan", "id": plan_id,
        "identifier": [{"system": INSTANCE_SYSTEM, "value": plan_id}],
        "instantiatesUri": [f"urn:pathways:definition:{data['pathway']}:{data['version']}"],
        "instantiatesCanonical": [f"urn:pathways:definition:{data['pathway']}|{data['version']}"],
        "status": "completed" if data["status"] == "completed" else "active",
        "intent": "plan", "title": title, "subject": subject,
        "period": {"start": data["started_at"],
                   **({"end": data["completed_at"]} if data["completed_at"] else {})},
        "activity": [{"reference": {"reference": f"urn:uuid:{_uuid(t['id'])}"}}
                     for t in tasks],
    }
    return validated({
        "resourceType": "Bundle", "type": "collection",
        "timestamp": now.astimezone(dt.UTC).isoformat(timespec="seconds"),
        "entry": [{"fullUrl": f"urn:uuid:{_uuid(r['id'])}", "resource": r}
                  for r in (careplan, *tasks, *consents, *trail)],
    })


# FHIR's `id` datatype (R4 datatypes.html#id); the models do not check it
_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")


def validated(resource: dict[str, Any]) -> dict[str, Any]:
    """`resource` as the R4 models read and write it back; a mapping mistake is a bug here,
    raised with the models' own account of what is wrong."""
    try:
        from fhirclient.models.fhirabstractbase import FHIRValidationError
        from fhirclient.models.fhirelementfactory import FHIRElementFactory
    except ImportError:
        raise MissingExtra("a FHIR export", "fhir") from None
    entries = [e["resource"] for e in resource.get("entry", [])] + [resource]
    bad = [r["id"] for r in entries if "id" in r and not _ID.fullmatch(r["id"])]
    if bad:
        raise ValueError(f"not a FHIR R4 id: {bad[0]!r}")
    try:
        model = FHIRElementFactory.instantiate(resource["resourceType"], resource)
        result: dict[str, Any] = model.as_json()
    except FHIRValidationError as exc:
        raise ValueError(f"not valid FHIR R4 {resource['resourceType']}: {exc}") from None
    return result


def _provenance(plan_id: str, entry: dict[str, Any]) -> dict[str, Any]:
    """One audit entry: who did what to the CarePlan, when (the trail itself stays the
    record; `audit verify` checks it, not this copy)."""
    activity = entry["event"] or entry["kind"]
    return {
        "resourceType": "Provenance", "id": f"{plan_id}-audit-{entry['seq']}",
        "target": [{"reference": f"urn:uuid:{_uuid(plan_id)}"}],
        "occurredDateTime": entry["at"], "recorded": entry["recorded_at"],
        "activity": {"coding": [{"system": AUDIT_SYSTEM, "code": entry["kind"]}],
                     "text": activity},
        "agent": [{"who": {"identifier": {"system": ACTOR_SYSTEM, "value": entry["actor"]}},
                   "role": [{"text": entry["role"]}]}],
    }


def _consent(data: dict[str, Any], plan_id: str, number: int, basis: dict[str, str],
             subject: dict[str, Any]) -> dict[str, Any]:
    """A consent or statutory basis to share with a sector. Who consented is not exported
    (it may name a parent); a statutory basis names its provision."""
    given = next((h["at"] for h in reversed(data["history"]) if h["kind"] == "consent"
                  and (h["changes"] or {}).get("sector") == basis["sector"]), None)
    statutory = basis["basis"] == "statutory"
    return {
        "resourceType": "Consent", "id": f"{plan_id}-consent-{number}", "status": "active",
        "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope",
                              "code": "patient-privacy"}]},
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0",
                                  "display": "Patient Consent"}]} if not statutory
                     else {"text": "statutory basis for disclosure"}],
        "patient": subject, **({"dateTime": given} if given else {}),
        "policyRule": {"text": basis["reference"] if statutory else "consent of the family "
                               "or the young person, recorded in the pathway"},
        "provision": {"type": "permit",
                      "actor": [{"role": {"text": "recipient sector"},
                                 "reference": {"display": basis["sector"]}}]},
    }


def _steps(data: dict[str, Any]) -> list[dict[str, Any]]:
    """Each visit of a state, from the audit trail (start, transitions, migrations)."""
    steps: list[dict[str, Any]] = []
    for entry in data["history"]:
        if entry["kind"] not in {"start", "transition", "migration"} or not entry["to"]:
            continue
        if steps:
            steps[-1]["left"] = entry["at"]
        steps.append({"state": entry["to"], "entered": entry["at"], "left": None})
    return steps


_OBLIGATION_STATUS = {"pending": "requested", "met": "completed", "met_late": "completed",
                      "met_early": "completed", "unmet": "failed", "timed_out": "failed",
                      "cancelled": "cancelled"}


def _obligation_task(data: dict[str, Any], plan_id: str, index: int,
                     deadline: dict[str, Any], subject: dict[str, Any]) -> dict[str, Any]:
    stored = "pending" if deadline["closed_at"] is None else deadline["status"]
    task: dict[str, Any] = {
        "resourceType": "Task", "id": f"{plan_id}-{index}",
        "identifier": [{"system": INSTANCE_SYSTEM, "value": f"{plan_id}/{index}"}],
        "status": _OBLIGATION_STATUS.get(stored, "requested"), "intent": "plan",
        "basedOn": [{"reference": f"urn:uuid:{_uuid(plan_id)}"}],
        "code": {"coding": [{"system": f"urn:pathways:{data['pathway']}:deadline",
                             "code": deadline["name"]}], "text": deadline["name"]},
        "for": subject,
        "authoredOn": deadline["started_utc"],
        "restriction": {"period": {"start": deadline["window_start"] or deadline["started_utc"],
                                   "end": deadline["due_utc"]}},
        "businessStatus": {"text": f"{deadline['name']}: {deadline['status']}"},
    }
    if deadline["occurrence"] > 1:
        task["restriction"]["repetitions"] = deadline["occurrence"]
    if deadline["responsible"]:
        task["owner"] = {"display": deadline["responsible"]}
    if deadline["closed_at"]:
        task["executionPeriod"] = {"end": deadline["closed_at"]}
    return task


def _step_deadlines(data: dict[str, Any], steps: list[dict[str, Any]],
                    obligations: list[dict[str, Any]]) -> list[dict[str, Any] | None]:
    """For each visit of a state, the earliest of the deadlines that visit opened (a state
    entered twice has two sets); the step's Task carries it in `restriction.period`."""
    def at(text: str) -> dt.datetime:
        return dt.datetime.fromisoformat(text)

    result: list[dict[str, Any] | None] = []
    since = ""
    for number, step in enumerate(steps):
        if number == 0 or steps[number - 1]["state"] != step["state"]:
            since = step["entered"]  # a migration that keeps the state keeps its deadlines
        rows = [d for d in data["deadlines"] if d["state"] == step["state"]
                and d not in obligations and at(d["started_utc"]) >= at(since)
                and (step["left"] is None or at(d["started_utc"]) < at(step["left"]))
                # one a migration replaced belongs to the visit before it
                and (d["closed_at"] is None or at(d["closed_at"]) > at(step["entered"]))]
        result.append(min(rows, key=lambda d: at(d["due_utc"])) if rows else None)
    return result


def _task_status(step: dict[str, Any], deadline: dict[str, Any] | None, status: str) -> str:
    if deadline is not None and deadline["status"] == "timed_out":
        return "failed"
    if deadline is not None and deadline["status"] == "cancelled" and step["left"] is None:
        return "cancelled"
    if step["left"] is not None or status == "completed":
        return "completed"
    return "in-progress"


def _uuid(name: str | None) -> str:
    """The stable urn:uuid a resource has in the Bundle; references inside it use the same."""
    import uuid

    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"urn:pathways:{name}"))


def subject_bundle(data: dict[str, Any], now: dt.datetime) -> dict[str, Any]:
    """`pathways subject --json` of one child -> a collection Bundle: the pseudonymous Patient,
    an EpisodeOfCare over all pathways, a CarePlan per pathway (`partOf` the one that handed
    it over) and a Task for every open deadline."""
    ref = data["subject"]
    patient_url = f"urn:uuid:{_uuid(f'subject/{ref}')}"
    patient = {"resourceType": "Patient", "id": _uuid(f"subject/{ref}"),
               "identifier": [{"system": SUBJECT_SYSTEM, "value": ref}]}
    pathways = data["pathways"]
    running = any(p["status"] == "active" for p in pathways)
    starts = [p["started_at"] for p in pathways]
    ends = [p["completed_at"] for p in pathways if p["completed_at"]]
    episode: dict[str, Any] = {
        "resourceType": "EpisodeOfCare", "id": _uuid(f"episode/{ref}"),
        "status": "active" if running else "finished",
        "patient": {"reference": patient_url}}
    if starts:
        episode["period"] = {"start": min(starts),
                             **({} if running or not ends else {"end": max(ends)})}
    entries: list[tuple[str, Any]] = [(patient_url, patient),
                                      (f"urn:uuid:{_uuid(f'episode/{ref}')}", episode)]
    ids = {p["id"] for p in pathways}
    for pathway in pathways:
        plan_url = f"urn:uuid:{_uuid(pathway['id'])}"
        tasks = []
        for index, deadline in enumerate(pathway["open_deadlines"], 1):
            task = {
                "resourceType": "Task", "id": f"{pathway['id']}-d{index}",
                "status": "requested", "intent": "plan",
                "basedOn": [{"reference": plan_url}],
                "code": {"coding": [{"system": f"urn:pathways:{pathway['pathway']}:deadline",
                                     "code": deadline["name"]}], "text": deadline["title"]},
                "for": {"reference": patient_url},
                "owner": {"display": deadline["responsible"] or pathway["responsible"] or "-"},
                "restriction": {"period": {
                    "start": deadline["window_start"] or deadline["started_utc"],
                    "end": deadline["due_utc"]}},
                "businessStatus": {"text": deadline["status"]}}
            tasks.append((f"urn:uuid:{_uuid(pathway['id'] + '/' + str(index))}", task))
        careplan = {
            "resourceType": "CarePlan", "id": pathway["id"],
            "identifier": [{"system": INSTANCE_SYSTEM, "value": pathway["id"]}],
            "status": {"active": "active", "completed": "completed",
                       "withdrawn": "revoked"}.get(pathway["status"], "unknown"),
            "intent": "plan", "title": pathway["title"],
            "subject": {"reference": patient_url},
            "period": {"start": pathway["started_at"], **({"end": pathway["completed_at"]}
                                                          if pathway["completed_at"] else {})},
            **({"partOf": [{"reference": f"urn:uuid:{_uuid(pathway['parent'])}"}]}
               if pathway["parent"] in ids else {}),
            "activity": [{"reference": {"reference": url}} for url, _ in tasks]}
        entries.append((plan_url, careplan))
        entries.extend(tasks)
    return validated({
        "resourceType": "Bundle", "type": "collection",
        "timestamp": now.astimezone(dt.UTC).isoformat(timespec="seconds"),
        "entry": [{"fullUrl": url, "resource": resource} for url, resource in entries]})


def _fhir_id(name: str) -> str:
    """A FHIR id allows letters, digits, '-' and '.': the code keeps the name itself."""
    return name.replace("_", "-")


_UCUM = {"hours": "h", "hour": "h", "days": "d", "day": "d", "weeks": "wk", "week": "wk",
         "months": "mo", "month": "mo"}


def plan_definition(spec: Any) -> dict[str, Any]:
    """A definition as a validated PlanDefinition: an action per state (its responsible role,
    its deadlines as sub-actions with their duration, legal status and source, the states it
    leads to as related actions), whole-pathway deadlines as actions of their own."""
    language = "en" if "en" in spec.languages else spec.fallback_language

    def text(value: dict[str, str] | None) -> str | None:
        return (value or {}).get(language) or next(iter((value or {}).values()), None)

    def deadline(d: Any) -> dict[str, Any]:
        action = {"id": _fhir_id(d.name), "title": text(d.title) or d.name,
                  "description": f"{d.duration} ({d.status}). {d.source}",
                  "code": [{"coding": [{"system": f"urn:pathways:{spec.id}:deadline",
                                        "code": d.name}]}]}
        count, _, unit = d.duration.partition(" ")
        if count.isdigit():
            ucum = _UCUM.get(unit)
            action["timingDuration"] = {"value": int(count), "unit": unit,
                                        **({"system": "http://unitsofmeasure.org",
                                            "code": ucum} if ucum else {})}
        if d.responsible:
            action["participant"] = [participant(d.responsible)]
        return action

    def participant(role: str) -> dict[str, Any]:
        return {"type": "practitioner", "role": {
            "coding": [{"system": f"urn:pathways:{spec.id}:role", "code": role}],
            "text": text(spec.roles[role].label) or role}}

    actions = []
    for name in spec.reading_order():
        state = spec.states[name]
        action: dict[str, Any] = {
            "id": _fhir_id(name), "title": text(state.title) or name,
            "code": [{"coding": [{"system": f"urn:pathways:{spec.id}:state", "code": name}]}]}
        if state.responsible:
            action["participant"] = [participant(state.responsible)]
        if state.deadlines:
            action["action"] = [deadline(d) for d in state.deadlines]
        targets = sorted({t.target for t in spec.transitions if t.target and name in
                          ([t.source] if isinstance(t.source, str) else t.source)})
        if targets:
            action["relatedAction"] = [{"actionId": _fhir_id(target),
                                        "relationship": "before-start"}
                                       for target in targets]
        actions.append(action)
    actions += [deadline(d) for d in spec.deadlines]
    return validated({
        "resourceType": "PlanDefinition", "id": _fhir_id(f"{spec.id}-{spec.version}"),
        "url": f"urn:pathways:definition:{spec.id}", "version": str(spec.version),
        "title": text(spec.title), "status": "active",
        "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/"
                                       "plan-definition-type", "code": "clinical-protocol"}]},
        "description": text(spec.description),
        "jurisdiction": [{"coding": [{"system": "urn:iso:std:iso:3166", "code": spec.country}]}],
        "relatedArtifact": [{"type": "citation", "display": source} for source in spec.sources],
        "action": actions,
    })
