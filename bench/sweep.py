"""`tick` over N due timers among a small and a large population: cost follows the due work.

Baseline: the same number of due timers among a population no larger than the due work.
"""

from __future__ import annotations

import json
import subprocess
import sys

from .common import ROOT
from .common import Figure
from .common import sqlite_url
from .seeding import seed


def tick_once(url: str) -> dict[str, float]:
    out = subprocess.run([sys.executable, "-m", "bench.tick_worker", url], check=True,
                         capture_output=True, text=True, cwd=ROOT)
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def run(scale: str) -> list[Figure]:
    due, population = (1_000, 100_000) if scale == "quick" else (10_000, 1_000_000)
    results = {}
    for size in (due, population):
        with sqlite_url() as url:
            seed(url, size, due)
            results[size] = tick_once(url)
            assert results[size]["fired"] == due, results[size]
    small, large = results[due], results[population]
    rate = due / large["seconds"]
    return [
        Figure("sweep", f"SQLite: tick, {due:,} due among {population:,}", large["seconds"], "s",
               f"{due:,} due among {due:,}", small["seconds"], "ratio <= 1.3",
               large["seconds"] / small["seconds"] <= 1.3),
        Figure("sweep", f"SQLite: timers fired per second ({due:,} among {population:,})", rate,
               "timers/s", f"same, among {due:,}", due / small["seconds"], ">= 8000/s",
               rate >= 8000),
        Figure("sweep", f"SQLite: tick peak memory ({population:,} instances)", large["peak_mb"],
               "MB RSS", f"among {due:,}", small["peak_mb"], "<= 200 MB", large["peak_mb"] <= 200),
    ]
