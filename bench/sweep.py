"""`tick` over N due timers among a small and a large population: cost follows the due work.

Baseline: the same number of due timers among a population no larger than the due work.

Each population is seeded once; every round ticks a fresh copy of it in a fresh process (a
tick changes what it fires), small and large taking turns, and a figure is the median round.
One tick of 1,000 timers lasts about a tenth of a second, so a single round moved the rate
between 5,200 and 9,900 timers/s from one run to the next on this machine.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

from .common import ROOT
from .common import Figure
from .common import sqlite_url
from .seeding import seed

ROUNDS = {"quick": 5, "full": 3}


def tick_once(url: str) -> dict[str, float]:
    out = subprocess.run([sys.executable, "-m", "bench.tick_worker", url], check=True,
                         capture_output=True, text=True, cwd=ROOT)
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def _copy(url: str, name: str) -> str:
    """A copy of the seeded database at `url` beside it (seeding closed it: no WAL left),
    flushed to disk: else the tick's first checkpoint, which syncs the database file, would
    write out the whole fresh copy (1.2 GB at a million instances), which a deployment's
    database, long on disk, never asks of it."""
    seeded = Path(url.removeprefix("sqlite:///"))
    copy = seeded.with_name(name)
    for suffix in ("-wal", "-shm"):
        Path(f"{copy}{suffix}").unlink(missing_ok=True)
    shutil.copyfile(seeded, copy)
    with copy.open("rb+") as written:
        os.fsync(written.fileno())
    return f"sqlite:///{copy}"


def run(scale: str) -> list[Figure]:
    due, population = (1_000, 100_000) if scale == "quick" else (10_000, 1_000_000)
    rounds: dict[int, list[dict[str, float]]] = {due: [], population: []}
    with sqlite_url() as small_url, sqlite_url() as large_url:
        urls = {due: small_url, population: large_url}
        for size, url in urls.items():
            seed(url, size, due)
        for _ in range(ROUNDS[scale]):
            for size, url in urls.items():
                result = tick_once(_copy(url, "round.db"))
                assert result["fired"] == due, result
                rounds[size].append(result)
    small = statistics.median(r["seconds"] for r in rounds[due])
    large = statistics.median(r["seconds"] for r in rounds[population])
    peak = {size: max(r["peak_mb"] for r in found) for size, found in rounds.items()}
    note = f"median of {ROUNDS[scale]} rounds, each a fresh copy in a fresh process"
    return [
        Figure("sweep", f"SQLite: tick, {due:,} due among {population:,}", large, "s",
               f"{due:,} due among {due:,}", small, "ratio <= 1.3", large / small <= 1.3, note),
        Figure("sweep", f"SQLite: timers fired per second ({due:,} among {population:,})",
               due / large, "timers/s", f"same, among {due:,}", due / small, ">= 8000/s",
               due / large >= 8000, note),
        Figure("sweep", f"SQLite: tick peak memory ({population:,} instances)",
               peak[population], "MB RSS", f"among {due:,}", peak[due], "<= 200 MB",
               peak[population] <= 200, "the largest round"),
    ]
