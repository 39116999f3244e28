"""A validated definition as the engine runs it: plain frozen objects, no pydantic.

spec.py is the format: it validates a file and gives `pathways schema`. What it validated is
turned into these parts (rebuild.py), and a stored snapshot is turned into them directly, so a
step never imports pydantic: importing it and declaring the format's models cost a fresh
`pathways advance` about 95 ms, more than the rest of its start above SQLAlchemy and click.
Each class here has spec.py's name, fields, keys and defaults;
tests/test_definition_format.py checks that they match field by field, so neither can change
alone. Annotations are real types (no `from __future__ import annotations`) because
rebuild.py reads them.
"""

from typing import Any
from typing import ClassVar
from typing import Literal

from pathways_engine.rules.calendars import CalendarRules

Lang = Literal["da", "nb", "sv", "en"]
Text = dict[Lang, str]


class _New:
    """A default made fresh for each object: an empty list or dict, or a part built from {}."""

    def __init__(self, make: Any = None) -> None:
        self.make = make


def fresh(make: Any) -> Any:
    """A field's default made by calling `make` for each object."""
    return _New(make)


LIST: Any = fresh(list)
DICT: Any = fresh(dict)
PART: Any = fresh(None)  # the annotation's class, with its own defaults


class Part:
    """Frozen, compared by value, made by rebuild.py with every field given."""

    _fields: ClassVar[tuple[str, ...]] = ()
    _types: ClassVar[dict[str, Any]] = {}
    _defaults: ClassVar[dict[str, Any]] = {}  # field -> a value, or a _New
    _keys: ClassVar[dict[str, str]] = {}  # field -> its key in the file, where they differ
    _by_key: ClassVar[dict[str, str]] = {}  # key in the file -> field

    def __init_subclass__(cls) -> None:
        types = {k: v for k, v in cls.__dict__.get("__annotations__", {}).items()
                 if not k.startswith("_")}
        cls._fields, cls._types = tuple(types), types
        cls._by_key = {cls._keys.get(name, name): name for name in types}
        cls._defaults = {}
        for name in types:
            if name in cls.__dict__:
                default = cls.__dict__[name]
                cls._defaults[name] = (_New(types[name]) if default is PART else default)
                delattr(cls, name)

    def __init__(self, **values: Any) -> None:
        """Every field given or defaulted (a required one missing is a TypeError)."""
        unknown = set(values) - set(self._fields)
        if unknown:
            raise TypeError(f"{type(self).__name__} has no field {sorted(unknown)[0]!r}")
        for name in self._fields:
            if name in values:
                value = values[name]
            elif name in self._defaults:
                value = _made(self._defaults[name])
            else:
                raise TypeError(f"{type(self).__name__} needs {name!r}")
            object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is frozen")

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and all(
            getattr(self, n) == getattr(other, n) for n in self._fields)

    __hash__ = None  # type: ignore[assignment]  # as spec's models: they hold lists

    def __repr__(self) -> str:
        inner = ", ".join(f"{n}={getattr(self, n)!r}" for n in self._fields)
        return f"{type(self).__name__}({inner})"

    def changed(self) -> dict[str, Any]:
        """The fields that differ from their defaults (pydantic's exclude_defaults dump)."""
        found = {}
        for name in self._fields:
            value = getattr(self, name)
            if name not in self._defaults or value != _made(self._defaults[name]):
                found[name] = _dumped(value)
        return found


def _dumped(value: Any) -> Any:
    if isinstance(value, Part):
        return value.changed()
    if isinstance(value, list):
        return [_dumped(item) for item in value]
    if isinstance(value, dict):
        return {key: _dumped(item) for key, item in value.items()}
    return value


def _made(default: Any) -> Any:
    return default.make() if isinstance(default, _New) else default


class RoleSpec(Part):
    label: Text
    sector: str


class EligibilitySpec(Part):
    min_age_years: int | None = None
    max_age_years: int | None = None
    birth_date_required: bool = False


class FieldSpec(Part):
    type: Literal["bool", "int", "decimal", "text", "date", "enum"]
    label: Text | None = None
    description: str | None = None
    values: list[str] | None = None
    min: float | None = None
    max: float | None = None
    personal: bool = False


class CalendarSpec(Part):
    extra_closed_days: list[str] = LIST
    holiday_categories: list[Literal["public", "de_facto", "optional", "bank"]] = fresh(lambda: ["public"])
    saturday_is_working_day: bool = False
    roll_forward: bool = False
    closed_day: Literal["none", "warn", "roll_forward", "roll_back", "se_1930_173"] | None = None

    def policy(self) -> str:
        return self.closed_day or ("roll_forward" if self.roll_forward else "none")

    def rules(self) -> CalendarRules:
        policy = self.policy()
        categories = tuple(self.holiday_categories)
        if policy == "se_1930_173":  # the rule names its closed days itself
            categories = tuple(sorted({*categories, "public", "de_facto"}))
        return CalendarRules(tuple(self.extra_closed_days), categories,
                             self.saturday_is_working_day,
                             policy in ("roll_forward", "se_1930_173"), policy)


LegalStatus = Literal["law", "guideline", "local_agreement", "proposal"]


class EscalationSpec(Part):
    after: str
    to: list[str]
    at: str | None = None


class Happening(Part):
    events: list[str] = LIST
    enter: list[str] = LIST

    def markers(self) -> str:
        """How the deadline row records it (store: LIKE '%,event,%' closes it set-based)."""
        return "," + ",".join([*self.events, *(f"enter:{s}" for s in self.enter)]) + ","


