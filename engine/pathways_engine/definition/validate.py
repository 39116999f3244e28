"""Whole-definition checks, reported all at once: references, guards, and the graph.

A pathway that can strand a child (a state nobody can leave, a state from which no final
state can be reached, a step nobody can reach) is rejected before anyone is enrolled.
"""

from __future__ import annotations

from collections import defaultdict
from collections import deque

from pathways_engine.errors import Problem
from pathways_engine.errors import did_you_mean
from pathways_engine.rules.calendars import supported_categories
from pathways_engine.rules.calendars import unsupported_categories
from pathways_engine.rules.durations import parse_duration
from pathways_engine.rules.expressions import ExpressionError
from pathways_engine.rules.expressions import compile_condition

from .loader import Definition
from .parts import DeadlineSpec
from .parts import HandoverSpec
from .parts import Happening


def field_types(definition: Definition) -> dict[str, str]:
    return {name: f.type for name, f in definition.spec.fields.items()}


def enum_values(definition: Definition) -> dict[str, list[str]]:
    return {n: list(f.values or []) for n, f in definition.spec.fields.items()}


def problems(definition: Definition) -> list[Problem]:
    """Every problem in a schema-valid definition; empty when it may go live."""
    found: list[Problem] = []
    checks = (_states, _roles_and_fields, _transitions, _graph, _deadlines, _notifications,
              _sharing, _handovers)
    for check in checks:
        found.extend(check(definition))
    return found


def _p(d: Definition, loc: tuple[str | int, ...], message: str) -> Problem:
    return Problem(d.path, d.line_of(*loc), message)


def _unknown(kind: str, name: str, known: list[str]) -> str:
    return f"unknown {kind} {name!r}{did_you_mean(name, known)}; known: {', '.join(sorted(known))}"


def _states(d: Definition) -> list[Problem]:
    spec, out = d.spec, []
    initial = [n for n, s in spec.states.items() if s.initial]
    if len(initial) != 1:
        out.append(_p(d, ("states",), f"exactly one state must be initial, found {len(initial)}"))
    if not spec.final_states:
        out.append(_p(d, ("states",), "at least one state must be final"))
    for name, state in spec.states.items():
        if state.initial and state.final:
            out.append(_p(d, ("states", name), f"state {name!r} cannot be both initial and final"))
    if spec.fallback_language not in spec.languages:
        out.append(_p(d, ("fallback_language",), "fallback_language must be one of languages"))
    return out


def _roles_and_fields(d: Definition) -> list[Problem]:
    spec, out = d.spec, []
    roles, fields = list(spec.roles), list(spec.fields)
    for name, state in spec.states.items():
        if state.responsible and state.responsible not in spec.roles:
            out.append(_p(d, ("states", name, "responsible"), _unknown("role", state.responsible, roles)))
    for i, role in enumerate(spec.start.roles):
        if role not in spec.roles:
            out.append(_p(d, ("start", "roles", i), _unknown("role", role, roles)))
    for key in ("requires", "accepts"):
        for i, name in enumerate(getattr(spec.start, key)):
            if name not in spec.fields:
                out.append(_p(d, ("start", key, i), _unknown("field", name, fields)))
    e = spec.eligibility
    if e.min_age_years is not None and e.max_age_years is not None and e.min_age_years > e.max_age_years:
        out.append(_p(d, ("eligibility",), "min_age_years is larger than max_age_years"))
    return out


