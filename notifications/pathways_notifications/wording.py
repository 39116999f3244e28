"""Dates, times and durations as a reader of the message's language writes them (Babel).

A deadline that ends at local midnight reads "31. december 2026 kl. 23.59" in Danish, not
"2026-12-31T22:59:59+00:00 (UTC)": the pathway's zone, the recipient's language, CLDR's month
names and the national way of writing the time.
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from zoneinfo import ZoneInfo

from babel.dates import format_datetime

# CLDR's "long" date with the national word for "at" and the time as written locally
_PATTERNS = {
    "da": "d. MMMM y 'kl.' HH.mm",
    "nb": "d. MMMM y 'kl.' HH.mm",
    "sv": "d MMMM y 'kl.' HH.mm",
    "en": "d MMMM y 'at' HH:mm",
}


@lru_cache(maxsize=4096)  # `check` renders every template with the same sample times
def local_time(at: dt.datetime | str | None, zone: str, language: str) -> str | None:
    """`at` in the pathway's zone, written for a reader of `language`."""
    if at is None:
        return None
    moment = dt.datetime.fromisoformat(at) if isinstance(at, str) else at
    pattern = _PATTERNS.get(language, _PATTERNS["en"])
    return format_datetime(moment, pattern, tzinfo=ZoneInfo(zone), locale=language)


def how_long(span: dt.timedelta, language: str) -> str:
    """A span in whole units counted down, as people say it ("3 dage", "5 timer")."""
    from pathways_engine.reading.views import humanise

    return humanise(span, language)
