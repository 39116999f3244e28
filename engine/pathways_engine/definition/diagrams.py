"""Diagrams of a compiled pathway: python-statemachine draws the class, we annotate it.

The machine class gives the states and transitions (with guards); the definition adds what a
coordinator needs to see on paper: who is responsible in each state and its deadlines, with
their legal status. Mermaid needs nothing installed; DOT needs pydot; SVG needs Graphviz's
`dot` program.
"""

from __future__ import annotations

import re
import shutil
from typing import Any

from pathways_engine.errors import InvalidArgument
from pathways_engine.errors import MissingExtra
from pathways_engine.rules.durations import parse_duration

from .compiler import CompiledPathway
from .parts import DeadlineSpec
from .parts import HandoverSpec
from .parts import Happening
from .parts import PathwaySpec

FORMATS = ("mermaid", "dot", "svg")


def _happening(rule: Happening) -> str:
    return "/".join([*rule.events, *(f"entering {state}" for state in rule.enter)])


def _deadline_line(deadline: DeadlineSpec) -> str:
    """One line a coordinator can check against the source: length, origin, rule, and how
    it is met, windowed, repeated, extended, paused, moved off closed days, or replaced."""
    origin = "" if deadline.counts_from == "state_entered" else f" from {deadline.counts_from}"
    parts = [f"{deadline.name}: {parse_duration(deadline.duration, allow_zero=True)}{origin} "
             f"({deadline.status})"]
    if deadline.opened_by:
        parts.append(f"opens on {_happening(deadline.opened_by)}")
    if deadline.not_before:
        parts.append(f"not before {parse_duration(deadline.not_before)}")
    if deadline.due_time:
        parts.append(f"due at {deadline.due_time}")
    if deadline.met_by:
        parts.append(f"met by {_happening(deadline.met_by)}")
    if deadline.cancelled_by:
        parts.append(f"cancelled by {_happening(deadline.cancelled_by)}")
    if deadline.repeat:
        parts.append(f"then every {parse_duration(deadline.repeat.every)}")
    if deadline.extend:
        parts.append(f"extendable {deadline.extend.times}x by "
                     f"{parse_duration(deadline.extend.by)} ({', '.join(deadline.extend.roles)})")
    if deadline.pause:
        parts.append(f"pausable ({', '.join(deadline.pause.roles)})")
    policy = deadline.calendar.policy()
    if policy != "none":
        parts.append(f"closed days: {policy}")
    for variant in deadline.variants:
        when = [f"from {variant.effective_from}" if variant.effective_from else "",
                f"until {variant.effective_until}" if variant.effective_until else "",
                f"with switch {variant.switch}" if variant.switch else ""]
        parts.append(f"{' '.join(w for w in when if w)}: "
                     f"{parse_duration(variant.duration, allow_zero=True)} ({variant.status})")
    return "; ".join(parts)


def _handover_line(handover: HandoverSpec) -> str:
    """Where the child goes next: the other pathway, who starts it, and what comes back."""
    version = f" v{handover.version}" if handover.version else ""
    when = (f"entering {handover.when.enter}" if handover.when.enter is not None
            else handover.when.event)
    parts = [f"on {when}: hands over to {handover.start}{version} as {handover.role}"]
    if handover.condition:
        parts.append(f"if {handover.condition}")
    if handover.carry:
        parts.append(f"carries {', '.join(sorted(handover.carry))}")
    if handover.returns:
        parts.append(f"waits for {handover.returns.event}")
    else:
        parts.append("goes on alongside")
    if handover.on_end == "cancel":
        parts.append("cancels it on ending")
    return "; ".join(parts)


def _handover_states(spec: PathwaySpec, handover: HandoverSpec) -> list[str]:
    """The states a handover happens in: the entered state, or where the event's transitions
    lead (an internal one: where it happens)."""
    if handover.when.enter is not None:
        return [handover.when.enter]
    states: set[str] = set()
    for t in spec.transitions:
        if t.event == handover.when.event:
            sources = [t.source] if isinstance(t.source, str) else t.source
            states.update(sources if t.target is None else [t.target])
    return sorted(states)


def _without_marks(text: str) -> str:
    """python-statemachine names an internal transition's action; ours is only a marker."""
    return re.sub(r" / transition_\d+", "", text)