def _transitions(d: Definition) -> list[Problem]:
    spec, out = d.spec, []
    states, roles, fields = list(spec.states), list(spec.roles), list(spec.fields)
    types, enums = field_types(d), enum_values(d)
    seen: dict[tuple[str, str], list[tuple[int, str | None]]] = defaultdict(list)
    for i, t in enumerate(spec.transitions):
        loc = ("transitions", i)
        for j, source in enumerate(t.sources):
            where = (*loc, "from", j) if not isinstance(t.source, str) else (*loc, "from")
            if source not in spec.states:
                out.append(_p(d, where, _unknown("state", source, states)))
            elif spec.states[source].final:
                out.append(_p(d, where, f"final state {source!r} cannot have outgoing transitions"))
            seen[(source, t.event)].append((i, t.guard))
        if t.target is not None and t.target not in spec.states:
            out.append(_p(d, (*loc, "to"), _unknown("state", t.target, states)))
        for j, role in enumerate(t.roles):
            if role not in spec.roles:
                out.append(_p(d, (*loc, "roles", j), _unknown("role", role, roles)))
        for key in ("requires", "accepts"):
            for j, name in enumerate(getattr(t, key)):
                if name not in spec.fields:
                    out.append(_p(d, (*loc, key, j), _unknown("field", name, fields)))
        if t.guard is not None:
            try:
                compile_condition(t.guard, types, enums)
            except ExpressionError as exc:
                out.append(_p(d, (*loc, "guard"), str(exc)))
    for (source, event), candidates in seen.items():
        unguarded = [i for i, guard in candidates if guard is None]
        guards = [guard for _, guard in candidates if guard is not None]
        if len(unguarded) > 1 or len(guards) != len(set(guards)):
            i = candidates[1][0]
            out.append(_p(d, ("transitions", i),
                          f"ambiguous: event {event!r} from {source!r} has more than one "
                          "transition that can apply at once (give them different guards)"))
        elif unguarded and unguarded[0] != candidates[-1][0]:
            i = candidates[-1][0]
            out.append(_p(d, ("transitions", i),
                          f"unreachable transition: an earlier transition for {event!r} from "
                          f"{source!r} has no guard and always wins"))
    return out


def _edges(d: Definition) -> dict[str, set[str]]:
    edges: dict[str, set[str]] = defaultdict(set)
    for t in d.spec.transitions:
        for source in t.sources:
            edges[source].add(t.target_from(source))
    return edges


def _graph(d: Definition) -> list[Problem]:
    spec, out = d.spec, list[Problem]()
    if not any(s.initial for s in spec.states.values()):
        return out
    edges = _edges(d)
    reachable = _closure({spec.initial_state}, edges)
    reverse: dict[str, set[str]] = defaultdict(set)
    for source, targets in edges.items():
        for target in targets:
            reverse[target].add(source)
    can_finish = _closure(set(spec.final_states), reverse)
    for name, state in spec.states.items():
        loc = ("states", name)
        if name not in reachable:
            out.append(_p(d, loc, f"state {name!r} is unreachable from the initial state"))
        if not state.final and not edges.get(name):
            out.append(_p(d, loc, f"state {name!r} is not final but has no way out"))
        elif not state.final and name not in can_finish:
            out.append(_p(d, loc, f"state {name!r} has no path to a final state"))
    return out


def _closure(start: set[str], edges: dict[str, set[str]]) -> set[str]:
    seen, queue = set(start), deque(start)
    while queue:
        for nxt in edges.get(queue.popleft(), ()):
            if nxt not in seen:
                seen.add(nxt)
                queue.append(nxt)
    return seen


def _happening_problems(d: Definition, loc: tuple[str | int, ...], key: str,
                        rule: Happening | None) -> list[Problem]:
    if rule is None:
        return []
    spec, out = d.spec, []
    events = sorted({t.event for t in spec.transitions})
    for i, event in enumerate(rule.events):
        if event not in events:
            out.append(_p(d, (*loc, key, "events", i), _unknown("event", event, events)))
    for i, state in enumerate(rule.enter):
        if state not in spec.states:
            out.append(_p(d, (*loc, key, "enter", i), _unknown("state", state, list(spec.states))))
    return out


