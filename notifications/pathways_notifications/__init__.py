"""pathways_notifications: renders (Jinja2) and delivers the messages the engine queues.

Depends on pathways_engine only; never changes an instance's state. Names are imported on
first use, so loading the parties file does not import Jinja2.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pathways_engine.lazy import lazy_exports

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

__getattr__ = lazy_exports(__name__, _EXPORTS)
