"""pathways_notifications: renders (Jinja2) and delivers the messages the engine queues.

Depends on pathways_engine only; never changes an instance's state. Names are imported on
first use, so loading the parties file does not import Jinja2.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING
from typing import Any

if TYPE_CHECKING:
    from .composer import Composer as Composer
    from .delivery import DeliveryReport as DeliveryReport
    from .delivery import deliver as deliver
    from .parties import Parties as Parties
    from .parties import load_parties as load_parties
    from .rendering import render as render

_EXPORTS = {"Composer": ".composer", "DeliveryReport": ".delivery", "deliver": ".delivery",
            "Parties": ".parties", "load_parties": ".parties", "render": ".rendering"}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'pathways_notifications' has no attribute {name!r}")
    return getattr(import_module(module, __name__), name)
