"""Areas: the municipality or region an instance belongs to, which routes its messages."""

from __future__ import annotations

import re

from .errors import InvalidArgument

AREA_PATTERN = r"^[a-z][a-z0-9_-]{0,63}$"
_AREA = re.compile(AREA_PATTERN)


def check_area(area: str | None, label: str = "--area") -> str | None:
    if area is not None and not _AREA.match(area):
        raise InvalidArgument(f"{label} {area!r}: use a lower-case code such as 'norddjurs' "
                              "(letters, digits, '-' and '_')")
    return area
