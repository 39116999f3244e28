"""The definition format: strict YAML, every problem with file and line, the JSON Schema."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import types
import typing
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from pathways_engine.definition import parts
from pathways_engine.definition import spec
from pathways_engine.definition.loader import from_snapshot
from pathways_engine.definition.loader import load_path
from pathways_engine.definition.loader import snapshot_json
from pathways_engine.definition.rebuild import NotExact
from pathways_engine.definition.rebuild import rebuild
from pathways_engine.definition.registry import Registry
from pathways_engine.definition.registry import load_all
from pathways_engine.definition.yamlsafe import parse_text
from pathways_engine.errors import DefinitionError
from pydantic import BaseModel
from support import DEFINITIONS

from pathways.cli import cli

MINIMAL = """\
id: tiny
version: 1
title: {en: Tiny}
country: DK
timezone: Europe/Copenhagen
languages: [en]
fallback_language: en
roles:
  gp: {label: {en: GP}, sector: primary_care}
fields:
  level: {type: int, min: 1, max: 4}
start: {roles: [gp]}
states:
  open: {initial: true, responsible: gp}
  done: {final: true}
transitions:
  - {event: finish, from: open, to: done, roles: [gp], guard: "level >= 1"}
"""


def write(tmp_path: Path, text: str, name: str = "p.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def check(*paths: Path) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["check", *map(str, paths)], catch_exceptions=False)
    return result.exit_code, result.output


def test_minimal_definition_is_clean(tmp_path: Path) -> None:
    code, out = check(write(tmp_path, MINIMAL))
    assert code == 0, out


def test_yaml_11_surprises_stay_text() -> None:
    doc = parse_text("a: on\nb: no\nc: 12:00\nd: 012\ne: 2024-03-31\nf: yes\n", "x.yaml")
    assert doc.data == {"a": "on", "b": "no", "c": "12:00", "d": "012", "e": "2024-03-31",
                        "f": "yes"}


def test_null_tilde_and_empty_mean_no_value_and_quoted_null_is_text() -> None:
    doc = parse_text('a: null\nb: ~\nc:\nd: "null"\ne: [null, 17]\nf: NULL\n', "x.yaml")
    assert doc.data == {"a": None, "b": None, "c": None, "d": "null", "e": [None, "17"],
                        "f": None}


def test_a_state_with_responsible_null_has_no_responsible_role(tmp_path: Path) -> None:
    # libyaml once left a plain `null` as the text "null": "unknown role 'null'"
    text = MINIMAL.replace("open: {initial: true, responsible: gp}",
                           "open: {initial: true, responsible: null}")
    code, out = check(write(tmp_path, text))
    assert code == 0, out
    assert load_path(tmp_path / "p.yaml").spec.states["open"].responsible is None


@pytest.mark.parametrize(("text", "line", "needle"), [
    ("a: &x [1, 2]\nb: *x\n", 1, "anchors and aliases"),
    ("a: 1\nb: !!python/object/apply:os.system [ls]\n", 2, "not allowed"),
    ("a: 1\na: 2\n", 2, "duplicate key 'a'"),
    ("a: [1,\n", 2, "YAML syntax error"),
    ("", 1, "empty"),
])
def test_hostile_or_broken_yaml_is_refused_with_line(text: str, line: int, needle: str) -> None:
    with pytest.raises(DefinitionError) as info:
        parse_text(text, "bad.yaml")
    problem = info.value.problems[0]
    assert (problem.path, problem.line) == ("bad.yaml", line)
    assert needle in problem.message


def test_deep_nesting_is_refused() -> None:
    with pytest.raises(DefinitionError, match="nested deeper"):
        parse_text("a: " + "[" * 100 + "]" * 100 + "\n", "deep.yaml")


def test_unknown_key_names_allowed_keys_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL.replace("  open: {initial: true, responsible: gp}",
                                           "  open: {initial: true, responsable: gp}"))
    code, out = check(path)
    assert code == 1
    assert f"{path}:14: states.open: unknown key 'responsable'; allowed keys here:" in out
    assert "responsible" in out.split("allowed keys here:")[1]


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    broken = MINIMAL.replace("to: done", "to: dune").replace(
        'guard: "level >= 1"', 'guard: "levl >= 1"').replace("roles: [gp], guard", "roles: [gx], guard")
    broken += "  - {event: loop, from: limbo, to: open, roles: [gp]}\n"
    broken = broken.replace("  done: {final: true}", "  done: {final: true}\n  stuck: {}")
    path = write(tmp_path, broken)
    code, out = check(path)
    assert code == 1
    lines = [line for line in out.splitlines() if line.startswith(str(path))]
    text = "\n".join(lines)
    assert "unknown state 'dune' (did you mean 'done'?)" in text
    assert "unknown field 'levl' (did you mean 'level'?)" in text
    assert "unknown role 'gx'" in text
    assert "unknown state 'limbo'" in text
    assert "state 'stuck' is unreachable" in text
    assert "state 'stuck' is not final but has no way out" in text
    assert all(line.split(":")[1].isdigit() for line in lines)
    assert len(lines) >= 6


def test_graph_problems(tmp_path: Path) -> None:
    text = MINIMAL.replace("  done: {final: true}",
                           "  done: {final: true}\n  spin: {responsible: gp}")
    text += "  - {event: go_spin, from: open, to: spin, roles: [gp]}\n"
    text += "  - {event: again, from: spin, to: spin, roles: [gp]}\n"
    text += "  - {event: go_spin, from: open, to: done, roles: [gp]}\n"
    code, out = check(write(tmp_path, text))
    assert code == 1
    assert "state 'spin' has no path to a final state" in out
    assert "ambiguous: event 'go_spin' from 'open'" in out


def test_guard_cannot_call_or_reach_attributes(tmp_path: Path) -> None:
    for guard in ["__import__('os').system('x')", "level.__class__", "len(level) > 1"]:
        code, out = check(write(tmp_path, MINIMAL.replace('"level >= 1"', json.dumps(guard))))
        assert code == 1
        assert "not allowed in a condition" in out


def _with_deadlines(rows: str) -> str:
    block = "  open:\n    initial: true\n    responsible: gp\n    deadlines:\n"
    block += "".join(f"      - {row}\n" for row in rows.strip().splitlines())
    return MINIMAL.replace("  open: {initial: true, responsible: gp}\n", block)


def test_bad_durations_are_schema_errors(tmp_path: Path) -> None:
    code, out = check(write(tmp_path, _with_deadlines("""
        {name: a, duration: 3 fortnights, status: law, source: x y z}
        {name: b, duration: 0 days, status: law, source: x y z, reminders: [0 hours]}
        {name: c, duration: P1M2D, status: law, source: x y z}
        {name: f, duration: 3 days, status: maybe, source: x y z}
    """)))
    assert code == 1
    assert "unknown unit 'fortnights'" in out
    assert "must be longer than zero" in out
    assert "mixes units" in out
    assert "'law', 'guideline', 'local_agreement' or 'proposal'" in out
    assert len([line for line in out.splitlines() if ".yaml:" in line]) == 4


def test_bad_deadline_references(tmp_path: Path) -> None:
    code, out = check(write(tmp_path, _with_deadlines("""
        {name: d, duration: 3 days, status: law, source: x y z, responsible: bup}
        {name: e, duration: 3 days, status: law, source: x y z, from: "field:level"}
        {name: g, duration: 3 days, status: law, source: x y z, on_timeout: nothing}
    """)))
    assert code == 1
    assert "unknown role 'bup'" in out
    assert "field 'level' is a int, not a date" in out
    assert "on_timeout event 'nothing' cannot be sent from here" in out


def test_unknown_country_is_an_error_with_line(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL.replace("country: DK", "country: FI"))
    code, out = check(path)
    assert code == 1
    assert f"{path}:4: country:" in out


def test_same_pathway_version_twice(tmp_path: Path) -> None:
    write(tmp_path, MINIMAL, "a.yaml")
    write(tmp_path, MINIMAL, "b.yaml")
    _, problems = load_all([tmp_path])
    assert any("is also defined in" in p.message for p in problems)


def test_schema_is_generated_from_the_model() -> None:
    result = CliRunner().invoke(cli, ["schema"])
    assert result.exit_code == 0
    schema = json.loads(result.output)
    assert schema["title"] == "pathways definition"
    assert "transitions" in schema["properties"]
    transition = schema["$defs"]["TransitionSpec"]
    assert {"from", "to", "event"} <= set(transition["properties"])
    assert transition["additionalProperties"] is False


def test_content_hash_changes_with_content(tmp_path: Path) -> None:
    a = load_path(write(tmp_path, MINIMAL, "a.yaml"))
    b = load_path(write(tmp_path, MINIMAL.replace("title: {en: Tiny}", "title: {en: Tiny2}"),
                        "b.yaml"))
    assert a.content_hash != b.content_hash


def test_the_reused_machine_runs_again_after_a_final_state_or_a_refusal() -> None:
    from pathways_engine.definition.compiler import compile_definition

    compiled = compile_definition(Registry.from_paths([DEFINITIONS]).get("mistrivsel_referral"))
    assert compiled.fire("referred", "bup_accepts", {}) is None
    closed = compiled.fire("referred", "close", {})
    assert closed is not None
    assert closed.target == "closed"
    again = compiled.fire("referred", "triage_to_ppr", {})
    assert again is not None
    assert again.target == "ppr_assessment"


def test_event_with_the_name_of_a_state_is_refused(tmp_path: Path) -> None:
    # python-statemachine gives events and states one namespace; found by a shipped pathway
    text = MINIMAL + "  - {event: done, from: open, to: done, roles: [gp]}\n"
    code, out = check(write(tmp_path, text))
    assert code == 1
    assert "p.yaml:18: event 'done' has the name of a state" in out


def test_an_escalation_without_a_notification_is_refused(tmp_path: Path) -> None:
    text = MINIMAL.replace(
        "  open: {initial: true, responsible: gp}",
        "  open:\n    initial: true\n    responsible: gp\n    deadlines:\n"
        "      - {name: answer, duration: 2 days, status: law, source: x,"
        " escalate: {after: 1 days, to: [gp]}}").replace("source: x,", "source: Lov §1,")
    code, out = check(write(tmp_path, text))
    assert code == 1
    assert ("deadline 'answer' escalates to gp, but no notification is declared for it: "
            "add when: {deadline: answer, kind: escalation}") in out


def _same(built: Any, validated: Any, where: str = "") -> None:
    """A part equal to what pydantic validated, of the same types all the way down (1 == 1.0,
    but a float is not an int)."""
    if isinstance(validated, BaseModel):
        assert isinstance(built, parts.Part), where
        assert type(built).__name__ == type(validated).__name__, where
        assert built._fields == tuple(type(validated).model_fields), where
        for name in type(validated).model_fields:
            _same(getattr(built, name), getattr(validated, name), f"{where}.{name}")
        return
    assert type(built) is type(validated), where
    if isinstance(validated, dict):
        assert list(built) == list(validated), where
        for key in validated:
            _same(built[key], validated[key], f"{where}[{key!r}]")
    elif isinstance(validated, list):
        assert len(built) == len(validated), where
        for i, (one, other) in enumerate(zip(built, validated, strict=True)):
            _same(one, other, f"{where}[{i}]")
    else:
        assert built == validated, where


@pytest.mark.parametrize("definition", load_all([DEFINITIONS])[0], ids=lambda d: d.spec.id)
def test_a_definition_runs_as_parts_equal_to_what_validation_builds(definition: Any) -> None:
    validated = spec.PathwaySpec.model_validate(definition.document.data)
    _same(definition.spec, validated)  # a file: validated, then its parts
    _same(rebuild(parts.PathwaySpec, definition.document.data), validated)  # text as written
    stored = json.loads(definition.snapshot())["definition"]  # keys sorted, as stored
    again = from_snapshot(definition.snapshot())
    _same(again.spec, spec.PathwaySpec.model_validate(stored))
    assert again.content_hash == definition.content_hash


@pytest.mark.parametrize("definition", load_all([DEFINITIONS])[0], ids=lambda d: d.spec.id)
def test_a_part_dumps_what_differs_from_its_defaults_as_pydantic_does(definition: Any) -> None:
    """What a deadline's stored rule records of it (runtime/deadlines.py)."""
    validated = spec.PathwaySpec.model_validate(definition.document.data)
    assert definition.spec.changed() == validated.model_dump(exclude_defaults=True)
    for (_, part), (_, model) in zip(definition.spec.all_deadlines(),
                                     _all_deadlines(validated), strict=True):
        assert part.changed() == model.model_dump(exclude_defaults=True)


