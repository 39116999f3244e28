"""pathways_engine: definitions compiled to python-statemachine classes, run on SQLAlchemy.

Never imports pathways_notifications or the CLI; see engine/README.md for the rules.
Names are imported on first use (PEP 562), so a command that only needs the errors does not
pay for SQLAlchemy, pydantic and python-statemachine at start-up (bench/cli.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .lazy import lazy_exports

if TYPE_CHECKING:
    from .definition.loader import Definition as Definition
    from .definition.registry import Registry as Registry
    from .errors import PathwaysError as PathwaysError
    from .ports import Clock as Clock
    from .ports import FixedClock as FixedClock
    from .ports import SystemClock as SystemClock
    from .runtime.engine import PathwayEngine as PathwayEngine
    from .runtime.engine import StepRequest as StepRequest
    from .runtime.step import Step as Step
    from .store.database import Database as Database

_EXPORTS = {
    "PathwaysError": ".errors", "Definition": ".definition.loader", "Clock": ".ports",
    "FixedClock": ".ports", "SystemClock": ".ports", "Registry": ".definition.registry",
    "PathwayEngine": ".runtime.engine", "Step": ".runtime.step",
    "StepRequest": ".runtime.engine", "Database": ".store.database",
}
__all__ = sorted(_EXPORTS)

__getattr__ = lazy_exports(__name__, _EXPORTS)
