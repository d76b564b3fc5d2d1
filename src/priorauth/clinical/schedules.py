"""Dosing schedules as the days doses fall on, and what a policy asks of them.

A schedule is read as the days (0 = the first dose) its doses fall on: cycles repeat their dose
days; an induction gives its days and is followed by doses every `interval` days; an interval
alone gives a dose every so many days. Two questions are then plain arithmetic: how many doses
fall in any window of so many days (the policy's "N doses in each D-day cycle"), and how many
doses fall in an authorization period.

>>> dose_days(cycle_length=21, cycle_days=(1, 8), horizon=43)
[0, 7, 21, 28, 42]
>>> most_in_window([0, 7, 21, 28, 42], 21)
2
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Sequence
from fractions import Fraction

from dateutil.relativedelta import relativedelta

__all__ = [
    "dose_days",
    "doses_per_day",
    "fewest_days",
    "gaps",
    "monthly",
    "most_in_window",
    "window_bounds",
]

_MONTH_DAYS = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def fewest_days(months: int) -> int:
    """The fewest days `months` calendar months span (6 months: 181 days, February to July),
    for comparing a calendar interval with one in days without reading it as sparser than it
    is.

    >>> fewest_days(1), fewest_days(6), fewest_days(12)
    (28, 181, 365)
    """
    years, rest = divmod(months, 12)
    if rest == 0:
        return 365 * years
    shortest = min(sum(_MONTH_DAYS[(start + i) % 12] for i in range(rest)) for start in range(12))
    return 365 * years + shortest


def monthly(first: dt.date, months: int, through: dt.date) -> list[dt.date]:
    """The dates from `first` every `months` calendar months, up to `through` (a 31 January
    start falls on the last day of shorter months).

    >>> monthly(dt.date(2026, 5, 4), 6, dt.date(2027, 5, 3))
    [datetime.date(2026, 5, 4), datetime.date(2026, 11, 4)]
    """
    dates: list[dt.date] = []
    step = 0
    while (day := first + relativedelta(months=step * months)) <= through:
        dates.append(day)
        step += 1
    return dates


def dose_days(
    *,
    cycle_length: int | None = None,
    cycle_days: Sequence[int] | None = None,
    induction_days: Sequence[int] | None = None,
    interval: int | None = None,
    horizon: int,
) -> list[int]:
    """The days (from the first dose, day 0) on which doses fall, before `horizon`.

    Cycles need their days (1-based within the cycle); an induction without an interval gives
    its days alone; an interval after an induction starts from the last induction dose.
    """
    days: list[int] = []
    if cycle_length is not None and cycle_days:
        first = cycle_days[0]
        start = 0
        while start < horizon:
            days.extend(start + d - first for d in cycle_days if start + d - first < horizon)
            start += cycle_length
        return days
    if induction_days:
        days = [d - induction_days[0] for d in induction_days if d - induction_days[0] < horizon]
    if interval is not None:
        day = days[-1] + interval if days else 0
        while day < horizon:
            days.append(day)
            day += interval
    return days


def most_in_window(days: Sequence[int], window: int) -> int:
    """The most doses that fall in any `window` consecutive days."""
    most = 0
    for i, start in enumerate(days):
        count = sum(1 for d in days[i:] if d < start + window)
        most = max(most, count)
    return most


def window_bounds(doses_per_cycle: int, cycle_length: int, window: int) -> tuple[int, int]:
    """The least and the most that "the most doses in any `window` days" can be when
    `doses_per_cycle` doses fall on unknown days of each `cycle_length`-day cycle.

    A window of q whole cycles and r more days holds the q cycles' doses and at most
    min(doses, r) more (doses fall on distinct days): the most is reached with the doses on
    consecutive days. On average a window holds doses x window / cycle_length, and the busiest
    window holds at least the average: the least is its ceiling (evenly spread doses reach it).

    >>> window_bounds(1, 28, 21)
    (1, 1)
    >>> window_bounds(2, 21, 28)
    (3, 4)
    >>> window_bounds(2, 20, 21)
    (3, 3)
    """
    cycles, rest = divmod(window, cycle_length)
    most = doses_per_cycle * cycles + min(doses_per_cycle, rest)
    least = -(-(doses_per_cycle * window) // cycle_length)
    return least, most


def gaps(days: Sequence[int]) -> list[int]:
    """The days between consecutive doses."""
    return [later - earlier for earlier, later in itertools.pairwise(days)]


def doses_per_day(
    *,
    cycle_length: int | None = None,
    doses_per_cycle: int | None = None,
    interval: int | None = None,
    interval_months: int | None = None,
) -> Fraction | None:
    """The doses a schedule gives per day in the long run (its dose intensity per unit of
    dose), or None when the schedule does not say: cycles give their doses over the cycle's
    length, an interval one dose per interval (a calendar month counted as its fewest days, so
    the intensity is never understated). An induction is the start, not the long run.

    >>> doses_per_day(cycle_length=28, doses_per_cycle=3), doses_per_day(interval=14)
    (Fraction(3, 28), Fraction(1, 14))
    """
    if cycle_length is not None and doses_per_cycle is not None:
        return Fraction(doses_per_cycle, cycle_length)
    if interval is not None:
        return Fraction(1, interval)
    if interval_months is not None:
        return Fraction(1, fewest_days(interval_months))
    return None
