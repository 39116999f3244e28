"""Helpers shared by the tests (importable, unlike conftest)."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner
from click.testing import Result

ROOT = Path(__file__).resolve().parent.parent
DEFINITIONS = ROOT / "definitions"


class Cli:
    """Runs the real `pathways` command against one database."""

    def __init__(self, url: str, definitions: Path = DEFINITIONS) -> None:
        self.url = url
        self.definitions = definitions

    def __call__(self, *args: str, code: int | None = 0) -> Result:
        from pathways.cli import cli

        result = CliRunner().invoke(
            cli, ["--db", self.url, "--definitions", str(self.definitions), *args],
            catch_exceptions=False)
        if code is not None:
            assert result.exit_code == code, (result.exit_code, result.output, result.stderr)
        return result
