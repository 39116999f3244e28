"""Putting a mistake right without rewriting history: a correction and an undo are steps too.

- `correct` changes fields that were entered wrongly, with a reason; the open deadlines
  counted from a corrected date are counted again (and their rule in force looked up again).
- `undo` takes back the instance's latest transition by a compensating step: the state, the
  data and the status it had before; the deadlines that transition opened are cancelled, the
  ones it closed are open again, its unsent messages are cancelled. A transition that handed
  the child over to another pathway is not undone here: withdraw that pathway first.

Both are audit entries of their own (the entries they correct stay as they were), with the
results `audit verify` replays.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pathways_engine.definition.values import check_values
from pathways_engine.errors import InvalidArgument
from pathways_engine.store import reads
from pathways_engine.store import views

from .deadlines import fires_for
from .deadlines import new_deadline
from .step import StepContext

MAX_REASON = 500
STEP_KINDS = ("transition", "internal")


def _reason(reason: str) -> str:
    reason = reason.strip()
    if not reason or len(reason) > MAX_REASON:
        raise InvalidArgument(f"give the reason (1 to {MAX_REASON} characters) with --reason")
    return reason


def correct(step: StepContext, values: Mapping[str, Any], *, reason: str, actor: str,
            role: str) -> dict[str, list[Any]]:
    """Correct fields; return {field: [old, new]} of what changed."""
    reason = _reason(reason)
    spec, instance = step.spec, step.instance
    _read_rows(step)
    if not values:
        raise InvalidArgument("give the corrected fields with --set FIELD=VALUE")
    given = check_values(spec, values, [], list(values), "a correction")
    changes = {k: [instance.data.get(k), v] for k, v in given.items()
               if instance.data.get(k) != v}
    if not changes:
        raise InvalidArgument("nothing to correct: the fields already have these values")
    step.bump()
    instance.data = {**instance.data, **given}
    moved = []
    for row in step.case.pending():
        deadline = step.compiled.deadline_specs[(row.state, row.name)]
        if deadline.counts_from.removeprefix("field:") not in changes or row.occurrence > 1:
            continue
        fresh = new_deadline(spec, deadline, instance, row.state, row.started_at,
                             step.engine.switches)
        row.due_at, row.rule, row.window_start = fresh.due_at, fresh.rule, fresh.window_start
        row.started_at = fresh.started_at
        row.fires = fires_for(spec, deadline, row.due_at)
        row.fire_index = sum(1 for _, at in row.fires if at <= step.now)
        row.changed = True
        if row.id is not None:
            step.writes.recounted.append({"b_id": row.id, "b_rule": row.rule,
                                          "b_start": row.started_at,
                                          "b_window": row.window_start})
        moved.append([row.name, row.state, row.due_at.isoformat(), row.fire_index])
    step.audit("correction", at=step.now, actor=actor, role=role, changes=changes,
               note=reason, effects={"moved": moved})
    return changes


def undo(step: StepContext, *, reason: str, actor: str, role: str) -> dict[str, Any]:
    """Take back the latest transition; return what was taken back."""
    reason = _reason(reason)
    instance, connection = step.instance, step.batch.connection
    _read_rows(step)
    history = views.history_of(connection, instance.id)
    steps = [e for e in history if e.kind in (*STEP_KINDS, "start", "undo", "migration")]
    last = steps[-1] if steps else None
    if last is None or last.kind not in STEP_KINDS:
        what = "nothing has happened since it started" if last is None or \
            last.kind == "start" else f"its latest step is a {last.kind}"
        raise InvalidArgument(f"instance {instance.id} has no transition to undo: {what}")
    if any(e.kind == "handover" and e.seq > last.seq for e in history):
        child = next(e.changes.get("instance") for e in history
                     if e.kind == "handover" and e.seq > last.seq)
        raise InvalidArgument(f"the step handed the child over to {child}; withdraw that "
                              "pathway first (pathways withdraw), then undo")
    before = next((e for e in reversed(steps[:-1])), None)
    step.bump()
    was = instance.state
    instance.state = last.from_state or instance.state
    if before is not None and last.kind == "transition":
        instance.state_entered_at = before.at
    for name, (old, _new) in (last.changes or {}).items():
        if name == "area":
            continue
        if old is None:
            instance.data.pop(name, None)
        else:
            instance.data[name] = old
    instance.data = dict(instance.data)
    reopened_status = instance.status
    instance.status, instance.completed_at = "active", None
    effects = last.effects or {}
    opened = {(name, state) for name, state, *_ in effects.get("opened", [])}
    cancelled, reopened = [], []
    for row in step.case.pending():
        if (row.name, row.state) in opened and row.started_at >= last.at:
            row.status, row.closed_at, row.changed = "cancelled", step.now, True
            cancelled.append([row.name, row.state])
    for row in reads.closed_at(connection, instance.id, last.at):
        row.status, row.closed_at = "pending", None
        deadline = step.compiled.deadline_specs[(row.state, row.name)]
        row.fires = fires_for(step.spec, deadline, row.due_at)
        row.fire_index = sum(1 for _, at in row.fires if at <= step.now)
        row.changed = True
        step.case.known = [*(step.case.known or []), row]
        reopened.append([row.name, row.state, row.fire_index])
    pending = [m for m in reads.pending_messages(connection, instance.id)
               if m.idempotency_key.startswith(f"{instance.id}:{last.seq}:")]
    step.writes.cancelled_messages += [{"b_id": m.id, "b_reason": "step undone"}
                                       for m in pending]
    changes = {"undid": last.seq, "state": [was, instance.state],
               **{k: [v[1], v[0]] for k, v in (last.changes or {}).items() if k != "area"}}
    if reopened_status != "active":
        changes["status"] = [reopened_status, "active"]
    step.audit("undo", at=step.now, actor=actor, role=role, event=last.event,
               from_state=was, to_state=instance.state, changes=changes, note=reason,
               effects={"cancelled_deadlines": cancelled, "reopened": reopened,
                        "undone_at": last.at.isoformat(),
                        "entered": instance.state_entered_at.isoformat(),
                        "cancelled": [m.idempotency_key for m in pending]})
    return changes


def _read_rows(step: StepContext) -> None:
    """Both work on the open deadline rows themselves."""
    if step.case.known is None:
        step.case.known = reads.pending_deadlines(step.batch.connection, [step.instance.id])
