"""Hostile and random input (hypothesis): never a traceback, always a one-line error or a result."""

from __future__ import annotations

import re
import shutil
import tracemalloc
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from click.testing import Result
from hypothesis import HealthCheck
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
from pathways_engine.definition.yamlsafe import parse_text
from pathways_engine.errors import DefinitionError
from pathways_engine.rules.expressions import ExpressionError
from pathways_engine.rules.expressions import compile_condition
from support import ACTORS
from support import DEFINITIONS

from pathways.cli import cli

FUZZ = settings(max_examples=60, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])
PROBLEM_LINE = re.compile(r"^\S.*:\d+: \S.*$")
SOURCE = (DEFINITIONS / "mistrivsel_referral" / "pathway.yaml").read_text()
LINES = SOURCE.splitlines()
SNIPPETS = ["", ":", "- ", "{", "]", "&a", "*a", "!!python/object:os.system", "'", '"', "\t",
            "states:", "to: nowhere", "guard: __import__('os')", "duration: 10 fortnights",
            "from: [a, b]", "roles: []", "\x00", "é", "999999999999999999999", "null", "~",
            "<<: *a", "? complex", "%YAML 1.1", "---", "...", "#", "    "]


def assert_clean(result: Result, allowed: set[int]) -> None:
    """No traceback; a known exit code; an error is one line on stderr."""
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"traceback for user input: {result.exception!r}") from result.exception
    assert result.exit_code in allowed, (result.exit_code, result.output)
    assert "Traceback" not in result.output
    if result.exit_code in {1, 3, 4} and result.stderr.startswith("error:"):
        assert result.stderr.count("\n") == 1, result.stderr


@pytest.fixture(scope="module")
def pathway_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("fuzz") / "mistrivsel_referral"
    shutil.copytree(DEFINITIONS / "mistrivsel_referral", target)
    return target


@FUZZ
@given(edits=st.lists(st.tuples(st.integers(0, len(LINES) - 1),
                                st.sampled_from(["replace", "insert", "delete", "append"]),
                                st.one_of(st.sampled_from(SNIPPETS), st.text(max_size=30))),
                      min_size=1, max_size=4))
def test_mutated_definition_gets_file_line_problems(pathway_folder: Path,
                                                    edits: list[tuple[int, str, str]]) -> None:
    lines = list(LINES)
    for index, action, snippet in edits:
        index = min(index, len(lines) - 1)
        if action == "replace":
            lines[index] = snippet
        elif action == "insert":
            lines.insert(index, snippet)
        elif action == "delete" and len(lines) > 1:
            del lines[index]
        else:
            lines[index] += snippet
    (pathway_folder / "pathway.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["check", str(pathway_folder)])
    assert_clean(result, {0, 1})
    if result.exit_code == 1:
        for line in result.stdout.splitlines():
            assert PROBLEM_LINE.match(line), line


yaml_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
              st.text(max_size=12)),
    lambda children: st.one_of(st.lists(children, max_size=4),
                               st.dictionaries(st.sampled_from(
                                   ["id", "version", "states", "transitions", "roles", "title",
                                    "deadlines", "fields", "start", "from", "to", "event",
                                    "duration", "guard", "x"]), children, max_size=5)),
    max_leaves=25)


@FUZZ
@given(document=yaml_values)
def test_random_yaml_documents_are_refused_cleanly(tmp_path_factory: pytest.TempPathFactory,
                                                   document: object) -> None:
    path = tmp_path_factory.mktemp("doc") / "random.yaml"
    path.write_text(yaml.safe_dump(document, allow_unicode=True))
    result = CliRunner().invoke(cli, ["check", str(path)])
    assert_clean(result, {1})
    for line in result.stdout.splitlines():
        assert PROBLEM_LINE.match(line), line


@FUZZ
@given(condition=st.one_of(
    st.text(max_size=80),
    st.sampled_from(["__import__('os').system('id')", "x.__class__.__mro__", "(lambda: 1)()",
                     "open('/etc/passwd')", "[c for c in ()]", "severity.upper()", "a if b else c",
                     "(" * 200 + ")" * 200, "1" * 10_000, "not " * 500 + "True", "\x00"])))
