"""Checkpoints: every instance's audit head, signed with the audit key and kept elsewhere.

`pathways audit checkpoint -o FILE` writes them; `audit verify --against FILE` then finds a
trail cut back or rewritten since, and an instance deleted since, even by someone who can
change the database and recompute its hashes. Keep the file where the database's owner
cannot write (another host, write-once storage); it holds no personal data.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

from pathways_engine.errors import ConfigError
from pathways_engine.errors import InvalidArgument
from pathways_engine.store import views
from pathways_engine.store.database import Database

from .chain import KEY_ENV

FORMAT = 1


def _mac(key: bytes, body: dict[str, Any]) -> str:
    text = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return hmac.new(key, text.encode("utf-8"), hashlib.sha256).hexdigest()


def _key(db: Database) -> bytes:
    if db.audit_key is None:
        raise ConfigError(f"a checkpoint is signed with the audit key: set {KEY_ENV}")
    return db.audit_key


def take(db: Database, now: dt.datetime) -> dict[str, Any]:
    """Every instance's (seq, head) in one snapshot, with the MAC that seals them."""
    key = _key(db)
    with db.reading() as connection:
        heads = {row.id: [row.audit_seq, row.audit_head] for row in views.heads(connection, None)}
    body = {"format": FORMAT, "created_at": now.isoformat(), "database": db.display_url(),
            "instances": heads}
    return {**body, "mac": _mac(key, body)}


def write(db: Database, path: Path, now: dt.datetime) -> int:
    checkpoint = take(db, now)
    try:
        path.write_text(json.dumps(checkpoint, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    except OSError as exc:
        raise InvalidArgument(f"cannot write checkpoint {str(path)!r}: {exc.strerror}") from None
    return len(checkpoint["instances"])


def load(db: Database, path: Path) -> dict[str, tuple[int, str]]:
    """instance -> (seq, head) from a checkpoint file whose MAC holds; else one clear error."""
    key = _key(db)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        body = {k: v for k, v in data.items() if k != "mac"}
        sealed = hmac.compare_digest(str(data.get("mac", "")), _mac(key, body))
        heads = {str(i): (int(seq), str(head)) for i, (seq, head) in body["instances"].items()}
    except OSError as exc:
        raise InvalidArgument(f"cannot read checkpoint {str(path)!r}: {exc.strerror}") from None
    except (ValueError, KeyError, TypeError, AttributeError):
        raise InvalidArgument(f"{str(path)!r} is not a pathways audit checkpoint") from None
    if not sealed:
        raise InvalidArgument(f"checkpoint {str(path)!r} was changed after it was written, or "
                              f"signed with another key (its MAC does not match {KEY_ENV})")
    return heads
