"""All shipped definitions checked (schema, graph, guards, templates) and compiled, once warm.

Baseline: reading the same YAML files with libyaml (PyYAML's CSafeLoader), the least any
loader must do.
"""

from __future__ import annotations

import yaml

from .common import DEFINITIONS
from .common import Figure
from .common import best_of
from .common import seconds


def _check_and_compile() -> None:
    from pathways_engine.definition import compiler
    from pathways_engine.definition.registry import load_all
    from pathways_notifications.checks import template_problems

    compiler._cache.clear()  # measure real compiles, not cache hits
    definitions, problems = load_all([DEFINITIONS])
    assert not problems, problems
    for definition in definitions:
        assert not template_problems(definition)
        compiler.compile_definition(definition)


def _yaml_floor() -> None:
    for path in sorted(DEFINITIONS.glob("*/pathway.yaml")):
        yaml.load(path.read_text(encoding="utf-8"), Loader=yaml.CSafeLoader)


def run(scale: str) -> list[Figure]:
    _check_and_compile()  # warm: imports, holiday tables
    repeats = 3 if scale == "quick" else 7
    ours = best_of(repeats, lambda: seconds(_check_and_compile)) * 1000
    floor = best_of(repeats, lambda: seconds(_yaml_floor)) * 1000
    count = len(list(DEFINITIONS.glob("*/pathway.yaml")))
    return [Figure("definitions", f"check + compile all {count} shipped definitions (warm)", ours,
                   "ms", "libyaml CSafeLoader load of the same files", floor, "<= 100 ms", ours <= 100)]
