"""Calendar arithmetic for ages and periods (dateutil does the month and year steps)."""

from __future__ import annotations

import datetime as dt

from dateutil.relativedelta import relativedelta

__all__ = ["age_in_months", "age_in_years", "period_end"]


def age_in_years(birth_date: dt.date, on: dt.date) -> int:
    """Whole years completed on `on`: the birthday itself counts (a person is 18 on it).

    Someone born on 29 February turns a year older on 1 March in common years.
    """
    return on.year - birth_date.year - ((on.month, on.day) < (birth_date.month, birth_date.day))


def age_in_months(birth_date: dt.date, on: dt.date) -> int:
    """Whole months completed on `on` (a child born on 31 January is one month old on 28 or
    29 February, as calendar months count)."""
    delta = relativedelta(on, birth_date)
    return delta.years * 12 + delta.months


def period_end(start: dt.date, years: int = 0, months: int = 0, days: int = 0) -> dt.date:
    """The last day of a period that starts on `start` and lasts so many years, months and days.

    The period ends the day before its anniversary (`start` plus the years and months, then the
    days). An anniversary on a day its month lacks (29 February in a common year, 31 April) is
    the first day of the next month, so a year from 29 February 2028 ends on 28 February 2029,
    a year from 1 March 2027 on 29 February 2028, and six months from 31 August on the last day
    of February. A year is then always 365 or 366 days, and a period that starts the day after
    another ends leaves no day out and none twice.

    >>> period_end(dt.date(2026, 12, 1), years=1)
    datetime.date(2027, 11, 30)
    >>> period_end(dt.date(2028, 2, 29), years=1)
    datetime.date(2029, 2, 28)
    """
    anniversary = start + relativedelta(years=years, months=months)
    if anniversary.day != start.day:
        # relativedelta kept to the month's last day; the anniversary is the day after it.
        anniversary += dt.timedelta(days=1)
    return anniversary + dt.timedelta(days=days - 1)
