"""The notes the engine writes into the audit trail itself, in one place, so that a reader
who words them for people (the pages) finds the facts the engine wrote.

In the trail they stay English and name ids: it is hash-chained, and programs and auditors
read it. The pages say the same facts in the reader's language (pathways/web/worded.py).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

# a step of another pathway started this one
HANDED_OVER = "handed over from {pathway} {instance} ({handover})"
# the child already had this pathway running: the handover linked it to the one that handed over
JOINED = "joined by {pathway} {instance} ({handover})"
# a consent the handover took along from the pathway that handed over
CARRIED = "carried from {instance} ({handover})"
# the answer of a pathway this one handed over to (its `returns:` event)
ANSWERED = "from {instance} ({handover})"
# withdrawn because the pathway that handed over ended (`on_end: cancel`)
ENDED = "{pathway} {instance} {why}"
# a deadline's `on_timeout` step
PASSED = "deadline {deadline} passed"

# which note an entry of a kind can carry; `withdrawn` only when a handover caused it
_BY_KIND: Mapping[str, tuple[str, ...]] = {
    "start": (HANDED_OVER,), "joined": (JOINED,), "consent": (CARRIED,),
    "transition": (PASSED, ANSWERED), "internal": (PASSED, ANSWERED), "withdrawn": (ENDED,),
}


def _pattern(form: str) -> re.Pattern[str]:
    parts = re.split(r"\{(\w+)\}", form)  # text, name, text, name, ..., text
    return re.compile("".join(re.escape(part) if i % 2 == 0 else rf"(?P<{part}>\S+)"
                              for i, part in enumerate(parts)))


_PATTERNS = {form: _pattern(form) for forms in _BY_KIND.values() for form in forms}


def read(kind: str, note: str | None, changes: Mapping[str, Any] | None = None,
         actor: str | None = None) -> tuple[str, dict[str, str]] | None:
    """The engine's note on an entry as (its form, its facts); None for a person's note.

    A person can type any text, so only the system's own entries are read, and a withdrawal
    only when a handover caused it."""
    if not note or kind not in _BY_KIND:
        return None
    if kind == "withdrawn" and not str((changes or {}).get("because", "")).startswith(
            "handover "):
        return None
    if kind in ("transition", "internal") and actor != "system":
        return None
    for form in _BY_KIND[kind]:
        found = _PATTERNS[form].fullmatch(note)
        if found:
            return form, found.groupdict()
    return None
