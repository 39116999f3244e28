"""Coordinator tooling: diagrams (kept current in docs/), scenario files in simulated time."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner
from support import DEFINITIONS
from support import ROOT
from support import copy_pathway
from support import version_of
from support import with_version

from pathways.cli import cli
from pathways.scenarios import discover
from pathways.scenarios import run_file

SCENARIOS = discover([DEFINITIONS])
PATHWAYS = sorted(p.name for p in DEFINITIONS.iterdir() if (p / "pathway.yaml").is_file())


def invoke(*args: str) -> object:
    return CliRunner().invoke(cli, list(args))


def test_every_shipped_pathway_has_scenarios() -> None:
    covered = {path.parent.parent.name for path in SCENARIOS}
    assert covered == set(PATHWAYS)


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: f"{p.parent.parent.name}/{p.stem}")
def test_shipped_scenario_passes(path: Path) -> None:
    outcome = run_file(path, (DEFINITIONS,), DEFINITIONS / "parties.yaml")
    assert outcome.failures == []


@pytest.mark.parametrize("pathway", PATHWAYS)
def test_docs_diagram_is_current(pathway: str) -> None:
    result = CliRunner().invoke(cli, ["diagram", pathway, "--markdown"])
    assert result.exit_code == 0, result.output
    page = ROOT / "docs" / "diagrams" / f"{pathway}.md"
    assert page.is_file(), f"run: pathways diagram {pathway} --markdown -o {page}"
    assert page.read_text(encoding="utf-8") == result.output, (
        f"docs/diagrams/{pathway}.md is out of date; run: "
        f"pathways diagram {pathway} --markdown -o docs/diagrams/{pathway}.md")


def test_diagram_shows_states_guards_roles_and_deadlines() -> None:
    result = CliRunner().invoke(cli, ["diagram", "mistrivsel_referral"])
    assert result.exit_code == 0
    text = result.output
    assert text.startswith("stateDiagram-v2")
    assert "referred --> bup_referred : Refer bup [severity in ['moderate', 'severe']]" in text
    assert "note right of bup_referred" in text
    assert "responsible: bup" in text
    assert "information_letter: 8 working days from field:referral_received (law)" in text
    dot = CliRunner().invoke(cli, ["diagram", "mistrivsel_referral", "--format", "dot"])
    assert dot.exit_code == 0
    assert "note_bup_referred -> bup_referred" in dot.output


def test_a_pathway_draws_the_same_from_its_file_and_from_its_stored_snapshot() -> None:
    """A running instance's pathway is compiled from its stored snapshot, JSON with sorted
    keys; a server compiles those before it serves. Its pages and exports showed the states
    in alphabetical order, the CLI in the file's."""
    from pathways_engine.definition.compiler import CompiledPathway
    from pathways_engine.definition.diagrams import mermaid
    from pathways_engine.definition.loader import from_snapshot
    from pathways_engine.definition.registry import Registry

    for definition in Registry.from_paths([DEFINITIONS]).all():
        from_file = CompiledPathway(definition)
        stored = CompiledPathway(from_snapshot(definition.snapshot()))
        assert list(stored.spec.states) != list(from_file.spec.states) or \
            list(from_file.spec.states) == sorted(from_file.spec.states)  # the order was lost
        assert stored.spec.reading_order() == from_file.spec.reading_order()
        assert mermaid(stored) == mermaid(from_file), definition.spec.id
        order = from_file.spec.reading_order()
        assert order[0] == from_file.spec.initial_state
        assert sorted(order) == sorted(from_file.spec.states)


def test_svg_says_clearly_when_graphviz_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    result = CliRunner().invoke(cli, ["diagram", "mistrivsel_referral", "--format", "svg"])
    assert result.exit_code == 1
    assert "needs Graphviz's `dot` program" in result.stderr


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz is not installed here")
def test_svg_with_graphviz() -> None:
    result = CliRunner().invoke(cli, ["diagram", "mistrivsel_referral", "--format", "svg"])
    assert result.exit_code == 0
    assert "<svg" in result.output


def _scenario(tmp_path: Path, body: str) -> Path:
    folder = tmp_path / "mistrivsel_referral"
    copy_pathway(folder)
    shutil.rmtree(folder / "scenarios")
    (folder / "scenarios").mkdir()
    path = folder / "scenarios" / "case.yaml"
    path.write_text(textwrap.dedent(body))
    return path


def test_failing_expectations_are_reported_with_a_readable_difference(tmp_path: Path) -> None:
    path = _scenario(tmp_path, """\
        name: wrong on purpose
        subject: {ref: X-1, birth_date: 2014-05-02}
        start: {at: 2026-12-18T10:00, as: gp, set: {severity: moderate, consent_exchange: true}}
        expect:
          state: closed
          deadlines: {municipal_triage: {due: 2027-01-06T23:59:59+01:00}}
        steps:
          - at: +1 working days
            event: triage_to_ppr
            as: ppr
            expect: {error: "nope"}
        """)
    result = CliRunner().invoke(cli, ["--definitions", str(path.parents[2]), "simulate",
                                      str(path)])
    assert result.exit_code == 1
    out = result.output
    assert f"FAIL  {path}  wrong on purpose" in out
    assert "start: state: expected closed, got referred" in out
    assert ("start: deadline municipal_triage due: expected 2027-01-06T23:59:59+01:00, "
            "got 2027-01-07T23:59:59+01:00") in out
    assert ("step 1 (triage_to_ppr at 2026-12-21 10:00): expected the step to be refused "
            "('nope'), but it was applied") in out