def state_notes(compiled: CompiledPathway) -> dict[str, list[str]]:
    """State -> lines: responsible role, then each deadline."""
    notes: dict[str, list[str]] = {}
    for name in compiled.spec.reading_order():
        state = compiled.spec.states[name]
        lines = [f"responsible: {state.responsible}"] if state.responsible else []
        lines += [_deadline_line(d) for d in state.deadlines]
        lines += [_handover_line(h) for h in compiled.spec.handovers
                  if name in _handover_states(compiled.spec, h)]
        if lines:
            notes[name] = lines
    return notes


def mermaid(compiled: CompiledPathway) -> str:
    from statemachine.contrib.diagram import formatter

    text = _without_marks(formatter.render(compiled.machine_class, "mermaid").rstrip("\n"))
    out = [text]
    for state, lines in state_notes(compiled).items():
        out.append(f"    note right of {state}")
        out += [f"        {line}" for line in lines]
        out.append("    end note")
    if compiled.spec.deadlines:
        out.append(f"    %% whole pathway: {'; '.join(_deadline_line(d) for d in compiled.spec.deadlines)}")
    return "\n".join(out) + "\n"


def dot(compiled: CompiledPathway) -> str:
    try:
        import pydot
    except ImportError:
        raise MissingExtra("a DOT or SVG diagram", "diagrams") from None
    from statemachine.contrib.diagram import DotGraphMachine

    graph = DotGraphMachine(compiled.machine_class).get_graph()  # type: ignore[no-untyped-call]
    _plain_labels(graph)
    for state, lines in state_notes(compiled).items():
        note = f"note_{state}"
        label = "\\l".join(line.replace('"', "'") for line in lines) + "\\l"
        graph.add_node(pydot.Node(note, label=f'"{label}"', shape="note", fontsize="9",
                                  style="filled", fillcolor="lightyellow"))
        graph.add_edge(pydot.Edge(note, state, style="dashed", arrowhead="none"))
    return _without_marks(str(graph.to_string()))


def _plain_labels(graph: Any) -> None:
    """Quote every label that looks like one of Graphviz's HTML labels (`<...>`): pydot leaves
    those unquoted, so a title such as "<b>x</b> (y)" broke `dot` or was drawn as markup
    (tables, fonts, images from the disk) instead of as the text the coordinator wrote."""
    for item in [*graph.get_nodes(), *graph.get_edges()]:
        label = item.get("label")
        if isinstance(label, str) and label.startswith("<") and label.endswith(">"):
            item.set("label", '"' + label.replace("\\", "\\\\").replace('"', '\\"') + '"')
    for sub in graph.get_subgraphs():
        _plain_labels(sub)


def svg(compiled: CompiledPathway) -> str:
    if shutil.which("dot") is None:
        raise InvalidArgument("--format svg needs Graphviz's `dot` program on PATH (Debian: "
                              "apt install graphviz); --format mermaid needs nothing")
    from statemachine.contrib.diagram.graphviz import run_graphviz

    return run_graphviz(dot(compiled), "svg").decode("utf-8")


def render(compiled: CompiledPathway, fmt: str) -> str:
    renderers = {"mermaid": mermaid, "dot": dot, "svg": svg}
    if fmt not in renderers:
        raise InvalidArgument(f"--format {fmt!r}: use one of {', '.join(FORMATS)}")
    return renderers[fmt](compiled)


def markdown_page(compiled: CompiledPathway) -> str:
    """The page docs/diagrams/ keeps for each shipped pathway (GitHub renders the fence)."""
    spec = compiled.spec
    title = spec.title.get("en") or next(iter(spec.title.values()))
    sources = "\n".join(f"- {source}" for source in spec.sources)
    links = "".join(f"- [{h.start}]({h.start}.md) ({h.name}): {_handover_line(h)}\n"
                    for h in spec.handovers)
    handed = f"Hands the child over to:\n\n{links}\n" if links else ""
    return (f"# {title} (`{spec.id}` v{spec.version}, {spec.country})\n\n"
            f"Generated by `pathways diagram {spec.id} --markdown`; the test suite fails when it "
            f"is out of date.\n\n```mermaid\n{mermaid(compiled)}```\n\n{handed}"
            f"Sources:\n\n{sources}\n")
