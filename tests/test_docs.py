"""Every example in the README and docs runs: python blocks as code, console blocks as commands."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from support import DEFINITIONS
from support import ROOT

from pathways.cli import cli

FENCE = re.compile(r"^```(\w+)\n(.*?)^```", re.MULTILINE | re.DOTALL)
PAGES = [ROOT / "README.md", ROOT / "RELIABILITY.md", ROOT / "engine" / "README.md",
         *sorted((ROOT / "docs").glob("*.md"))]


def blocks(kind: str) -> list[tuple[str, str]]:
    found = []
    for page in PAGES:
        for number, (info, body) in enumerate(FENCE.findall(page.read_text(encoding="utf-8"))):
            if info == kind:
                found.append((f"{page.name}#{number}", body))
    return found


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder like a checkout's: the shipped definitions beside the current directory."""
    shutil.copytree(DEFINITIONS, tmp_path / "definitions")
    monkeypatch.chdir(tmp_path)
    for name in ("PATHWAYS_DATABASE_URL", "PATHWAYS_ACTORS", "PATHWAYS_PARTIES",
                 "PATHWAYS_DEFINITIONS", "PATHWAYS_AUDIT_KEY"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


@pytest.mark.parametrize(("where", "code"), blocks("python"), ids=lambda v: str(v)[:30])
def test_python_examples_run(workdir: Path, where: str, code: str) -> None:
    exec(compile(code, where, "exec"), {"__name__": "__example__"})  # noqa: S102 - our own docs


@pytest.mark.parametrize(("where", "script"), blocks("console"), ids=lambda v: str(v)[:30])
def test_console_examples_run(workdir: Path, where: str, script: str) -> None:
    env: dict[str, str] = {}
    for line in script.splitlines():
        if not line.startswith("$ "):
            continue
        words = shlex.split(line[2:])
        if words[0] == "export":
            name, _, value = words[1].partition("=")
            env[name] = value
            continue
        assert words[0] == "pathways", line
        args = [os.path.expandvars(w) if not w.startswith("$") else env[w[1:]] for w in words[1:]]
        result = CliRunner().invoke(cli, args, env=env, catch_exceptions=False)
        assert result.exit_code == 0, (where, line, result.output)
        if "--json" in args and args[0] == "start":
            env["ID"] = json.loads(result.stdout)["id"]


YAML_KINDS = ("definition", "transition", "deadline", "handover", "scenario", "parties",
              "actors", "deployment")


def _kind(body: str) -> str:
    first = body.splitlines()[0] if body else ""
    kind = first.removeprefix("# ").strip()
    assert first.startswith("# "), f"a YAML example must start with `# KIND`; this one starts {first!r}"
    assert kind in YAML_KINDS, (
        f"a YAML example must start with `# KIND` ({', '.join(YAML_KINDS)}) so it can be run; "
        f"this one starts {first!r}")
    return kind


def _doc_definitions(root: Path) -> Path:
    """The docs' complete definitions as a definitions folder, with shipped templates."""
    folder = root / "doc-definitions"
    for _, body in blocks("yaml"):
        if _kind(body) == "definition":
            import yaml

            pathway = yaml.safe_load(body)["id"]
            shutil.copytree(DEFINITIONS / "mistrivsel_referral" / "templates",
                            folder / pathway / "templates")
            (folder / pathway / "pathway.yaml").write_text(body, encoding="utf-8")
    return folder


@pytest.mark.parametrize(("where", "body"), blocks("yaml"), ids=lambda v: str(v)[:30])
def test_yaml_examples_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str,
                           body: str) -> None:
    """Definitions pass `check` without warnings, snippets validate as what they are, scenarios
    pass against the shipped definitions and the docs' own, deployment files load."""
    kind = _kind(body)
    path = tmp_path / f"{kind}.yaml"
    path.write_text(body, encoding="utf-8")
    if kind == "definition":
        folder = _doc_definitions(tmp_path)
        result = CliRunner().invoke(cli, ["check", str(folder)])
        assert result.exit_code == 0, (where, result.output)
        assert "warning" not in result.output, (where, result.output)
    elif kind in ("transition", "deadline", "handover"):
        from pathways_engine.definition.files import load_model
        from pathways_engine.definition.spec import DeadlineSpec
        from pathways_engine.definition.spec import HandoverSpec
        from pathways_engine.definition.spec import TransitionSpec

        models = {"transition": TransitionSpec, "deadline": DeadlineSpec,
                  "handover": HandoverSpec}
        load_model(path, models[kind])
    elif kind == "scenario":
        from pathways.scenarios import run_file

        outcome = run_file(path, (DEFINITIONS, _doc_definitions(tmp_path)),
                           DEFINITIONS / "parties.yaml")
        assert outcome.failures == [], (where, outcome.failures)
    elif kind == "parties":
        from pathways_notifications.parties import load_parties

        assert load_parties(path).by_id
    elif kind == "actors":
        from pathways.actors import load_actors

        load_actors(path)
    else:
        from pathways.config import load_deployment

        monkeypatch.setenv("PATHWAYS_DEPLOYMENT", str(path))
        deployment = load_deployment()
        assert deployment is not None
        assert deployment.switches == ("dk_l45",)


def test_every_test_reliability_md_names_exists() -> None:
    """RELIABILITY.md's "proven by" column names real tests (file, and test where given)."""
    text = (ROOT / "RELIABILITY.md").read_text(encoding="utf-8")
    missing = []
    for cell in re.findall(r"`(test_\w+\.py)((?:::\w+)?)`((?:, `::\w+`)*)", text):
        module, first, more = cell
        path = ROOT / "tests" / module
        if not path.is_file():
            missing.append(module)
            continue
        source = path.read_text(encoding="utf-8")
        names = [first.removeprefix("::")] if first else []
        names += re.findall(r"`::(\w+)`", more)
        missing += [f"{module}::{n}" for n in names if f"def {n}(" not in source]
    assert missing == []


def test_the_template_budget_in_the_coordinators_guide_is_the_one_rendering_keeps() -> None:
    from pathways_notifications import rendering

    guide = " ".join((ROOT / "docs" / "definitions.md").read_text(encoding="utf-8").split())
    for stated in (f"{rendering.MAX_STEPS:,} template lines", f"{rendering.MAX_SECONDS:g} seconds",
                   f"{rendering.MAX_SIZE:,} characters in any value",
                   f"{rendering.MAX_MADE:,} characters made by all its filters"):
        assert stated in guide, stated
