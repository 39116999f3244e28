"""The append-only, hash-chained audit trail of every instance.

Each entry's hash covers its content and the previous entry's hash; the instance row keeps
the newest hash and sequence number, so an edited, deleted, inserted or reordered entry -
including the last one - breaks the chain where it happened. An entry's `effects` (what it
did to deadlines, messages, consents and assignments) are covered too, which lets `audit
verify` replay the state tables against the trail. Entries written before 0.2 have no
effects; their hashes are computed exactly as they were.

With a deployment key (`PATHWAYS_AUDIT_KEY`, held outside the database) each entry also
carries `mac` = HMAC-SHA256(key, hash): whoever can write the database but not read the key
cannot append a convincing entry or recompute a rewritten tail.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any

from pathways_engine.store.rows import Head

GENESIS = "0" * 64
KEY_ENV = "PATHWAYS_AUDIT_KEY"


def _iso(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat()


def digest(entry: Mapping[str, Any]) -> str:
    body = {
        "instance": entry["instance_id"], "seq": entry["seq"], "at": _iso(entry["at"]),
        "recorded_at": _iso(entry["recorded_at"]), "actor": entry["actor"],
        "role": entry["role"], "kind": entry["kind"], "event": entry["event"],
        "from": entry["from_state"], "to": entry["to_state"], "changes": entry["changes"],
        "note": entry["note"], "prev": entry["prev_hash"],
    }
    if entry.get("effects") is not None:
        body["effects"] = entry["effects"]
    text = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def mac(key: bytes | None, entry_hash: str) -> str | None:
    if key is None:
        return None
    return hmac.new(key, entry_hash.encode("ascii"), hashlib.sha256).hexdigest()


def mac_matches(key: bytes, entry_hash: str, given: str | None) -> bool:
    return given is not None and hmac.compare_digest(given, mac(key, entry_hash) or "")


def new_entry(instance: Head, *, at: dt.datetime, recorded_at: dt.datetime, actor: str,
              role: str, kind: str, key: bytes | None, event: str | None = None,
              from_state: str | None = None, to_state: str | None = None,
              changes: dict[str, Any] | None = None, note: str | None = None,
              effects: dict[str, Any] | None = None) -> dict[str, Any]:
    """The next entry of `instance`'s trail; moves the instance's head to it."""
    entry: dict[str, Any] = {
        "instance_id": instance.id, "seq": instance.audit_seq + 1, "at": at.astimezone(dt.UTC),
        "recorded_at": recorded_at.astimezone(dt.UTC), "actor": actor, "role": role,
        "kind": kind, "event": event, "from_state": from_state, "to_state": to_state,
        "changes": changes or {}, "note": note, "effects": effects,
        "prev_hash": instance.audit_head,
    }
    entry["hash"] = digest(entry)
    entry["mac"] = mac(key, entry["hash"])
    instance.audit_seq, instance.audit_head = entry["seq"], entry["hash"]
    return entry


def message_digest(values: Mapping[str, Any]) -> str:
    """What an outbox row holds that decides its delivery; its queuing entry records this."""
    keys = ("role", "party", "channel", "address", "language", "template", "subject",
            "body_text", "body_html", "personal_data", "legal_basis")
    text = json.dumps({k: values[k] for k in keys}, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def key_from(text: str | None) -> bytes | None:
    """The deployment key from its environment value; short keys are refused by the caller."""
    return text.encode("utf-8") if text else None
