"""pathways_engine: definitions compiled to python-statemachine classes, run on SQLAlchemy.

Never imports pathways_notifications or the CLI; see engine/README.md for the rules.
"""

from .errors import PathwaysError as PathwaysError
from .loader import Definition as Definition
from .ports import Clock as Clock
from .ports import FixedClock as FixedClock
from .ports import SystemClock as SystemClock
from .registry import Registry as Registry
from .runtime import PathwayEngine as PathwayEngine
from .runtime import Step as Step
from .store.database import Database as Database
