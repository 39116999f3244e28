"""pathways: deadline-aware cross-sector pathways, as a library and the `pathways` CLI.

The library names are imported on first use, so `pathways --help` starts fast.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING
from typing import Any

if TYPE_CHECKING:
    from pathways_engine import Database as Database
    from pathways_engine import FixedClock as FixedClock
    from pathways_engine import PathwayEngine as PathwayEngine
    from pathways_engine import PathwaysError as PathwaysError
    from pathways_engine import Registry as Registry

    from .app import App as App
    from .config import Settings as Settings

_EXPORTS = {"Database": "pathways_engine", "FixedClock": "pathways_engine",
            "PathwayEngine": "pathways_engine", "PathwaysError": "pathways_engine",
            "Registry": "pathways_engine", "App": "pathways.app", "Settings": "pathways.config"}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'pathways' has no attribute {name!r}")
    return getattr(import_module(module), name)
