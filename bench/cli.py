"""Wall time of `pathways show` and `pathways advance` against a bare `import sqlalchemy, click`."""

from __future__ import annotations

import os
import subprocess
import sys

from .common import DEFINITIONS
from .common import ROOT
from .common import Figure
from .common import best_of
from .common import make_engine
from .common import seconds
from .common import sqlite_url
from .common import start_children


def _wall(args: list[str]) -> float:
    env = {**os.environ, "PATHWAYS_ACTORS": str(DEFINITIONS / "actors.yaml")}

    def once() -> float:
        return seconds(lambda: subprocess.run(args, check=True, capture_output=True, env=env,
                                              cwd=ROOT))
    return once()


def run(scale: str) -> list[Figure]:
    repeats = 3 if scale == "quick" else 9
    python = sys.executable
    with sqlite_url() as url:
        engine = make_engine(url)
        ids = start_children(engine, repeats + 1)
        engine.db.dispose()
        base = [python, "-m", "pathways", "--db", url]
        floor = best_of(repeats, lambda: _wall([python, "-c", "import sqlalchemy, click"]))
        show = best_of(repeats, lambda: _wall([*base, "show", ids[0]]))
        pending = iter(ids[1:])
        advance = best_of(repeats, lambda: _wall(
            [*base, "advance", next(pending), "triage_to_ltt", "--as", "ppr.anne", "--role", "ppr"]))
    return [Figure("cli", name, value * 1000, "ms wall", 'python -c "import sqlalchemy, click"',
                   floor * 1000, "<= 1.5 x baseline", value <= 1.5 * floor)
            for name, value in (("pathways show ID", show), ("pathways advance ID EVENT", advance))]
