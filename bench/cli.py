"""Wall time of `pathways --help`, `show` and `advance` against `import sqlalchemy, click`.

Each figure is the best of several runs, with the baseline measured between them, in the
same run: start-up is mostly imports, so the ratio says what pathways adds to what any
command on SQLAlchemy and click pays. The holiday dates a deadline needs are kept between runs
in a cache folder of this run's own (engine rules/holiday_cache.py): the first `advance` fills
it, as the first command on a machine does, and the best run is a warm one, as bytecode is.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile

from .common import DEFINITIONS
from .common import ROOT
from .common import Figure
from .common import make_engine
from .common import seconds
from .common import sqlite_url
from .common import start_children


def _wall(args: list[str], cache: str) -> float:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PATHWAYS_ACTORS"] = str(DEFINITIONS / "actors.yaml")
    env["PATHWAYS_CACHE_DIR"] = cache

    def once() -> float:
        return seconds(lambda: subprocess.run(args, check=True, capture_output=True, env=env,
                                              cwd=ROOT))
    return once()


def _compile_bytecode() -> None:
    """Our modules' bytecode, as an installed wheel has it (and as SQLAlchemy and click have)."""
    import compileall

    for folder in ("pathways", "engine", "notifications"):
        compileall.compile_dir(ROOT / folder, quiet=1)


def run(scale: str) -> list[Figure]:
    _compile_bytecode()
    repeats = 5 if scale == "quick" else 15
    python = sys.executable
    with sqlite_url() as url, tempfile.TemporaryDirectory(prefix="pathways-cache-") as cache:
        engine = make_engine(url)
        ids = start_children(engine, repeats * 2 + 1)
        engine.db.dispose()
        base = [python, "-m", "pathways", "--db", url]
        pending = iter(ids[1:])
        commands = {
            "pathways --help": ([*base, "--help"], 1.3),
            "pathways show ID": ([*base, "show", ids[0]], 1.5),
            "pathways advance ID EVENT": (None, 1.7),
        }
        floors, values = [], {name: [] for name in commands}
        for _ in range(repeats):  # interleaved, so a noisy moment hits all of them alike
            floors.append(_wall([python, "-c", "import sqlalchemy, click"], cache))
            for name, (args, _) in commands.items():
                if args is None:
                    args = [*base, "advance", next(pending), "triage_to_ppr", "--as", "ppr.anne",
                            "--role", "ppr"]
                values[name].append(_wall(args, cache))
    floor = min(floors)
    return [Figure("cli", name, min(values[name]) * 1000, "ms wall",
                   'python -c "import sqlalchemy, click"', floor * 1000,
                   f"<= {goal} x baseline", min(values[name]) <= goal * floor)
            for name, (_, goal) in commands.items()]
