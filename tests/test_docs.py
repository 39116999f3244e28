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
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


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
