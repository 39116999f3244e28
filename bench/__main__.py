"""`python -m bench [--scale quick|full] [--only NAME,...]`: print a table, write JSON."""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path

from .common import ROOT
from .common import Figure
from .common import machine
from .common import python_loop_seconds

BENCHES = ["definitions", "cli", "transitions", "sweep", "peer", "scaleout", "report", "http"]


def table(figures: list[Figure]) -> str:
    lines = [f"{'benchmark':<64} {'value':>12}  {'baseline':>12} {'ratio':>8}  goal",
             "-" * 110]
    for f in figures:
        base = f"{f.baseline:12.1f}" if f.baseline is not None else " " * 12
        ratio = f"{f.ratio:8.2f}" if f.ratio is not None else " " * 8
        verdict = "" if f.met is None else (" met" if f.met else " MISSED")
        lines.append(f"{f.name[:64]:<64} {f.value:12.1f}  {base} {ratio}  {f.goal}{verdict}")
        lines.append(f"{'':<4}{f.unit}; baseline: {f.baseline_name}" + (f"; {f.note}" if f.note else ""))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--scale", choices=["quick", "full"], default="full",
                        help="full: the sizes issue 8 names (about 15 minutes); quick: a smoke run")
    parser.add_argument("--only", default="", help=f"comma-separated subset of {', '.join(BENCHES)}")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "latest.json")
    args = parser.parse_args(argv)
    chosen = [b for b in BENCHES if not args.only or b in args.only.split(",")]
    unknown = set(filter(None, args.only.split(","))) - set(BENCHES)
    if unknown:
        parser.error(f"unknown benchmark {sorted(unknown)[0]!r}; choose from {', '.join(BENCHES)}")
    figures: list[Figure] = []
    speed = [python_loop_seconds()]
    for name in chosen:
        print(f"running {name} ({args.scale}) ...", file=sys.stderr, flush=True)
        module = importlib.import_module(f"bench.{name}")
        new = module.run(args.scale)
        print(table(new), flush=True)
        figures += new
    speed.append(python_loop_seconds())
    print("\n" + table(figures))
    print(f"\nthis machine: ten million additions in a Python loop took {speed[0]:.2f} s "
          f"before the run and {speed[1]:.2f} s after it (0.7 s on a fast day here); "
          "figures in ms and per second move with it")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"machine": {**machine(), "python_loop_seconds": speed},
                                    "scale": args.scale,
                                    "figures": [f.as_dict() for f in figures]}, indent=2))
    print(f"\nwritten to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
