"""Applying what one pathway owes another across a handover, exactly once.

A signal row is written in the step that causes it (a child completing, a parent ending). It
is applied in a batch that holds the receiver's lock and reads the receiver's signals only
then, so two deliverers never apply one signal: whoever holds the lock reads it pending,
applies it and marks it delivered in the same transaction; a crash before the commit leaves
it pending for the next run. Two children completing at once each write their own row, and
both reach the parent, one after the other.

A signal the receiver cannot take (the parent has moved on and no longer waits for the
event) is recorded, on the receiver's trail and on the signal, and not retried.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from typing import Any

from pathways_engine.audit import notes
from pathways_engine.errors import PathwaysError
from pathways_engine.store import reads

from .step import SYSTEM_ACTOR
from .step import SYSTEM_ROLE
from .step import Batch
from .withdraw import withdraw

log = logging.getLogger("pathways.signals")
MAX_ROUNDS = 20  # an answer that completes a parent that answers its own parent, ...


def deliver(engine: Any, *, only: Iterable[str] | None = None, limit: int = 500) -> int:
    """Apply pending signals (to `only` these receivers, if given); return how many."""
    applied = 0
    targets: Iterable[str] | None = only
    for _ in range(MAX_ROUNDS):
        with engine.batch(commit_point="signals.before_commit") as batch:
            wanted = reads.signal_targets(batch.connection, limit, targets)
            held = batch.load(wanted, skip_locked=True)
            for signal in reads.pending_signals(batch.connection, held):
                _apply(batch, signal)
                applied += 1
            cascade = set(batch.signalled)
        if not cascade:
            break
        targets = cascade
    return applied


def _apply(batch: Batch, signal: Any) -> None:
    case = batch.cases[signal.instance_id]
    outcome = "applied"
    try:
        if case.instance.status != "active":
            outcome = f"not applied: the pathway is {case.instance.status}"
        elif signal.kind == "cancel":
            with batch.step(signal.instance_id) as step:
                withdraw(step, reason=str(signal.payload.get("reason", "")), actor=SYSTEM_ACTOR,
                         role=SYSTEM_ROLE, at=_at(signal, case.instance.state_entered_at),
                         because=f"handover {signal.handover}")
        else:
            with batch.step(signal.instance_id) as step:
                step.send(signal.event, actor=SYSTEM_ACTOR, role=SYSTEM_ROLE,
                          values=dict(signal.payload),
                          note=notes.ANSWERED.format(instance=signal.source_id,
                                                     handover=signal.handover),
                          at=_at(signal, case.instance.state_entered_at))
    except PathwaysError as exc:
        outcome = f"not applied: {exc}"
        with batch.step(signal.instance_id) as step:
            step.audit("signal_refused", at=batch.now, actor=SYSTEM_ACTOR, role=SYSTEM_ROLE,
                       event=signal.event,
                       changes={"from": signal.source_id, "handover": signal.handover},
                       note=str(exc))
        log.warning("signal %s to %s not applied: %s", signal.id, signal.instance_id, exc)
    batch.writes.delivered_signals.append({"b_id": signal.id, "b_at": batch.now,
                                           "b_outcome": outcome})


def _at(signal: Any, entered: dt.datetime) -> dt.datetime:
    """When it happened, never before the receiver's last step."""
    at: dt.datetime = signal.at
    return max(at, entered)
