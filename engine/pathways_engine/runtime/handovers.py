"""Handovers: one pathway starting another for the same child, within the same step.

The call activity of BPMN engines, shaped for sectors. A definition's `handovers:` say when
(an event sent, a state entered), which pathway starts (as which of its roles), which fields
and consents go along, and - for a pathway that waits - which event comes back with which
fields when the other one completes. The new instance is opened in the parent's step: its rows
join the parent's writes, so the two commit together or not at all.

What flows back goes through `signals` rows, written in the step that causes them and applied
under the receiver's lock (runtime/signals.py): a completed child's answer to its waiting
parent, and a parent's end to the children it takes along (`on_end: cancel`). A signal is
applied once, whoever crashes when.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pathways_engine.audit import notes
from pathways_engine.definition.compiler import compile_definition
from pathways_engine.definition.parts import HandoverSpec
from pathways_engine.definition.values import check_values
from pathways_engine.errors import InvalidArgument
from pathways_engine.errors import PathwaysError
from pathways_engine.rules.expressions import compile_condition
from pathways_engine.store import reads

from .step import StepContext


def hand_over(step: StepContext, happening: str, at: dt.datetime, actor: str) -> None:
    for handover in step.compiled.handovers.get(happening, []):
        if handover.condition is not None and not _holds(step, handover, at):
            continue
        _start_child(step, handover, at, actor)


def _holds(step: StepContext, handover: HandoverSpec, at: dt.datetime) -> bool:
    types = {name: f.type for name, f in step.spec.fields.items()}
    enums = {name: list(f.values or []) for name, f in step.spec.fields.items()}
    assert handover.condition is not None
    condition = compile_condition(handover.condition, types, enums)
    return condition(step.guard_values({}, at))


def _start_child(step: StepContext, handover: HandoverSpec, at: dt.datetime,
                 actor: str) -> None:
    engine, parent = step.engine, step.instance
    try:
        definition = engine.registry.get(handover.start, handover.version)
    except PathwaysError as exc:
        raise InvalidArgument(f"handover {handover.name!r} cannot start {handover.start!r}: "
                              f"{exc}") from None
    spec = definition.spec
    if not spec.start.allow_parallel:
        running = _running(step, spec.id)
        if running is not None and _join(step, handover, spec.id, running, at, actor):
            return
    carried = {theirs: parent.data[ours] for theirs, ours in handover.carry.items()
               if parent.data.get(ours) is not None}
    try:
        given = check_values(spec, carried, spec.start.requires, spec.start.accepts,
                             f"handover {handover.name!r} to {spec.id!r}")
    except PathwaysError as exc:
        raise type(exc)(f"{exc} (carry it from {parent.pathway_id!r})") from None
    note = notes.HANDED_OVER.format(pathway=parent.pathway_id, instance=parent.id,
                                     handover=handover.name)
    with engine.open_instance(step.batch, definition, compile_definition(definition),
                              step.subject, actor=actor, role=handover.role, given=given,
                              at=at, area=parent.area, parent=step, handover=handover.name,
                              note=note) as child:
        _carry_consents(step, child, handover, actor, at)
        child_id = child.instance.id
    step.audit("handover", at=at, actor=actor, role=handover.role,
               changes={"handover": handover.name, "pathway": spec.id, "instance": child_id},
               effects={"handover": [handover.name, child_id]})


def _running(step: StepContext, pathway: str) -> str | None:
    """The child's running instance of `pathway`, also one started earlier in this batch."""
    subject_id = step.subject.id
    for case in step.batch.cases.values():
        instance = case.instance
        if (case.new and instance.subject_id == subject_id and instance.pathway_id == pathway
                and instance.status == "active"):
            return instance.id
    return reads.running_instance(step.batch.connection, subject_id, pathway)


