"""pathways: deadline-aware cross-sector pathways, as a library and the `pathways` CLI."""

from pathways_engine import Database as Database
from pathways_engine import FixedClock as FixedClock
from pathways_engine import PathwayEngine as PathwayEngine
from pathways_engine import PathwaysError as PathwaysError
from pathways_engine import Registry as Registry

from .app import App as App
from .config import Settings as Settings
