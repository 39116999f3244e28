"""pathways: deadline-aware cross-sector pathways, as a library and the `pathways` CLI.

The library names are imported on first use, so `pathways --help` starts fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pathways_engine.lazy import lazy_exports

if TYPE_CHECKING:
    from pathways_engine import Database as Database
    from pathways_engine import FixedClock as FixedClock
    from pathways_engine import PathwayEngine as PathwayEngine
    from pathways_engine import PathwaysError as PathwaysError
    from pathways_engine import Registry as Registry
    from pathways_engine import Step as Step
    from pathways_engine import StepRequest as StepRequest

    from .app import App as App
    from .config import Settings as Settings

_EXPORTS = {"Database": "pathways_engine", "FixedClock": "pathways_engine",
            "PathwayEngine": "pathways_engine", "PathwaysError": "pathways_engine",
            "Registry": "pathways_engine", "Step": "pathways_engine",
            "StepRequest": "pathways_engine", "App": "pathways.app", "Settings": "pathways.config"}
__all__ = sorted(_EXPORTS)

__getattr__ = lazy_exports(__name__, _EXPORTS)
