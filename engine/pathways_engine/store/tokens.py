"""API tokens: created, looked up by digest, revoked. The token itself is never stored."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from typing import Any

from sqlalchemy import Connection
from sqlalchemy import bindparam
from sqlalchemy import insert
from sqlalchemy import select
from sqlalchemy import update

from .tables import api_tokens

PREFIX = "pw_"  # recognisable in a leaked log or a secret scanner


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create(connection: Connection, actor: str, note: str | None, now: dt.datetime) -> tuple[int,
                                                                                          str]:
    """(id, token): the token is shown once, to whoever created it."""
    token = PREFIX + secrets.token_urlsafe(32)
    row = connection.execute(insert(api_tokens).values(
        digest=digest(token), actor=actor, note=note, created_at=now).returning(api_tokens.c.id))
    return int(row.scalar_one()), token


# built once: every API step checks its token, and a statement made anew per call is walked
# for its cache key every time (as store/writes.py's)
_LIVE = select(api_tokens.c.id, api_tokens.c.actor, api_tokens.c.last_used_at).where(
    api_tokens.c.digest == bindparam("b_digest"), api_tokens.c.revoked_at.is_(None))
_TOUCH = (update(api_tokens).where(api_tokens.c.id == bindparam("b_id"))
          .values(last_used_at=bindparam("b_now")))


def live(connection: Connection, token: str) -> Any:
    """The live (unrevoked) token row for `token`: id, actor, last_used_at; or None."""
    return connection.execute(_LIVE, {"b_digest": digest(token)}).first()


def touch(connection: Connection, token_id: int, now: dt.datetime) -> None:
    connection.execute(_TOUCH, {"b_id": token_id, "b_now": now})


def revoke(connection: Connection, token_id: int, now: dt.datetime) -> bool:
    done = connection.execute(update(api_tokens).where(
        api_tokens.c.id == token_id, api_tokens.c.revoked_at.is_(None)).values(revoked_at=now))
    return bool(done.rowcount)


def listed(connection: Connection) -> list[Any]:
    return list(connection.execute(select(
        api_tokens.c.id, api_tokens.c.actor, api_tokens.c.note, api_tokens.c.created_at,
        api_tokens.c.revoked_at, api_tokens.c.last_used_at).order_by(api_tokens.c.id)))