def _all_deadlines(validated: Any) -> list[tuple[str | None, Any]]:
    return [(None, d) for d in validated.deadlines] + [
        (name, d) for name, state in validated.states.items() for d in state.deadlines]


def _shape(annotation: Any) -> str:
    """An annotation without its constraints, models and parts by name: what a value is."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:
        return _shape(args[0])
    if origin in (typing.Union, types.UnionType):
        return "|".join(sorted(_shape(a) for a in args))
    if origin is typing.Literal:
        return repr(sorted(args))
    if origin is not None:
        return f"{origin.__name__}[{','.join(_shape(a) for a in args)}]"
    return annotation.__name__ if isinstance(annotation, type) else repr(annotation)


@pytest.mark.parametrize("model", spec._Strict.__subclasses__(), ids=lambda m: m.__name__)
def test_every_part_declares_what_its_format_model_declares(model: Any) -> None:
    """Same fields in the same order, same keys, required or not, same defaults and types."""
    part = getattr(parts, model.__name__)
    spec.validating()
    assert part._fields == tuple(model.model_fields)
    for name, info in model.model_fields.items():
        assert part._keys.get(name, name) == (info.alias or name), name
        assert (name not in part._defaults) == info.is_required(), name
        assert _shape(part._types[name]) == _shape(info.annotation), name
        if not info.is_required():
            _same(parts._made(part._defaults[name]),
                  info.get_default(call_default_factory=True, validated_data={}), name)


def test_yes_no_and_numbers_written_as_text_rebuild_as_validation_converts_them(
        tmp_path: Path) -> None:
    text = MINIMAL.replace("level: {type: int, min: 1, max: 4}",
                           "level: {type: int, min: 1, max: 4.5, personal: false}\n"
                           "  note: {type: text, personal: true}").replace(
        "start: {roles: [gp]}", "start: {roles: [gp], allow_parallel: false}\n"
        "eligibility: {min_age_years: 0, birth_date_required: true}")
    definition = load_path(write(tmp_path, text))
    assert definition.spec.fields["level"].personal is False  # the text "false" is False
    _same(rebuild(parts.PathwaySpec, definition.document.data),
          spec.PathwaySpec.model_validate(definition.document.data))


@pytest.mark.parametrize("value", ["+3", " 3", "3.0"])
def test_a_value_only_validation_converts_is_validated_not_rebuilt(value: str) -> None:
    with pytest.raises(NotExact):
        rebuild(parts.EligibilitySpec, {"max_age_years": value})
    definition = load_path(DEFINITIONS / "mistrivsel_referral")
    data = json.loads(json.dumps(definition.document.data))
    data["eligibility"]["max_age_years"] = value
    snapshot = snapshot_json(data, definition.templates, definition.path)
    assert from_snapshot(snapshot).spec.eligibility.max_age_years == 3


def test_a_step_from_a_snapshot_does_not_import_pydantic() -> None:
    """What keeps `pathways advance` from paying for the format's models (parts.py)."""
    code = (
        "import sys, json\n"
        "from pathways_engine.definition.loader import from_snapshot\n"
        "from pathways_engine.definition.compiler import compile_definition\n"
        "definition = from_snapshot(sys.stdin.read())\n"
        "compile_definition(definition)\n"
        "print(json.dumps([definition.spec.id, 'pydantic' in sys.modules]))\n")
    snapshot = load_path(DEFINITIONS / "mistrivsel_referral").snapshot()
    out = subprocess.run([sys.executable, "-c", code], input=snapshot, capture_output=True,
                         text=True, check=True).stdout
    assert json.loads(out) == ["mistrivsel_referral", False]


