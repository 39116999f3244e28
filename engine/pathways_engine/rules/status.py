"""How a deadline ends when it is met, and how an open one reads now: one rule, used by the
step path, the audit replay and (as SQL) the store."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo


def met_status(at: dt.datetime, due: dt.datetime, window_start: dt.datetime | None,
               paused_at: dt.datetime | None) -> str:
    """met_early before its window opens; on a paused clock met if it was paused in time;
    else met or met_late by the due time."""
    if window_start is not None and at < window_start:
        return "met_early"
    if paused_at is not None:
        return "met" if paused_at <= due else "met_late"
    return "met" if at <= due else "met_late"


def display_status(status: str, due_at: dt.datetime, now: dt.datetime, zone: ZoneInfo,
                   paused: bool = False) -> str:
    """pending, due (falls due today, local time), overdue, paused, or how it was closed."""
    if status != "pending":
        return status
    if paused:
        return "paused"
    if now > due_at:
        return "overdue"
    if now.astimezone(zone).date() == due_at.astimezone(zone).date():
        return "due"
    return "pending"
