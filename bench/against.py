"""`python -m bench.against REV [--rounds N]`: CLI `advance` wall time here against commit REV.

A change to start-up moves a command by a few per cent on a machine whose speed drifts by more
than that from one minute to the next; alternating the baseline (`import sqlalchemy, click`),
REV and this checkout round by round puts the drift on all three alike. REV runs from a git
worktree of its own on this environment's interpreter and packages (its folders first on the
path), against the same database, so it must share this checkout's schema version.
"""

from __future__ import annotations

import argparse
import compileall
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from .common import DEFINITIONS
from .common import ROOT
from .common import make_engine
from .common import seconds
from .common import sqlite_url
from .common import start_children

FOLDERS = ("pathways", "engine", "notifications")


def _run(args: list[str], env: dict[str, str], cwd: Path) -> float:
    def once() -> None:
        done = subprocess.run(args, capture_output=True, env=env, cwd=cwd, text=True)
        if done.returncode:
            raise SystemExit(f"{' '.join(args[:4])} ... in {cwd} failed: "
                             f"{(done.stderr or done.stdout).strip().splitlines()[-1:]}")
    return seconds(once)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.against", description=__doc__)
    parser.add_argument("rev", help="the commit to compare with, e.g. HEAD~3")
    parser.add_argument("--rounds", type=int, default=12)
    args = parser.parse_args(argv)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PATHWAYS_ACTORS"] = str(DEFINITIONS / "actors.yaml")
    with tempfile.TemporaryDirectory(prefix="pathways-against-") as scratch, \
            sqlite_url() as url:
        tree = Path(scratch) / "tree"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(tree),
                        args.rev], check=True)
        try:
            env["PATHWAYS_CACHE_DIR"] = str(Path(scratch) / "cache")
            theirs = {**env, "PYTHONPATH": os.pathsep.join(
                [str(tree), str(tree / "engine"), str(tree / "notifications")])}
            for root in (ROOT, tree):  # bytecode, as an installed wheel has it
                for folder in FOLDERS:
                    compileall.compile_dir(root / folder, quiet=1)
            engine = make_engine(url)
            pending = iter(start_children(engine, 2 * args.rounds + 2))
            engine.db.dispose()
            python = sys.executable

            def advance() -> list[str]:
                return [python, "-m", "pathways", "--db", url, "advance", next(pending),
                        "triage_to_ppr", "--as", "ppr.anne", "--role", "ppr"]

            _run(advance(), theirs, tree)  # warm: holiday cache, page cache
            _run(advance(), env, ROOT)
            walls: dict[str, list[float]] = {"baseline": [], args.rev: [], "this checkout": []}
            for _ in range(args.rounds):
                walls["baseline"].append(_run([python, "-c", "import sqlalchemy, click"], env,
                                              ROOT))
                walls[args.rev].append(_run(advance(), theirs, tree))
                walls["this checkout"].append(_run(advance(), env, ROOT))
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)],
                           check=False)
            shutil.rmtree(tree, ignore_errors=True)
    floor = statistics.median(walls["baseline"])
    print(f"pathways advance, {args.rounds} interleaved rounds (ms wall)")
    for name, values in walls.items():
        median = statistics.median(values)
        print(f"  {name:<16} median {median * 1000:7.1f}  best {min(values) * 1000:7.1f}  "
              f"median / baseline median {median / floor:5.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
