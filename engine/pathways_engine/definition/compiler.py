"""Definition -> python-statemachine `StateChart` class, built once per content hash.

Classes are cached because building one costs milliseconds and python-statemachine keeps
every class it builds in a global registry (libraries.md A1.6). Compiled machines raise on
unknown events and on failing actions (`allow_event_without_transition=False`,
`catch_errors_as_events=False`), so a half-done step rolls back instead of being persisted.

The machine is bound to a small `_Slot` model rather than the ORM row, so a definition can
never write to instance columns (libraries.md A5, last line).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from functools import cached_property
from typing import TYPE_CHECKING
from typing import Any

from pathways_engine.errors import DefinitionError
from pathways_engine.errors import Problem
from pathways_engine.rules.expressions import Condition
from pathways_engine.rules.expressions import compile_condition

from .loader import Definition
from .parts import TransitionSpec
from .validate import enum_values
from .validate import field_types
from .validate import problems

if TYPE_CHECKING:
    from statemachine import StateChart


@cache
def _reserved() -> frozenset[str]:
    from statemachine import StateChart

    return frozenset({n for n in dir(StateChart) if not n.startswith("_")} | {
        "model", "state", "state_field", "start_value", "listeners", "initial", "final",
    })


class _Slot:
    """The model a machine reads and writes its state on; it also records what fired."""

    __slots__ = ("fired", "state")

    def __init__(self, state: str) -> None:
        self.state: str = state
        self.fired: int | None = None


@dataclass(frozen=True)
class Fired:
    """The outcome of one event: which transition ran and where it left the instance."""

    transition: TransitionSpec
    index: int
    source: str
    target: str


class CompiledPathway:
    """A definition together with its machine class and compiled guard conditions."""

    def __init__(self, definition: Definition) -> None:
        self.definition = definition
        self.spec = definition.spec
        types, enums = field_types(definition), enum_values(definition)
        self.conditions: dict[int, Condition] = {
            i: compile_condition(t.guard, types, enums)
            for i, t in enumerate(self.spec.transitions)
            if t.guard is not None
        }
        self.events = {t.event for t in self.spec.transitions}
        self._by_state: dict[str, list[int]] = {}
        for i, t in enumerate(self.spec.transitions):
            for source in t.sources:
                self._by_state.setdefault(source, []).append(i)
        self.deadline_specs = {(state, d.name): d for state, d in self.spec.all_deadlines()}
        self.notifications_for: dict[tuple[str, str], list[tuple[int, Any]]] = {}
        for index, note in enumerate(self.spec.notifications):
            when = note.when
            key = (("started", self.spec.id) if when.started else ("enter", when.enter)
                   if when.enter else ("event", when.event) if when.event
                   else (when.kind or "due", when.deadline))
            self.notifications_for.setdefault((str(key[0]), str(key[1])), []).append(
                (index, note))
        # what each happening ("event" or "enter:state") meets, cancels and opens
        self.meets: dict[str, list[str]] = {}
        self.cancels: dict[str, list[str]] = {}
        self.opens: dict[str, list[Any]] = {}
        for _, deadline in self.spec.all_deadlines():
            for happening in _happenings(deadline.met_by):
                self.meets.setdefault(happening, []).append(deadline.name)
            for happening in _happenings(deadline.cancelled_by):
                self.cancels.setdefault(happening, []).append(deadline.name)
        for deadline in self.spec.deadlines:
            for happening in _happenings(deadline.opened_by):
                self.opens.setdefault(happening, []).append(deadline)
        self.handovers: dict[str, list[Any]] = {}
        for handover in self.spec.handovers:
            self.handovers.setdefault(handover.when.happening, []).append(handover)
        self.cancels_children = any(h.on_end == "cancel" for h in self.spec.handovers)
        # repeats, extensions and pauses work on the rows themselves, and an obligation in a
        # state that can be entered again must be seen not to open twice: steps read them
        self.needs_rows = any(d.repeat or d.extend or d.pause
                              for _, d in self.spec.all_deadlines()) or any(
            self._may_still_run_on_return(name, d)
            for name, state in self.spec.states.items() for d in state.deadlines
            if d.obligation)
        self._local = threading.local()
        self._building = threading.Lock()

    def _may_still_run_on_return(self, state: str, deadline: Any) -> bool:
        """Can the pathway come back to `state` with this obligation still open? Only along
        transitions that neither meet nor cancel it (internal ones are ignored: leaving it
        open is the cautious reading)."""
        closing = set(_happenings(deadline.met_by)) | set(_happenings(deadline.cancelled_by))
        edges: dict[str, set[str]] = {}
        for t in self.spec.transitions:
            for source in t.sources:
                target = t.target_from(source)
                if t.internal or t.event in closing or f"enter:{target}" in closing:
                    continue
                edges.setdefault(source, set()).add(target)
        seen, todo = set(), list(edges.get(state, ()))
        while todo:
            current = todo.pop()
            if current == state:
                return True
            if current not in seen:
                seen.add(current)
                todo.extend(edges.get(current, ()))
        return False

    @cached_property
    def machine_class(self) -> type[StateChart]:  # type: ignore[type-arg]
        """Built on first use: `show` and `check` read the spec and never need the class."""
        with self._building:
            return self._build()

    def _guard(self, index: int) -> Callable[..., bool]:
        condition = self.conditions[index]

        def guard(*_args: Any, values: Mapping[str, Any], **_kwargs: Any) -> bool:
            return condition(values)

        guard.__name__ = condition.text
        return guard

    def _mark(self, index: int) -> Callable[..., None]:
        def mark(*_args: Any, model: _Slot, **_kwargs: Any) -> None:
            model.fired = index

        mark.__name__ = f"transition_{index}"
        return mark

    def _build(self) -> type[StateChart]:  # type: ignore[type-arg]
        """The class as python-statemachine's own declarations make one (State, `.to()`, the
        class statement's metaclass): what its dict adapter in `statemachine.io` does for
        this flat case, without importing that package's document loaders (~20 ms a CLI
        command)."""
        import types

        from statemachine import State
        from statemachine import StateChart

        states: dict[str, State] = {}
        for name in self.spec.reading_order():  # a drawing follows the class's order
            state = self.spec.states[name]
            title = state.title or {}
            states[name] = State(name=title.get("en") or next(iter(title.values()), name),
                                 initial=state.initial, final=state.final)
        events: dict[str, Any] = {}
        for i, t in enumerate(self.spec.transitions):
            for source in t.sources:
                target = t.target_from(source)
                transition = states[source].to(
                    states[target] if target else None, event=t.event, internal=t.internal,
                    cond=[self._guard(i)] if i in self.conditions else None,
                    on=[self._mark(i)])
                events[t.event] = events[t.event] | transition if t.event in events \
                    else transition
        body = {"__module__": __name__, "allow_event_without_transition": False,
                "catch_errors_as_events": False, **states, **events}
        name = f"{_camel(self.spec.id)}V{self.spec.version}_{self.definition.content_hash[:12]}"
        return types.new_class(name, (StateChart,), exec_body=lambda ns: ns.update(body))

    def transitions_from(self, state: str) -> list[tuple[int, TransitionSpec]]:
        return [(i, self.spec.transitions[i]) for i in self._by_state.get(state, [])]

    def _machine(self) -> tuple[StateChart, _Slot]:  # type: ignore[type-arg]
        """This thread's machine and slot: instantiating costs ~0.4 ms, reusing ~0.1 ms.

        python-statemachine reads the configuration from the model on every event, so setting
        the slot's state is all it takes to run the machine for another instance.
        """
        pair = getattr(self._local, "pair", None)
        if pair is None:
            slot = _Slot(self.spec.initial_state)
            pair = (self.machine_class(model=slot, state_field="state"), slot)
            self._local.pair = pair
        return pair

    def fire(self, state: str, event: str, values: Mapping[str, Any]) -> Fired | None:
        """Run `event` through the machine from `state`; None if no guard let it through."""
        from statemachine.exceptions import TransitionNotAllowed

        machine, slot = self._machine()
        slot.state, slot.fired = state, None
        try:
            machine.send(event, values=values)
        except TransitionNotAllowed:
            return None
        except BaseException:
            self._local.pair = None  # never reuse a machine an error left halfway
            raise
        if self.spec.states[slot.state].final:
            self._local.pair = None  # a machine that reached a final state has terminated
        if slot.fired is None:  # pragma: no cover - every transition carries its mark
            return None
        return Fired(self.spec.transitions[slot.fired], slot.fired, state, slot.state)

    def guard_passes(self, index: int, values: Mapping[str, Any]) -> bool:
        condition = self.conditions.get(index)
        return condition is None or condition(values)


def _happenings(rule: Any) -> list[str]:
    if rule is None:
        return []
    return [*rule.events, *(f"enter:{state}" for state in rule.enter)]


def _camel(text: str) -> str:
    return "".join(part.capitalize() for part in text.split("_"))


def reserved_name_problems(definition: Definition) -> list[Problem]:
    out = []
    for name in definition.spec.states:
        if name in _reserved():
            out.append(Problem(definition.path, definition.line_of("states", name),
                               f"state name {name!r} is reserved by the engine; choose another"))
    states = set(definition.spec.states)
    for i, t in enumerate(definition.spec.transitions):
        if t.event in states:
            out.append(Problem(definition.path, definition.line_of("transitions", i, "event"),
                               f"event {t.event!r} has the name of a state; events and states "
                               "share one namespace in the machine, rename one of them"))
        if t.event in _reserved():
            out.append(Problem(definition.path, definition.line_of("transitions", i, "event"),
                               f"event name {t.event!r} is reserved by the engine; choose another"))
    return out


def check(definition: Definition) -> list[Problem]:
    """Every problem `compile` would refuse, without building anything."""
    return problems(definition) + reserved_name_problems(definition)


_cache: dict[str, CompiledPathway] = {}
_lock = threading.Lock()


def cached(content_hash: str) -> CompiledPathway | None:
    """The compiled definition with this content hash, if this process has built it."""
    return _cache.get(content_hash)


def compile_definition(definition: Definition, *, checked: bool = False) -> CompiledPathway:
    """Compile (or fetch from the cache) a definition; raise DefinitionError if invalid.

    `checked=True` is for a stored snapshot, which passed every check when its first instance
    started: a running instance keeps working even if a later release adds a rule.
    """
    with _lock:
        cached = _cache.get(definition.content_hash)
        if cached is not None:
            return cached
        found = [] if checked else [p for p in check(definition) if not p.warning]
        if found:
            raise DefinitionError(found)
        compiled = CompiledPathway(definition)
        _cache[definition.content_hash] = compiled
        return compiled