class RepeatSpec(Part):
    every: str


class ExtendSpec(Part):
    by: str
    times: int = 1
    roles: list[str]


class PauseSpec(Part):
    roles: list[str]


class VariantSpec(Part):
    effective_from: str | None = None
    effective_until: str | None = None
    switch: str | None = None
    duration: str
    status: LegalStatus
    source: str


class DeadlineSpec(Part):
    _keys = {"counts_from": "from"}
    name: str
    duration: str
    counts_from: str = "state_entered"
    calendar: CalendarSpec = PART
    status: LegalStatus
    source: str
    responsible: str | None = None
    title: Text | None = None
    reminders: list[str] = LIST
    remind_at_due: bool = True
    due_time: str | None = None
    escalate: EscalationSpec | None = None
    on_timeout: str | None = None
    met_by: Happening | None = None
    cancelled_by: Happening | None = None
    opened_by: Happening | None = None
    not_before: str | None = None
    repeat: RepeatSpec | None = None
    extend: ExtendSpec | None = None
    pause: PauseSpec | None = None
    variants: list[VariantSpec] = LIST

    @property
    def obligation(self) -> bool:
        """Met by a happening, not by leaving its state."""
        return self.met_by is not None


class StateSpec(Part):
    initial: bool = False
    final: bool = False
    responsible: str | None = None
    title: Text | None = None
    description: Text | None = None
    deadlines: list[DeadlineSpec] = LIST


class StartSpec(Part):
    roles: list[str]
    requires: list[str] = LIST
    accepts: list[str] = LIST
    allow_parallel: bool = False


class TransitionSpec(Part):
    _keys = {"source": "from", "target": "to"}
    event: str
    source: str | list[str]
    target: str | None = None
    internal: bool = False
    roles: list[str] = LIST
    guard: str | None = None
    requires: list[str] = LIST
    accepts: list[str] = LIST
    title: Text | None = None

    @property
    def sources(self) -> tuple[str, ...]:
        return (self.source,) if isinstance(self.source, str) else tuple(self.source)

    def target_from(self, source: str) -> str:
        """Where it leads from `source` (an internal transition stays there)."""
        return source if self.target is None else self.target


class StatutoryBasisSpec(Part):
    reference: str
    roles: list[str]
    source: str | None = None


class SharingSpec(Part):
    consent: list[str] | None = None
    statutory: list[StatutoryBasisSpec] = LIST


class WhenSpec(Part):
    started: bool | None = None
    enter: str | None = None
    event: str | None = None
    deadline: str | None = None
    kind: Literal["reminder", "due", "escalation", "timeout"] | None = None


class NotificationSpec(Part):
    when: WhenSpec
    template: str
    to: list[str]


class HandoverWhen(Part):
    event: str | None = None
    enter: str | None = None

    @property
    def happening(self) -> str:
        return self.event if self.event is not None else f"enter:{self.enter}"


class HandoverReturn(Part):
    event: str
    fields: dict[str, str] = DICT


class HandoverSpec(Part):
    _keys = {"role": "as", "condition": "if"}
    name: str
    when: HandoverWhen
    start: str
    version: int | None = None
    role: str
    condition: str | None = None
    carry: dict[str, str] = DICT
    consents: list[str] = LIST
    returns: HandoverReturn | None = None
    on_end: Literal["continue", "cancel"] = "continue"


class PathwaySpec(Part):
    id: str
    version: int
    title: Text
    description: Text | None = None
    country: Literal["DK", "NO", "SE"]
    timezone: str
    languages: list[Lang]
    fallback_language: Lang
    sources: list[str] = LIST
    roles: dict[str, RoleSpec]
    eligibility: EligibilitySpec = PART
    fields: dict[str, FieldSpec] = DICT
    start: StartSpec
    states: dict[str, StateSpec]
    transitions: list[TransitionSpec]
    deadlines: list[DeadlineSpec] = LIST
    notifications: list[NotificationSpec] = LIST
    handovers: list[HandoverSpec] = LIST
    sharing: dict[str, SharingSpec] = DICT

    @property
    def initial_state(self) -> str:
        return next(name for name, s in self.states.items() if s.initial)

    def reading_order(self) -> list[str]:
        """The states as a reader follows them: from the initial one along the transitions
        in their order, the final ones last, then any not reached, by name. A definition read from its stored
        snapshot (JSON with sorted keys) has lost its file's order; drawings, pages and
        exports use this one, so a pathway looks the same however it was loaded."""
        order = [self.initial_state]
        seen = set(order)
        for name in order:  # grows while it is walked
            for t in self.transitions:
                if name in t.sources and t.target_from(name) not in seen:
                    seen.add(t.target_from(name))
                    order.append(t.target_from(name))
        ending = [name for name in order if self.states[name].final]  # drawn last
        return ([name for name in order if not self.states[name].final] + ending
                + sorted(set(self.states) - seen))

    @property
    def final_states(self) -> set[str]:
        return {name for name, s in self.states.items() if s.final}

    def all_deadlines(self) -> list[tuple[str | None, DeadlineSpec]]:
        """(state or None for pathway-wide, deadline) pairs."""
        pairs: list[tuple[str | None, DeadlineSpec]] = [(None, d) for d in self.deadlines]
        for name, state in self.states.items():
            pairs.extend((name, d) for d in state.deadlines)
        return pairs