def _clock_problems(d: Definition, loc: tuple[str | int, ...],
                    deadline: DeadlineSpec) -> list[Problem]:
    spec, out = d.spec, []
    roles = list(spec.roles)
    unit = parse_duration(deadline.duration, allow_zero=True).unit
    for key, rule in (("extend", deadline.extend), ("pause", deadline.pause)):
        for j, role in enumerate(rule.roles if rule else []):
            if role not in spec.roles:
                out.append(_p(d, (*loc, key, "roles", j), _unknown("role", role, roles)))
    if deadline.repeat and not deadline.met_by:
        out.append(_p(d, (*loc, "repeat"), "a repeating deadline needs `met_by:` (what meets "
                                            "each occurrence, so the next one opens)"))
    if deadline.due_time and unit in ("hours", "minutes"):
        out.append(_p(d, (*loc, "due_time"), f"due_time needs a deadline in days, weeks, "
                                              f"months or working days, not {unit}"))
    if deadline.escalate and deadline.escalate.at and \
            parse_duration(deadline.escalate.after).unit in ("hours", "minutes"):
        out.append(_p(d, (*loc, "escalate", "at"), "escalate.at needs `after` in days or "
                                                    "working days"))
    if deadline.not_before:
        window, length = parse_duration(deadline.not_before), parse_duration(
            deadline.duration, allow_zero=True)
        if window.unit == length.unit and window.amount >= length.amount:
            out.append(_p(d, (*loc, "not_before"), f"the window opens ({deadline.not_before}) "
                                                    f"no earlier than it closes ({deadline.duration})"))
    for i, variant in enumerate(deadline.variants):
        if variant.effective_from and variant.effective_until and \
                variant.effective_from > variant.effective_until:
            out.append(_p(d, (*loc, "variants", i), "effective_from is after effective_until"))
    calendar = deadline.calendar
    if calendar.roll_forward and calendar.closed_day is not None:
        out.append(_p(d, (*loc, "calendar"), "give closed_day or the old roll_forward, not both"))
    elif calendar.roll_forward:
        out.append(Problem(d.path, d.line_of(*loc, "calendar", "roll_forward"),
                           "calendar.roll_forward is deprecated: write closed_day: roll_forward "
                           "(or se_1930_173, which also closes Sweden's de facto holidays)",
                           warning=True))
    return out


def _deadline_problems(d: Definition, loc: tuple[str | int, ...], deadline: DeadlineSpec,
                       events_here: set[str]) -> list[Problem]:
    spec, out = d.spec, list[Problem]()
    roles = list(spec.roles)
    for key in ("met_by", "cancelled_by", "opened_by"):
        out.extend(_happening_problems(d, loc, key, getattr(deadline, key)))
    out.extend(_clock_problems(d, loc, deadline))
    missing = unsupported_categories(spec.country, deadline.calendar.holiday_categories)
    if missing:
        out.append(_p(d, (*loc, "calendar", "holiday_categories"),
                      f"the {spec.country} holiday calendar has no {', '.join(map(repr, missing))} "
                      f"days; it has: {', '.join(supported_categories(spec.country))}"))
    if deadline.counts_from.startswith("field:"):
        name = deadline.counts_from.removeprefix("field:")
        field = spec.fields.get(name)
        if field is None:
            out.append(_p(d, (*loc, "from"), _unknown("field", name, list(spec.fields))))
        elif field.type != "date":
            out.append(_p(d, (*loc, "from"), f"field {name!r} is a {field.type}, not a date"))
    if deadline.responsible and deadline.responsible not in spec.roles:
        out.append(_p(d, (*loc, "responsible"), _unknown("role", deadline.responsible, roles)))
    if deadline.escalate:
        for j, role in enumerate(deadline.escalate.to):
            if role not in spec.roles:
                out.append(_p(d, (*loc, "escalate", "to", j), _unknown("role", role, roles)))
    if deadline.on_timeout and deadline.on_timeout not in events_here:
        out.append(_p(d, (*loc, "on_timeout"),
                      f"on_timeout event {deadline.on_timeout!r} cannot be sent from here; "
                      f"events here: {', '.join(sorted(events_here)) or '(none)'}"))
    return out


