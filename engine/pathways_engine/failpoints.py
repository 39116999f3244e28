"""Named fail points for crash and race tests, switched on only by an environment variable.

Modelled on TiKV's fail-rs and FoundationDB's buggify: the code marks the places where a crash
or a race matters (`failpoints.hit("advance.before_commit")`), and a test process sets
`PATHWAYS_FAILPOINTS` to act there. Unset (always, outside tests) a hit costs one dict lookup.

    PATHWAYS_FAILPOINTS="advance.before_commit=kill"      SIGKILL this process at the point
    PATHWAYS_FAILPOINTS="tick.fired=kill@5"               ... at the fifth hit (1-based)
    PATHWAYS_FAILPOINTS="advance.after_read=wait:/tmp/go" wait until the file exists (races);
                                                          /tmp/go.PID.waiting says it waits
Several points are separated by ';'.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

ENV = "PATHWAYS_FAILPOINTS"
_WAIT_LIMIT_SECONDS = 60.0


def _parse(text: str) -> dict[str, str]:
    actions = {}
    for item in filter(None, (part.strip() for part in text.split(";"))):
        name, _, action = item.partition("=")
        actions[name.strip()] = action.strip()
    return actions


_actions: dict[str, str] = _parse(os.environ.get(ENV, ""))
_hits: dict[str, int] = {}


def configure(text: str) -> None:
    """Replace the active fail points (tests in the same process)."""
    global _actions
    _actions = _parse(text)
    _hits.clear()


def hit(name: str) -> None:
    action = _actions.get(name)
    if action is None:
        return
    _hits[name] = count = _hits.get(name, 0) + 1
    if action == "kill" or (action.startswith("kill@") and count == int(action[5:])):
        os.kill(os.getpid(), signal.SIGKILL)
    elif action.startswith("wait:"):
        flag, limit = Path(action[5:]), time.monotonic() + _WAIT_LIMIT_SECONDS
        flag.with_name(f"{flag.name}.{os.getpid()}.waiting").touch()  # tells the test "I am here"
        while not flag.exists() and time.monotonic() < limit:
            time.sleep(0.01)
    elif action == "raise":
        raise RuntimeError(f"fail point {name}")