def test_scenario_file_errors_name_file_and_line(tmp_path: Path) -> None:
    path = _scenario(tmp_path, """\
        name: broken
        start: {at: 2026-12-18T10:00, as: gp}
        steps:
          - at: tomorrow
            event: close
            as: ppr
          - {at: +1 days, evnt: close}
        """)
    result = CliRunner().invoke(cli, ["--definitions", str(path.parents[2]), "simulate",
                                      str(path)])
    assert result.exit_code == 1
    assert result.stderr == f"error: {path}:7: steps.1.evnt: Extra inputs are not permitted\n"
    path.write_text(path.read_text().replace("evnt: close", "event: close, as: ppr"))
    result = CliRunner().invoke(cli, ["--definitions", str(path.parents[2]), "simulate",
                                      str(path)])
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: {path}:4: time 'tomorrow': use ISO 8601")
    one_of = ("give exactly one of `event:`, `tick: true`, `consent:`, `assign:`, `extend:`, "
              "`pause:`, `resume:`, `withdraw: true`, `correct: true`, `undo: true`")
    for step, message in [("{at: +1 days}", one_of),
                          ("{at: +1 days, event: close}", "event 'close' needs `as: ROLE`"),
                          ("{at: +1 days, event: close, as: ppr, tick: true}", one_of)]:
        path.write_text(f"name: x\nstart: {{at: 2026-12-18T10:00, as: gp}}\nsteps:\n  - {step}\n")
        result = CliRunner().invoke(cli, ["--definitions", str(path.parents[2]), "simulate",
                                          str(path)])
        assert result.exit_code == 1
        assert result.stderr == f"error: {path}:4: steps.0: {message}\n"


def _two_versions(tmp_path: Path) -> tuple[Path, Path]:
    v1 = tmp_path / "v1" / "mistrivsel_referral"
    v2 = tmp_path / "v2" / "mistrivsel_referral"
    copy_pathway(v1)  # with the pathways it hands over to; v2 finds them next to v1
    shutil.copytree(DEFINITIONS / "mistrivsel_referral", v2)
    text = (v2 / "pathway.yaml").read_text()
    text = with_version(text, version_of(text) + 1).replace("ppr_assessment", "ppr_evaluation")
    text = text.replace("duration: 10 working days", "duration: 8 working days", 1)
    (v2 / "pathway.yaml").write_text(text)
    return v1.parent, v2.parent


def test_migrate_moves_running_instances_with_a_mapping_and_new_deadlines(
        tmp_path: Path, db_url: str) -> None:
    import json

    from support import Cli

    v1, v2 = _two_versions(tmp_path)
    n = version_of((v1 / "mistrivsel_referral" / "pathway.yaml").read_text())
    old = Cli(db_url, v1)
    start = ["start", "mistrivsel_referral", "--birth-date", "2014-05-02", "--set",
             "severity=moderate", "--set", "consent_exchange=true", "--as", "dr.a", "--role", "gp",
             "--at", "2026-11-02T09:00", "--json"]
    waiting = json.loads(old(*start, "--subject", "M-1").output)["id"]
    assessed = json.loads(old(*start, "--subject", "M-2").output)["id"]
    old("advance", assessed, "triage_to_ppr", "--as", "p", "--role", "ppr", "--at",
        "2026-11-03T09:00")
    both = Cli(db_url, v1)  # with "--definitions v2" below: both versions are known
    migrate = ["--definitions", str(v2), "migrate", "--pathway", "mistrivsel_referral", "--to",
               str(n + 1),
               "--as", "leader"]
    refused = both(*migrate, "--dry-run", code=1)
    assert (f"version {n + 1} of 'mistrivsel_referral' has no such state for 1 running "
            f"instances: 'ppr_assessment' (v{n}) -> 'ppr_assessment'") in refused.stderr
    assert "bup_referral_advised, ppr_evaluation, bup_referred" in refused.stderr
    dry = json.loads(both(*migrate, "--map", "ppr_assessment=ppr_evaluation", "--dry-run",
                          "--json").output)
    assert dry["moved"] == 0
    assert {(m["from"], m["to"], m["instances"]) for m in dry["moves"]} == {
        ("referred", "referred", 1), ("ppr_assessment", "ppr_evaluation", 1)}
    assert json.loads(old("show", waiting, "--json").output)["version"] == n
    done = json.loads(both(*migrate, "--map", "ppr_assessment=ppr_evaluation", "--json").output)
    assert done["moved"] == 2
    moved = json.loads(both("show", waiting, "--json").output)
    assert moved["version"] == n + 1
    triage = sorted((d["status"], d["due_local"]) for d in moved["deadlines"]
                    if d["name"] == "municipal_triage")
    assert triage == [("cancelled", "2026-11-16T23:59:59+01:00"),   # v1: 10 working days
                      ("overdue", "2026-11-12T23:59:59+01:00")]     # v2: 8 working days, passed
    assert moved["history"][-1]["kind"] == "migration"
    assert moved["history"][-1]["changes"]["version"] == [n, n + 1]
    assert json.loads(both("show", assessed, "--json").output)["state"] == "ppr_evaluation"
    assert both("audit", "verify").exit_code == 0
    again = json.loads(both(*migrate, "--map", "ppr_assessment=ppr_evaluation", "--json").output)
    assert again["moved"] == 0
    typo = both(*migrate, "--map", "ppr_assesment=ppr_evaluation", code=1)
    assert "--map names states no earlier version of 'mistrivsel_referral' has: ppr_assesment" in \
        typo.stderr
