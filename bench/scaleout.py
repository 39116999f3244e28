"""1, 2 and 4 `tick` processes at once on PostgreSQL over the same due timers.

Throughput against one worker in the same run, and the check that matters more: every timer
fired exactly once (SKIP LOCKED hands each batch to one worker).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

from sqlalchemy import create_engine
from sqlalchemy import text

from .common import ROOT
from .common import Figure
from .common import postgres_reachable
from .common import postgres_url
from .seeding import seed


def _workers(url: str, count: int) -> tuple[float, int, int]:
    began = time.perf_counter()
    procs = [subprocess.Popen([sys.executable, "-m", "bench.tick_worker", url], cwd=ROOT,
                              stdout=subprocess.PIPE, text=True) for _ in range(count)]
    fired = sum(json.loads(p.communicate()[0])["fired"] for p in procs)
    elapsed = time.perf_counter() - began
    engine = create_engine(url)
    with engine.connect() as conn:
        entries = conn.execute(text("select count(*) from audit where kind = 'timer_reminder'")).scalar_one()
    engine.dispose()
    return elapsed, fired, entries


def run(scale: str) -> list[Figure]:
    if not postgres_reachable():
        return []
    due = 2_000 if scale == "quick" else 100_000
    figures, single = [], None
    for workers in (1, 2, 4):
        with postgres_url() as url:
            seed(url, due, due)
            elapsed, fired, entries = _workers(url, workers)
        rate = due / elapsed
        single = single or rate
        exactly_once = fired == due == entries
        figures.append(Figure("scaleout", f"PostgreSQL: {workers} tick worker(s), {due:,} due timers",
                              rate, "timers/s (wall, incl. start-up)", "1 worker", single,
                              "every timer fired exactly once", exactly_once,
                              note=f"fired {fired:,}, audit entries {entries:,}"))
    return figures