def test_validating_builds_every_models_validators_at_once() -> None:
    """Under one lock (spec.py): pydantic's own lazy build was not thread-safe everywhere."""
    code = (
        "import json\n"
        "from pathways_engine.definition.spec import validating, _Strict\n"
        "before = any(m.__pydantic_complete__ for m in _Strict.__subclasses__())\n"
        "validating()\n"
        "after = all(m.__pydantic_complete__ for m in _Strict.__subclasses__())\n"
        "print(json.dumps([before, after]))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert json.loads(out) == [False, True]


def test_the_read_view_takes_personal_yes_and_no_as_the_format_does(tmp_path: Path) -> None:
    """`show` reads personal fields from the snapshot's text ("false" is no, not a word)."""
    from pathways_engine.definition.view import view_of

    text = MINIMAL.replace("level: {type: int, min: 1, max: 4}", "level: {type: int}\n" + "".join(
        f"  f_{i}: {{type: text, personal: {flag}}}\n"
        for i, flag in enumerate(["false", "no", "off", "true", "yes", "on", "True"])) +
        "  plain: {type: text}")
    definition = load_path(write(tmp_path, text))
    view = view_of(json.loads(definition.snapshot())["definition"])
    assert view.personal == {n for n, f in definition.spec.fields.items() if f.personal}
    assert view.personal == {"f_3", "f_4", "f_5", "f_6"}