def test_guard_conditions_never_escape(condition: str) -> None:
    try:
        check = compile_condition(condition, {"severity": "enum", "level": "int"},
                                  {"severity": ["mild", "severe"]})
    except ExpressionError:
        return
    check({"severity": "mild", "level": 1})  # whatever compiled is a plain comparison


ACTIONS = st.sampled_from([
    ["start", "mistrivsel_referral"], ["advance"], ["show"], ["history"], ["list"],
    ["overdue"], ["render", "mistrivsel_referral"], ["outbox"], ["tick"], ["audit", "verify"],
    ["assign"], ["consent"], ["definitions"], ["deliver"]])
TOKENS = st.one_of(
    st.sampled_from(["--subject", "C-1", "--as", "p", "dr.a", "--role", "ppr", "gp", "--set",
                     "severity=moderate", "severity=", "=x", "consent_exchange=maybe", "--at",
                     "2026-13-40", "2026-11-02T09:00", "9999-01-01", "--birth-date", "--json",
                     "--now", "--expect-revision", "-1", "refer_bup", "close", "--area", "../x",
                     "--lang", "xx", "--instance", "--pathway", "--state", "--limit", "0",
                     "step_assigned", "--sector", "psychiatry", "--basis", "consent",
                     "--reference", "--batch-size", "100000000", "{{7*7}}", "'; drop table x"]),
    st.text(max_size=15))


@FUZZ
@given(action=ACTIONS, tokens=st.lists(TOKENS, max_size=8))
def test_random_command_lines_never_trace_back(sqlite_url: str, action: list[str],
                                               tokens: list[str]) -> None:
    args = ["--db", sqlite_url, "--definitions", str(DEFINITIONS), "--actors", str(ACTORS),
            *action, *tokens]
    result = CliRunner().invoke(cli, args)
    assert_clean(result, {0, 1, 2, 3, 4})


# ------------------------------------------------------------------ YAML bombs

BILLION_LAUGHS = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(8))


@pytest.mark.parametrize(("name", "text", "message"), [
    ("billion laughs", BILLION_LAUGHS, r"1: YAML anchors and aliases \(&, \*\) are not allowed"),
    ("deep nesting", "a: " + "[" * 50_000 + "]" * 50_000 + "\n",
     r"1: document is nested deeper than 40 levels"),
    ("deep mappings", "".join(" " * i + f"k{i}:\n" for i in range(1500)),
     r"40: document is nested deeper than 40 levels"),
    ("huge file", "a: " + "x" * 3_000_000 + "\n", r"1: file is larger than 2 MB"),
    ("many values", "".join(f"k{i}: 1\n" for i in range(60_000)),
     r"25000: document has more than 50000 values"),
])
def test_yaml_bombs_are_refused_in_bounded_time_and_memory(name: str, text: str, message: str,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Refused with our own words at the line, whatever the YAML library says itself.

    "Bounded" is measured as work, not seconds (no timing in the suite): the composer stops
    within its node limit, however large the bomb, and memory stays far below what
    expanding it would take.
    """
    from pathways_engine.definition import yamlsafe

    composed = [0]
    original = yamlsafe._StrictComposing.compose_node

    def counting(self: yamlsafe._StrictComposing, parent: object, index: object) -> object:
        composed[0] += 1
        return original(self, parent, index)  # type: ignore[arg-type]

    monkeypatch.setattr(yamlsafe._StrictComposing, "compose_node", counting)
    tracemalloc.start()
    with pytest.raises(DefinitionError) as info:
        parse_text(text, "bomb.yaml")
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert re.fullmatch(rf"bomb\.yaml:{message}", str(info.value)), str(info.value)
    assert composed[0] <= yamlsafe.MAX_NODES + 1, f"{name} composed {composed[0]} nodes"
    assert peak < 400 * 1024 * 1024, f"{name} peaked at {peak / 1e6:.0f} MB"
