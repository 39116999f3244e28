"""Helpers shared by the tests (importable, unlike conftest)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner
from click.testing import Result

ROOT = Path(__file__).resolve().parent.parent
DEFINITIONS = ROOT / "definitions"
ACTORS = ROOT / "tests" / "actors.yaml"


class Cli:
    """Runs the real `pathways` command against one database."""

    def __init__(self, url: str, definitions: Path = DEFINITIONS) -> None:
        self.url = url
        self.definitions = definitions

    def __call__(self, *args: str, code: int | None = 0) -> Result:
        from pathways.cli import cli

        result = CliRunner().invoke(
            cli, ["--db", self.url, "--definitions", str(self.definitions), "--actors",
                  str(ACTORS), *args],
            catch_exceptions=False)
        if code is not None:
            assert result.exit_code == code, (result.exit_code, result.output, result.stderr)
        return result


def run_killed(url: str, failpoints: str, *args: str,
               definitions: Path = DEFINITIONS) -> subprocess.CompletedProcess[str]:
    """Run the real `pathways` CLI in a child process with fail points switched on."""
    env = {**os.environ, "PATHWAYS_FAILPOINTS": failpoints}
    command = [sys.executable, "-m", "pathways", "--db", url, "--definitions", str(definitions),
               "--actors", str(ACTORS), *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=120, cwd=ROOT)


def tamper(url: str, *statements: str) -> None:
    """What someone with the database owner's rights can do: drop the guard and edit rows."""
    from pathways_engine import Database
    from sqlalchemy import text

    db = Database(url)
    with db.engine.begin() as conn:
        if db.engine.dialect.name == "postgresql":
            conn.execute(text("ALTER TABLE audit DISABLE TRIGGER audit_entries_append_only"))
        else:
            conn.execute(text("DROP TRIGGER IF EXISTS audit_entries_no_update"))
            conn.execute(text("DROP TRIGGER IF EXISTS audit_entries_no_delete"))
        for sql in statements:
            conn.execute(text(sql))
    db.dispose()


def version_of(text: str) -> int:
    """The `version:` of a definition's text (shipped definitions move on; tests follow)."""
    import re

    found = re.search(r"^version: (\d+)$", text, re.MULTILINE)
    assert found, "no version: line"
    return int(found.group(1))


def with_version(text: str, version: int) -> str:
    import re

    return re.sub(r"^version: \d+$", f"version: {version}", text, count=1, flags=re.MULTILINE)


def copy_pathway(folder: Path) -> Path:
    """Copy the shipped pathway named like `folder` there, with every pathway it hands the child
    over to next to it (a handover to a pathway that is not loaded is refused)."""
    import shutil

    import yaml

    shutil.copytree(DEFINITIONS / folder.name, folder)
    data = yaml.safe_load((folder / "pathway.yaml").read_text(encoding="utf-8"))
    for handover in data.get("handovers") or []:
        target = folder.parent / handover["start"]
        if not target.exists():
            copy_pathway(target)
    return folder
