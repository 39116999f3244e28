"""Withdrawing a pathway that should not go on: the family moved, it was started in error, or
the pathway that handed it over ended and takes it along (`on_end: cancel`).

A withdrawn instance keeps its trail; its open deadlines are cancelled (not met), its unsent
messages are cancelled, and the pathways it takes along are withdrawn in turn (by signal).
"""

from __future__ import annotations

import datetime as dt

from pathways_engine.errors import InstanceFinished
from pathways_engine.errors import InvalidArgument
from pathways_engine.store import reads

from .step import StepContext

MAX_REASON = 500


def withdraw(step: StepContext, *, reason: str, actor: str, role: str,
             at: dt.datetime | None = None, because: str | None = None) -> None:
    reason = reason.strip()
    if not reason or len(reason) > MAX_REASON:
        raise InvalidArgument(f"give the reason (1 to {MAX_REASON} characters) with --reason")
    instance = step.instance
    if instance.status != "active":
        raise InstanceFinished(instance.id, instance.state, instance.status)
    moment = step.event_time(at)
    step.bump()
    instance.status, instance.completed_at = "withdrawn", moment
    step.cancel_all(moment)
    pending = reads.pending_messages(step.batch.connection, instance.id)
    if pending:
        step.writes.cancelled_messages += [{"b_id": m.id, "b_reason": "pathway withdrawn"}
                                           for m in pending]
    step.audit("withdrawn", at=moment, actor=actor, role=role, from_state=instance.state,
               changes={"status": ["active", "withdrawn"], **({"because": because}
                                                              if because else {})},
               note=reason, effects={"withdrawn": True,
                                     "cancelled": [m.idempotency_key for m in pending]})
    step.finished(moment, why="withdrawn")