def _deadlines(d: Definition) -> list[Problem]:
    spec, out = d.spec, []
    all_events = {t.event for t in spec.transitions}
    names: dict[str, int] = {}
    for i, deadline in enumerate(spec.deadlines):
        loc: tuple[str | int, ...] = ("deadlines", i)
        out.extend(_deadline_problems(d, loc, deadline, all_events))
        if deadline.name in names:
            out.append(_p(d, (*loc, "name"), f"deadline name {deadline.name!r} is used twice"))
        names[deadline.name] = i
        field = deadline.counts_from.removeprefix("field:")
        if deadline.counts_from.startswith("field:") and not deadline.opened_by and \
                field not in spec.start.requires:
            out.append(_p(d, (*loc, "from"), f"whole-pathway deadline {deadline.name!r} counts "
                                             f"from field {field!r}, which the start does not "
                                             "require: add it to start.requires, or open the "
                                             "deadline later with opened_by"))
    for state_name, state in spec.states.items():
        events_here = {t.event for t in spec.transitions if state_name in t.sources}
        for i, deadline in enumerate(state.deadlines):
            state_loc: tuple[str | int, ...] = ("states", state_name, "deadlines", i)
            out.extend(_deadline_problems(d, state_loc, deadline, events_here))
            if deadline.name in names:
                out.append(_p(d, (*state_loc, "name"),
                              f"deadline name {deadline.name!r} is used twice"))
            names[deadline.name] = i
            if deadline.opened_by:
                out.append(_p(d, (*state_loc, "opened_by"), "opened_by is for whole-pathway "
                                                            "deadlines; a state's open on entering it"))
            out.extend(_met_by_leaving(d, state_loc, state_name, deadline))
        if state.final and state.deadlines:
            out.append(_p(d, ("states", state_name, "deadlines"), "a final state has no deadlines"))
    return out


def _met_by_leaving(d: Definition, loc: tuple[str | int, ...], state: str,
                    deadline: DeadlineSpec) -> list[Problem]:
    """A legal deadline that leaving its state for a working state records as met."""
    if deadline.obligation or deadline.status not in ("law", "guideline"):
        return []
    onward = sorted({t.target for t in d.spec.transitions if state in t.sources
                     and t.target is not None and t.target in d.spec.states
                     and not d.spec.states[t.target].final and t.target != state
                     and deadline.on_timeout != t.event})
    if not onward:
        return []
    return [Problem(d.path, d.line_of(*loc, "name"),
                    f"{deadline.status} deadline {deadline.name!r} is recorded met whenever "
                    f"{state!r} is left for {', '.join(map(repr, onward))}; if the rule asks "
                    "for an act, say which with met_by (then leaving does not meet it)",
                    warning=True)]


def _notifications(d: Definition) -> list[Problem]:
    spec, out = d.spec, []
    events = {t.event for t in spec.transitions}
    deadlines = {dl.name for _, dl in spec.all_deadlines()}
    for i, note in enumerate(spec.notifications):
        loc = ("notifications", i)
        when = note.when
        if when.enter and when.enter not in spec.states:
            out.append(_p(d, (*loc, "when", "enter"), _unknown("state", when.enter, list(spec.states))))
        if when.event and when.event not in events:
            out.append(_p(d, (*loc, "when", "event"), _unknown("event", when.event, list(events))))
        if when.deadline and when.deadline not in deadlines:
            out.append(_p(d, (*loc, "when", "deadline"),
                          _unknown("deadline", when.deadline, list(deadlines))))
        for j, role in enumerate(note.to):
            if role not in spec.roles:
                out.append(_p(d, (*loc, "to", j), _unknown("role", role, list(spec.roles))))
    out.extend(_silent_escalations(d))
    return out


def _silent_escalations(d: Definition) -> list[Problem]:
    """An escalation nobody hears about is a deadline that fails quietly: refuse it."""
    spec, out = d.spec, []
    escalated = {n.when.deadline for n in spec.notifications
                 if n.when.deadline and n.when.kind in (None, "escalation")}
    for state, deadline in spec.all_deadlines():
        if deadline.escalate and deadline.name not in escalated:
            loc: tuple[str | int, ...] = (("states", state, "deadlines") if state else
                                          ("deadlines",))
            index = [x.name for x in (spec.states[state].deadlines if state else
                                      spec.deadlines)].index(deadline.name)
            out.append(_p(d, (*loc, index, "escalate"),
                          f"deadline {deadline.name!r} escalates to "
                          f"{', '.join(deadline.escalate.to)}, but no notification is declared "
                          f"for it: add when: {{deadline: {deadline.name}, kind: escalation}}"))
    return out