def _join(step: StepContext, handover: HandoverSpec, pathway: str, running: str,
          at: dt.datetime, actor: str) -> bool:
    """The child already has this pathway (a caseworker started it, or another handover): link
    to it instead of refusing the step as a duplicate. A pathway that waits adopts it, so it is
    answered when that one ends; one that answers another parent cannot be waited for.
    False if it ended while this step waited for its lock (then a new one starts)."""
    batch, parent = step.batch, step.instance
    batch.load([running])
    case = batch.cases.get(running)
    if case is None or case.instance.status != "active":
        return False
    owner = case.instance.parent_id
    if owner not in (None, parent.id) and handover.returns is not None:
        raise InvalidArgument(
            f"handover {handover.name!r}: subject {step.subject.ref!r} already has a running "
            f"{pathway!r} ({running}), which answers parent {owner}; this step would wait for "
            "it for ever: finish or withdraw it first")
    if owner is None:
        step.joined.append((case, case.saved()))
        with batch.step(running, into=step) as child:
            child.bump()
            child.instance.parent_id, child.instance.handover = parent.id, handover.name
            child.audit("joined", at=at, actor=actor, role=handover.role,
                        changes={"parent": parent.id, "handover": handover.name},
                        note=notes.JOINED.format(pathway=parent.pathway_id, instance=parent.id,
                                                     handover=handover.name))
            _carry_consents(step, child, handover, actor, at)
    step.audit("handover", at=at, actor=actor, role=handover.role,
               changes={"handover": handover.name, "pathway": pathway, "instance": running,
                        "joined": True},
               effects={"handover": [handover.name, running]})
    return True


def _carry_consents(parent: StepContext, child: StepContext, handover: HandoverSpec,
                    actor: str, at: dt.datetime) -> None:
    """The consents the handover names go along: the child's trail records each."""
    sectors = {role.sector for role in child.spec.roles.values()}
    held = {(sector, basis, reference) for _, sector, basis, reference in child.case.consents}
    for _, sector, basis, reference in parent.case.consents:
        if (sector not in handover.consents or sector not in sectors
                or (sector, basis, reference) in held):
            continue
        child.case.consents.append((len(child.case.consents) + 1, sector, basis, reference))
        child.writes.consents.append({"instance_id": child.instance.id, "sector": sector,
                                      "basis": basis, "reference": reference,
                                      "given_by": actor, "at": at, "withdrawn_at": None})
        child.audit("consent", at=at, actor=actor, role=handover.role,
                    changes={"sector": sector, "basis": basis, "reference": reference},
                    note=notes.CARRIED.format(instance=parent.instance.id, handover=handover.name),
                    effects={"consent": [sector, basis, reference]})


def finished(step: StepContext, at: dt.datetime, why: str = "completed") -> None:
    """The pathway ended: its waiting parent gets the answer, children it takes along stop."""
    instance, connection = step.instance, step.batch.connection
    if instance.parent_id is not None and instance.handover is not None:
        content_hash = reads.parent_contract(connection, instance.parent_id)
        if content_hash is not None:
            parent = step.engine.compiled_for(connection, content_hash).spec
            handover = next((h for h in parent.handovers if h.name == instance.handover), None)
            if handover is not None and handover.returns is not None:
                payload = {ours: instance.data.get(theirs)
                           for ours, theirs in handover.returns.fields.items()
                           if instance.data.get(theirs) is not None}
                _signal(step, instance.parent_id, "event", handover.returns.event, payload,
                        handover.name, at)
    if step.compiled.cancels_children:
        along = {h.name for h in step.spec.handovers if h.on_end == "cancel"}
        for child_id, name in reads.running_children(connection, instance.id):
            if name in along:
                reason = notes.ENDED.format(pathway=instance.pathway_id, instance=instance.id,
                                            why=why)
                _signal(step, child_id, "cancel", None, {"reason": reason}, name, at)


def _signal(step: StepContext, target: str, kind: str, event: str | None,
            payload: dict[str, Any], handover: str, at: dt.datetime) -> None:
    step.bump()
    step.writes.signals.append({"instance_id": target, "kind": kind, "event": event,
                                "payload": payload, "source_id": step.instance.id,
                                "handover": handover, "at": at, "delivered_at": None,
                                "outcome": None})
    step.batch.signalled.add(target)
