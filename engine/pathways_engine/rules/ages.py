"""Age on a day, the way eligibility rules and guards (`age_years`, `age_months`) count it."""

from __future__ import annotations

import datetime as dt


def age_on(birth_date: dt.date | None, day: dt.date) -> tuple[int | None, int | None]:
    """(whole years, whole months) of age on `day`. Not dateutil's relativedelta: it counts a
    child born on 29 February as 18 on 28 February, one born on 31 January as a month old on 28
    February; here a birthday is reached on the day after, as the shipped rules assume."""
    if birth_date is None:
        return None, None
    months = (day.year - birth_date.year) * 12 + day.month - birth_date.month
    if day.day < birth_date.day:
        months -= 1
    return months // 12, months
