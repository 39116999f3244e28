"""Strict, bounded YAML: no YAML 1.1 surprises, no aliases, and a line for every value.

YAML 1.1 (PyYAML's default) reads `on`/`no` as booleans, `12:00` as 720, `012` as 10 and
`2024-03-31` as a date. Here a plain `null`, `~` or empty value is None and every other scalar
is the text written: the definition format's declared types convert it where a number or
yes/no belongs, and nothing else can change type by accident. Aliases are refused outright
(the billion-laughs bomb needs them), and size and nesting depth are capped so a hostile file
costs bounded time and memory.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode
from yaml.nodes import Node
from yaml.nodes import ScalarNode
from yaml.nodes import SequenceNode

from pathways_engine.errors import DefinitionError
from pathways_engine.errors import Problem

MAX_BYTES = 2_000_000
MAX_DEPTH = 40
MAX_NODES = 50_000
NESTED_TOO_DEEP = f"document is nested deeper than {MAX_DEPTH} levels"

Loc = tuple[str | int, ...]


class _StrictComposing(yaml.composer.Composer):
    """Composes nodes in Python, refusing aliases and stopping at the depth and size limits."""

    depth = 0
    nodes = 0

    def compose_node(self, parent: Node | None, index: Any) -> Node:
        """Refuse aliases, and stop at the depth and size limits while composing (bounded)."""
        event = self.peek_event()  # type: ignore[attr-defined]
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            raise yaml.MarkedYAMLError(
                problem="YAML anchors and aliases (&, *) are not allowed",
                problem_mark=event.start_mark,
            )
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise yaml.MarkedYAMLError(problem=f"document has more than {MAX_NODES} values",
                                       problem_mark=event.start_mark)
        if self.depth >= MAX_DEPTH:
            raise yaml.MarkedYAMLError(
                problem=NESTED_TOO_DEEP,
                problem_mark=event.start_mark)
        self.depth += 1
        try:
            node: Node | None = super().compose_node(parent, index)
        finally:
            self.depth -= 1
        assert node is not None
        return node


if yaml.__with_libyaml__:
    from yaml.constructor import SafeConstructor
    from yaml.cyaml import CParser  # type: ignore[attr-defined]
    from yaml.resolver import Resolver

    class _StrictLoader(_StrictComposing, CParser, SafeConstructor, Resolver):
        """libyaml scans and parses (about 6 times faster than PyYAML's Python parser, which
        dominated `pathways check`); composing stays in Python so the limits above apply."""

        def __init__(self, stream: str) -> None:
            CParser.__init__(self, stream)
            yaml.composer.Composer.__init__(self)
            SafeConstructor.__init__(self)
            Resolver.__init__(self)
else:  # pragma: no cover - PyYAML wheels ship libyaml
    class _StrictLoader(_StrictComposing, yaml.SafeLoader):  # type: ignore[no-redef]
        """SafeLoader with YAML 1.2-core-like typing that refuses anchors and aliases."""


_StrictLoader.yaml_implicit_resolvers = {}
_StrictLoader.add_implicit_resolver("tag:yaml.org,2002:null", re.compile(r"^(?:~|null|Null|NULL|)$"),
                                    ["~", "n", "N", ""])


@dataclass
class Document:
    """A parsed YAML document plus the line (1-based) of every mapping key and item."""

    path: str
    data: Any
    lines: dict[Loc, int] = field(default_factory=dict)

    def line_of(self, loc: Loc) -> int:
        """The line of `loc`, or of its closest ancestor that has one."""
        loc = tuple(loc)
        while loc:
            if loc in self.lines:
                return self.lines[loc]
            loc = loc[:-1]
        return self.lines.get((), 1)


def _problem(path: str, line: int, message: str) -> DefinitionError:
    return DefinitionError([Problem(path, line, message)])


def parse_text(text: str, path: str) -> Document:
    """Parse `text` (named `path` in errors) into a Document or raise DefinitionError."""
    if len(text.encode("utf-8", "replace")) > MAX_BYTES:
        raise _problem(path, 1, f"file is larger than {MAX_BYTES // 1_000_000} MB")
    try:
        loader = _StrictLoader(text)
        try:
            root = loader.get_single_node()
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        problem = str(exc.problem or exc.context)
        if "nesting depth" in problem:  # libyaml's own cap (PyYAML >= 6.0.3): our words, not its
            problem = NESTED_TOO_DEEP
        limit = problem.startswith(("document has more", "document is nested", "YAML anchors"))
        raise _problem(path, line, problem if limit else f"YAML syntax error: {problem}") from None
    except RecursionError:  # the YAML parser recurses per level before `_build` can count them
        raise _problem(path, 1, NESTED_TOO_DEEP) from None
    except yaml.reader.ReaderError as exc:
        line = text[:exc.position].count("\n") + 1
        raise _problem(path, line, f"character {exc.character!r} is not allowed in YAML "
                                   f"(column {exc.position - text.rfind(chr(10), 0, exc.position)})"
                       ) from None
    except yaml.YAMLError as exc:
        raise _problem(path, 1, f"YAML error: {exc}") from None
    if root is None:
        raise _problem(path, 1, "file is empty")
    doc = Document(path=path, data=None)
    counter = [0]
    doc.data = _build(root, (), doc, 0, counter)
    return doc


def parse_file(path: Path, shown_as: str | None = None) -> Document:
    name = shown_as or str(path)
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise _problem(name, 1, f"file is larger than {MAX_BYTES // 1_000_000} MB")
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise _problem(name, 1, "file is not UTF-8 text") from None
    except OSError as exc:
        raise _problem(name, 1, f"cannot read file: {exc.strerror}") from None
    return parse_text(text, name)


def _build(node: Node, loc: Loc, doc: Document, depth: int, counter: list[int]) -> Any:
    counter[0] += 1
    line = node.start_mark.line + 1
    if counter[0] > MAX_NODES:
        raise _problem(doc.path, line, f"document has more than {MAX_NODES} values")
    if depth > MAX_DEPTH:
        raise _problem(doc.path, line, NESTED_TOO_DEEP)
    doc.lines.setdefault(loc, line)
    if isinstance(node, ScalarNode):
        if node.tag not in {
            "tag:yaml.org,2002:str",
            "tag:yaml.org,2002:int",
            "tag:yaml.org,2002:float",
            "tag:yaml.org,2002:bool",
            "tag:yaml.org,2002:null",
        }:
            raise _problem(doc.path, line, f"YAML tag {node.tag!r} is not allowed")
        return _construct_scalar_value(node)
    if isinstance(node, SequenceNode | MappingNode) and node.tag not in {
        "tag:yaml.org,2002:seq", "tag:yaml.org,2002:map",
    }:
        raise _problem(doc.path, line, f"YAML tag {node.tag!r} is not allowed")
    if isinstance(node, SequenceNode):
        return [_build(child, (*loc, i), doc, depth + 1, counter) for i, child in enumerate(node.value)]
    if isinstance(node, MappingNode):
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                raise _problem(
                    doc.path, key_node.start_mark.line + 1, "mapping keys must be plain text"
                )
            key = str(key_node.value)
            if key in result:
                raise _problem(doc.path, key_node.start_mark.line + 1, f"duplicate key {key!r}")
            doc.lines[(*loc, key)] = key_node.start_mark.line + 1
            result[key] = _build(value_node, (*loc, key), doc, depth + 1, counter)
        return result
    raise _problem(doc.path, line, "unsupported YAML node")  # pragma: no cover


def _construct_scalar_value(node: ScalarNode) -> Any:
    """A plain `null`, `~` or empty value is None; every other scalar stays the text written.

    The format's declared type converts text where a number or yes/no belongs (`version: 3`,
    `personal: true`), so `12:00` or `no` can never change type by accident. Definitions have
    always been read this way (it decides their content hash); `null` once stayed the text
    "null" too, because libyaml marks a plain scalar's style as "" where PyYAML says None.
    """
    if node.style in ("'", '"', "|", ">"):
        return node.value
    if node.tag == "tag:yaml.org,2002:null":
        return None
    return node.value

