"""What the read commands need of a stored definition, read from its snapshot without pydantic.

A snapshot was checked in full when its first instance started, so `show`, `history`,
`overdue` and `list` need not rebuild the whole model (and import pydantic) to print titles,
who is responsible, which fields are personal and which events may be sent now. The defaults
here are the definition format's (definition/spec.py); a test compares this view with the
full model for every shipped pathway so the two cannot drift apart.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pathways_engine.rules.expressions import Condition
from pathways_engine.rules.expressions import compile_condition


def in_language(texts: Mapping[str, str] | None, language: str | None, fallback: str,
                default: str) -> str:
    """A definition's text in `language`, else in its fallback language, else any, else
    `default`: what every reader of a title gets, whichever command shows it."""
    if not texts:
        return default
    return (texts.get(language or fallback) or texts.get(fallback)
            or next(iter(texts.values()), default))

@dataclass(frozen=True)
class TransitionView:
    event: str
    sources: tuple[str, ...]
    roles: tuple[str, ...]
    guard: Condition | None


@dataclass(frozen=True)
class ReadView:
    id: str
    version: int
    title: dict[str, str]
    timezone: str
    country: str
    languages: tuple[str, ...]
    sectors: dict[str, str]  # role -> sector
    responsible: dict[str, str | None]  # state -> role
    state_titles: dict[str, dict[str, str]]
    personal: frozenset[str]
    transitions: tuple[TransitionView, ...]
    fallback_language: str = "en"
    role_labels: Mapping[str, Mapping[str, str]] | None = None
    deadline_titles: Mapping[str, Mapping[str, str]] | None = None

    def text(self, texts: Mapping[str, str] | None, language: str | None, default: str) -> str:
        """`texts` in `language`, else the pathway's fallback language, else `default`."""
        return in_language(texts, language, self.fallback_language, default)

    def may_send(self, state: str, values: Mapping[str, Any]) -> dict[str, list[str]]:
        """Role -> the events it may send now (guards evaluated over `values`)."""
        may: dict[str, list[str]] = {}
        for transition in self.transitions:
            if state in transition.sources and (transition.guard is None or
                                                transition.guard(values)):
                for role in transition.roles or ("system",):
                    events = may.setdefault(role, [])
                    if transition.event not in events:
                        events.append(transition.event)
        return {role: sorted(events) for role, events in sorted(may.items())}


# what the format's yes/no (pydantic's bool) reads as yes; a file holds it as the text written
_YES = frozenset({"1", "on", "t", "true", "y", "yes"})


def _yes(value: Any) -> bool:
    """`personal: false` is the text "false" in a snapshot (yamlsafe.py), which is not yes."""
    return value is True or (isinstance(value, str) and value.lower() in _YES)


def view_of(definition: Mapping[str, Any]) -> ReadView:
    """The read view of a definition document (as stored in its snapshot)."""
    fields: dict[str, Any] = definition.get("fields") or {}
    types = {name: str(f["type"]) for name, f in fields.items()}
    enums = {name: list(f.get("values") or []) for name, f in fields.items()}
    transitions = []
    for t in definition["transitions"]:
        source = t["from"]
        guard = t.get("guard")
        transitions.append(TransitionView(
            str(t["event"]), (source,) if isinstance(source, str) else tuple(source),
            tuple(t.get("roles") or ()),
            compile_condition(guard, types, enums) if guard is not None else None))
    states: dict[str, Any] = definition["states"]
    return ReadView(
        id=str(definition["id"]), version=int(definition["version"]),
        title=dict(definition["title"]), timezone=str(definition["timezone"]),
        country=str(definition["country"]), languages=tuple(definition["languages"]),
        sectors={name: str(r["sector"]) for name, r in definition["roles"].items()},
        responsible={name: s.get("responsible") for name, s in states.items()},
        state_titles={name: dict(s.get("title") or {}) for name, s in states.items()},
        personal=frozenset(n for n, f in fields.items() if _yes(f.get("personal", False))),
        transitions=tuple(transitions),
        fallback_language=str(definition["fallback_language"]),
        role_labels={name: dict(r.get("label") or {}) for name, r in definition["roles"].items()},
        deadline_titles={str(d["name"]): dict(d.get("title") or {}) for d in [
            *(definition.get("deadlines") or []),
            *(d for s in states.values() for d in (s.get("deadlines") or []))]})


_views: dict[str, ReadView] = {}
_lock = threading.Lock()


def cached_view(content_hash: str, snapshot: str | None) -> ReadView | None:
    """The view of this snapshot (parsed once per process); None if neither is known."""
    with _lock:
        found = _views.get(content_hash)
        if found is None and snapshot is not None:
            found = _views[content_hash] = view_of(json.loads(snapshot)["definition"])
        return found