def _sharing(d: Definition) -> list[Problem]:
    spec, out = d.spec, []
    sectors = sorted({r.sector for r in spec.roles.values()})
    roles = list(spec.roles)
    for sector, rules in spec.sharing.items():
        loc: tuple[str | int, ...] = ("sharing", sector)
        if sector not in sectors:
            out.append(_p(d, loc, f"{_unknown('sector', sector, sectors)} (the sectors of the "
                                  "pathway's roles)"))
        for j, role in enumerate(rules.consent or []):
            if role not in spec.roles:
                out.append(_p(d, (*loc, "consent", j), _unknown("role", role, roles)))
        references = [basis.reference for basis in rules.statutory]
        for i, basis in enumerate(rules.statutory):
            if references.count(basis.reference) > 1:
                out.append(_p(d, (*loc, "statutory", i, "reference"),
                              f"statutory basis {basis.reference!r} is listed twice"))
            for j, role in enumerate(basis.roles):
                if role not in spec.roles:
                    out.append(_p(d, (*loc, "statutory", i, "roles", j),
                                  _unknown("role", role, roles)))
    return out


def _handovers(d: Definition) -> list[Problem]:
    """What one definition can tell about its handovers; links.py checks the other side."""
    spec, out = d.spec, list[Problem]()
    events = sorted({t.event for t in spec.transitions})
    fields, states = list(spec.fields), list(spec.states)
    sectors = sorted({r.sector for r in spec.roles.values()})
    seen: set[str] = set()
    for i, handover in enumerate(spec.handovers):
        loc: tuple[str | int, ...] = ("handovers", i)
        if handover.name in seen:
            out.append(_p(d, (*loc, "name"), f"handover name {handover.name!r} is used twice"))
        seen.add(handover.name)
        when = handover.when
        if when.event is not None and when.event not in events:
            out.append(_p(d, (*loc, "when", "event"), _unknown("event", when.event, events)))
        if when.enter is not None and when.enter not in spec.states:
            out.append(_p(d, (*loc, "when", "enter"), _unknown("state", when.enter, states)))
        for target, source in handover.carry.items():
            if source not in spec.fields:
                out.append(_p(d, (*loc, "carry", target), _unknown("field", source, fields)))
        if handover.condition is not None:
            try:
                compile_condition(handover.condition, field_types(d), enum_values(d))
            except ExpressionError as exc:
                out.append(_p(d, (*loc, "if"), str(exc)))
        for j, sector in enumerate(handover.consents):
            if sector not in sectors:
                out.append(_p(d, (*loc, "consents", j), _unknown("sector", sector, sectors)))
        if handover.returns is not None:
            out.extend(_return_problems(d, loc, handover))
    return out


def _return_problems(d: Definition, loc: tuple[str | int, ...],
                     handover: HandoverSpec) -> list[Problem]:
    """A waiting pathway must be able to take the answer in every state it waits in."""
    spec, out = d.spec, list[Problem]()
    back = handover.returns
    assert back is not None
    fields = list(spec.fields)
    for name in back.fields:
        if name not in spec.fields:
            out.append(_p(d, (*loc, "returns", "fields", name), _unknown("field", name, fields)))
    when = handover.when
    waiting = ({when.enter} if when.enter else
               {t.target_from(source) for t in spec.transitions if t.event == when.event
                for source in t.sources})
    answers = [t for t in spec.transitions if t.event == back.event]
    for state in sorted(w for w in waiting if w in spec.states):
        if spec.states[state].final:
            out.append(_p(d, (*loc, "returns"), f"the handover waits for {back.event!r} in "
                          f"final state {state!r}; a finished pathway cannot wait: leave out "
                          "returns, or hand over from a working state"))
        elif not any(state in t.sources for t in answers):
            out.append(_p(d, (*loc, "returns", "event"),
                          f"the pathway waits for {back.event!r} in {state!r}, but no "
                          f"transition for {back.event!r} leaves {state!r}"))
    for t in answers:
        taken = set(t.requires) | set(t.accepts)
        missing = sorted(set(back.fields) - taken)
        if missing:
            index = spec.transitions.index(t)
            out.append(_p(d, ("transitions", index), f"transition {back.event!r} must accept "
                          f"the fields handover {handover.name!r} returns: "
                          f"{', '.join(missing)} (add them to accepts)"))
    return out
