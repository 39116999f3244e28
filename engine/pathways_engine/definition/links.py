"""Handovers across definitions: what one pathway promises the pathway it starts.

Checked where all the definitions are known (`pathways check`, a registry loading its
folders): the pathway handed to exists (in the version named), the role that starts it may,
every field carried or returned exists on both sides with a type that fits, what the other
pathway's start requires is carried, and no chain of handovers comes back to where it began
(a pathway that starts itself again would never end).
"""

from __future__ import annotations

from collections.abc import Sequence

from pathways_engine.errors import Problem
from pathways_engine.errors import did_you_mean

from .loader import Definition
from .parts import FieldSpec
from .parts import HandoverSpec


def link_problems(definitions: Sequence[Definition],
                  known: Sequence[Definition] = ()) -> list[Problem]:
    """Problems in the handovers of `definitions`; `known` may add the pathways they name."""
    everyone = {d.key: d for d in [*known, *definitions]}
    out: list[Problem] = []
    for definition in definitions:
        for i, handover in enumerate(definition.spec.handovers):
            target = _target(everyone, handover)
            loc = ("handovers", i)
            if target is None:
                ids = sorted({key[0] for key in everyone})
                wanted = handover.start + (f" version {handover.version}" if handover.version
                                           else "")
                out.append(Problem(definition.path, definition.line_of(*loc, "start"),
                                   f"handover {handover.name!r}: no pathway {wanted}"
                                   f"{did_you_mean(handover.start, ids)}; known: "
                                   f"{', '.join(ids) or '(none)'}"))
                continue
            out.extend(_fits(definition, loc, handover, target))
    out.extend(_cycles(list(everyone.values()), {d.key for d in definitions}))
    return out


def _target(everyone: dict[tuple[str, int], Definition],
            handover: HandoverSpec) -> Definition | None:
    versions = sorted(v for (pid, v) in everyone if pid == handover.start)
    if not versions:
        return None
    version = handover.version or versions[-1]
    return everyone.get((handover.start, version))


def _fits(definition: Definition, loc: tuple[str | int, ...], handover: HandoverSpec,
          target: Definition) -> list[Problem]:
    here, there, out = definition.spec, target.spec, list[Problem]()

    def problem(where: tuple[str | int, ...], message: str) -> None:
        out.append(Problem(definition.path, definition.line_of(*loc, *where),
                           f"handover {handover.name!r} to {there.id!r}: {message}"))

    if handover.role not in there.start.roles:
        problem(("as",), f"role {handover.role!r} may not start it; its start roles: "
                         f"{', '.join(there.start.roles)}")
    for theirs, ours in handover.carry.items():
        if theirs not in there.fields:
            problem(("carry", theirs), f"it has no field {theirs!r}"
                                       f"{did_you_mean(theirs, there.fields)}")
        elif ours in here.fields and (why := _misfit(here.fields[ours], there.fields[theirs])):
            problem(("carry", theirs), f"{ours!r} cannot fill {theirs!r}: {why}")
        elif theirs not in (*there.start.requires, *there.start.accepts):
            problem(("carry", theirs), f"its start does not take {theirs!r} (start.requires "
                                       "or start.accepts)")
    missing = [name for name in there.start.requires if name not in handover.carry]
    if missing:
        problem(("carry",), f"its start requires {', '.join(missing)}: carry them")
    if handover.returns is not None:
        for ours, theirs in handover.returns.fields.items():
            if theirs not in there.fields:
                problem(("returns", "fields", ours), f"it has no field {theirs!r}"
                                                     f"{did_you_mean(theirs, there.fields)}")
            elif ours in here.fields and (
                    why := _misfit(there.fields[theirs], here.fields[ours])):
                problem(("returns", "fields", ours), f"{theirs!r} cannot fill {ours!r}: {why}")
    return out


def _misfit(source: FieldSpec, target: FieldSpec) -> str | None:
    """Why a value of `source` may not fit `target`, or None if every value does."""
    if source.type != target.type:
        return f"a {source.type} is not a {target.type}"
    if source.type == "enum":
        extra = sorted(set(source.values or []) - set(target.values or []))
        if extra:
            return f"values {', '.join(extra)} are not among {', '.join(target.values or [])}"
    if source.type in ("int", "decimal"):
        low = target.min is not None and (source.min is None or source.min < target.min)
        high = target.max is not None and (source.max is None or source.max > target.max)
        if low or high:
            return "its range is wider"
    if source.personal and not target.personal:
        return "it is personal data there but not here (mark it personal: true)"
    return None


def _cycles(definitions: list[Definition], mine: set[tuple[str, int]]) -> list[Problem]:
    """Every chain of handovers that leads back to a pathway already on it."""
    by_id: dict[str, list[Definition]] = {}
    for definition in definitions:
        by_id.setdefault(definition.spec.id, []).append(definition)
    edges = {d.spec.id: sorted({h.start for h in d.spec.handovers}) for d in definitions}
    out: list[Problem] = []
    reported: set[frozenset[str]] = set()
    for definition in definitions:
        if definition.key not in mine:
            continue
        start = definition.spec.id
        path = _path_back(start, edges)
        if path is None or frozenset(path) in reported:
            continue
        reported.add(frozenset(path))
        index = next(i for i, h in enumerate(definition.spec.handovers) if h.start == path[1])
        out.append(Problem(definition.path, definition.line_of("handovers", index, "start"),
                           f"handovers form a cycle: {' -> '.join(path)}; each pathway would "
                           "start the next again without end"))
    return out


def _path_back(start: str, edges: dict[str, list[str]]) -> list[str] | None:
    stack: list[tuple[str, list[str]]] = [(start, [start])]
    seen: set[str] = set()
    while stack:
        node, path = stack.pop()
        for nxt in edges.get(node, []):
            if nxt == start:
                return [*path, nxt]
            if nxt not in seen:
                seen.add(nxt)
                stack.append((nxt, [*path, nxt]))
    return None
