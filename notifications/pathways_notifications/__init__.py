"""pathways_notifications: renders (Jinja2) and delivers the messages the engine queues.

Depends on pathways_engine only; never changes an instance's state.
"""

from .composer import Composer as Composer
from .delivery import DeliveryReport as DeliveryReport
from .delivery import deliver as deliver
from .parties import Parties as Parties
from .parties import load_parties as load_parties
from .rendering import render as render
