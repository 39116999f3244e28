"""API tokens: created, looked up by digest, rotated, expired and revoked. The token itself
is never stored."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from typing import Any

from sqlalchemy import Connection
from sqlalchemy import and_
from sqlalchemy import bindparam
from sqlalchemy import insert
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy import update

from .tables import api_tokens

PREFIX = "pw_"  # recognisable in a leaked log or a secret scanner


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create(connection: Connection, actor: str, note: str | None, now: dt.datetime,
           expires_at: dt.datetime | None = None) -> tuple[int, str]:
    """(id, token): the token is shown once, to whoever created it."""
    token = PREFIX + secrets.token_urlsafe(32)
    row = connection.execute(insert(api_tokens).values(
        digest=digest(token), actor=actor, note=note, created_at=now, expires_at=expires_at,
    ).returning(api_tokens.c.id))
    return int(row.scalar_one()), token


def _is_live(now: Any) -> Any:
    return and_(api_tokens.c.revoked_at.is_(None),
                or_(api_tokens.c.expires_at.is_(None), api_tokens.c.expires_at > now))


# built once: every API step checks its token, and a statement made anew per call is walked
# for its cache key every time (as store/writes.py's)
_LIVE = select(api_tokens.c.id, api_tokens.c.actor, api_tokens.c.last_used_at).where(
    api_tokens.c.digest == bindparam("b_digest"), _is_live(bindparam("b_now")))
_TOUCH = (update(api_tokens).where(api_tokens.c.id == bindparam("b_id"))
          .values(last_used_at=bindparam("b_now")))


def live(connection: Connection, token: str, now: dt.datetime) -> Any:
    """The live token row for `token` (neither revoked nor expired at `now`): id, actor,
    last_used_at; or None."""
    return connection.execute(_LIVE, {"b_digest": digest(token), "b_now": now}).first()


def live_by_id(connection: Connection, token_id: int, now: dt.datetime) -> Any:
    return connection.execute(select(api_tokens).where(
        api_tokens.c.id == token_id, _is_live(now))).first()


def rotate(connection: Connection, old: Any, now: dt.datetime, overlap: dt.timedelta,
           expires_at: dt.datetime | None) -> tuple[int, str, dt.datetime]:
    """(id, token, when the old one stops): a new token for the actor and note of `old` (a
    live row, `live_by_id`); the old one stops at `now + overlap`, or at its own expiry if
    sooner, so an integration can switch over without a gap. Zero overlap revokes it now.
    Both in the caller's transaction: both or neither."""
    ends = now + overlap
    if old.expires_at is not None and old.expires_at < ends:
        ends = old.expires_at
    stop = {"revoked_at": now} if overlap <= dt.timedelta(0) else {"expires_at": ends}
    connection.execute(update(api_tokens).where(api_tokens.c.id == old.id).values(**stop))
    token_id, token = create(connection, old.actor, old.note, now, expires_at)
    return token_id, token, now if overlap <= dt.timedelta(0) else ends


def touch(connection: Connection, token_id: int, now: dt.datetime) -> None:
    connection.execute(_TOUCH, {"b_id": token_id, "b_now": now})


def revoke(connection: Connection, token_id: int, now: dt.datetime) -> bool:
    done = connection.execute(update(api_tokens).where(
        api_tokens.c.id == token_id, api_tokens.c.revoked_at.is_(None)).values(revoked_at=now))
    return bool(done.rowcount)


def listed(connection: Connection) -> list[Any]:
    return list(connection.execute(select(
        api_tokens.c.id, api_tokens.c.actor, api_tokens.c.note, api_tokens.c.created_at,
        api_tokens.c.revoked_at, api_tokens.c.last_used_at, api_tokens.c.expires_at,
    ).order_by(api_tokens.c.id)))
