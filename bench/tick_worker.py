"""One `tick` in its own process (so its peak memory is its own); prints JSON."""

from __future__ import annotations

import datetime as dt
import json
import resource
import sys
import time
from pathlib import Path

from .common import make_engine
from .seeding import DUE


def main() -> None:
    url = sys.argv[1]
    now = DUE + dt.timedelta(hours=1)
    from pathways_engine import FixedClock
    from pathways_engine.runtime.sweep import tick

    engine = make_engine(url, FixedClock(now))
    began = time.perf_counter()
    summary = tick(engine, now)
    elapsed = time.perf_counter() - began
    print(json.dumps({"seconds": elapsed, "fired": summary.total, "peak_mb": peak_mb()}))


def peak_mb() -> float:
    """This process's peak resident memory. On Linux, getrusage's ru_maxrss carries the
    parent's peak over exec (a bench that seeded 100,000 instances reported its own 153 MB
    for a tick that used 90), so read the peak of this process's own memory map instead."""
    try:
        status = Path("/proc/self/status").read_text(encoding="ascii")
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    [line] = [line for line in status.splitlines() if line.startswith("VmHWM:")]
    return int(line.split()[1]) / 1024


if __name__ == "__main__":
    main()
