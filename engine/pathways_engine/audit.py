"""The append-only, hash-chained audit trail of every instance.

Each entry's hash covers its content and the previous entry's hash; the instance row keeps
the newest hash and sequence number, so an edited, deleted, inserted or reordered entry -
including the last one - breaks the chain where it happened.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from .store.models import AuditEntry
from .store.models import Instance

GENESIS = "0" * 64


def _digest(entry: AuditEntry) -> str:
    body = {
        "instance": entry.instance_id, "seq": entry.seq, "at": entry.at.isoformat(),
        "recorded_at": entry.recorded_at.isoformat(), "actor": entry.actor, "role": entry.role,
        "kind": entry.kind, "event": entry.event, "from": entry.from_state,
        "to": entry.to_state, "changes": entry.changes, "note": entry.note,
        "prev": entry.prev_hash,
    }
    text = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def append(session: Session, instance: Instance, *, at: dt.datetime, recorded_at: dt.datetime,
           actor: str, role: str, kind: str, event: str | None = None,
           from_state: str | None = None, to_state: str | None = None,
           changes: dict[str, Any] | None = None, note: str | None = None) -> AuditEntry:
    entry = AuditEntry(
        instance_id=instance.id, seq=instance.audit_seq + 1, at=at.astimezone(dt.UTC),
        recorded_at=recorded_at.astimezone(dt.UTC), actor=actor, role=role, kind=kind,
        event=event, from_state=from_state, to_state=to_state, changes=changes or {},
        note=note, prev_hash=instance.audit_head,
    )
    entry.hash = _digest(entry)
    instance.audit_seq = entry.seq
    instance.audit_head = entry.hash
    session.add(entry)
    return entry


@dataclass(frozen=True)
class ChainBreak:
    instance_id: str
    seq: int
    reason: str

    def __str__(self) -> str:
        return f"instance {self.instance_id}: audit entry {self.seq}: {self.reason}"


def verify_instance(instance: Instance, entries: Iterable[AuditEntry]) -> ChainBreak | None:
    expected_prev, expected_seq = GENESIS, 1
    for entry in entries:
        if entry.seq != expected_seq:
            return ChainBreak(instance.id, expected_seq,
                              f"missing or reordered (found entry {entry.seq} next)")
        if entry.prev_hash != expected_prev:
            return ChainBreak(instance.id, entry.seq, "does not follow the previous entry")
        if _digest(entry) != entry.hash:
            return ChainBreak(instance.id, entry.seq, "content was changed after it was written")
        expected_prev, expected_seq = entry.hash, expected_seq + 1
    if expected_seq - 1 != instance.audit_seq or expected_prev != instance.audit_head:
        return ChainBreak(instance.id, expected_seq, "entries after this one were deleted")
    return None


def verify(session: Session, instance_ids: Iterable[str] | None = None) -> list[ChainBreak]:
    """The first break of each instance's chain; empty when the trail is intact."""
    query = select(Instance).order_by(Instance.id)
    if instance_ids is not None:
        query = query.where(Instance.id.in_(list(instance_ids)))
    breaks = []
    for instance in session.scalars(query):
        entries = session.scalars(
            select(AuditEntry).where(AuditEntry.instance_id == instance.id).order_by(AuditEntry.id)
        )
        found = verify_instance(instance, entries)
        if found:
            breaks.append(found)
    return breaks
