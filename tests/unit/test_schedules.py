"""Schedules as dose days, the busiest window, and the calendar arithmetic of ages and periods."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from priorauth.clinical.dates import age_in_months, age_in_years, period_end
from priorauth.clinical.renal import cockcroft_gault
from priorauth.clinical.schedules import dose_days, gaps, most_in_window, window_bounds

# --- dose days -----------------------------------------------------------------------------


def test_cycle_days_repeat_each_cycle() -> None:
    assert dose_days(cycle_length=21, cycle_days=(1, 8), horizon=43) == [0, 7, 21, 28, 42]
    # The first dose is day 0 whatever cycle day it falls on.
    assert dose_days(cycle_length=28, cycle_days=(8, 15), horizon=56) == [0, 7, 28, 35]


def test_induction_then_interval_starts_from_the_last_induction_dose() -> None:
    days = dose_days(induction_days=(0, 14, 42), interval=56, horizon=200)
    assert days == [0, 14, 42, 98, 154]
    assert gaps(days) == [14, 28, 56, 56]


def test_induction_days_count_from_the_first() -> None:
    assert dose_days(induction_days=(7, 21), horizon=100) == [0, 14]


def test_interval_alone() -> None:
    assert dose_days(interval=14, horizon=43) == [0, 14, 28, 42]
    assert dose_days(interval=14, horizon=42) == [0, 14, 28]


def test_nothing_before_the_horizon() -> None:
    assert dose_days(induction_days=(0, 14, 42), interval=56, horizon=10) == [0]
    assert dose_days(cycle_length=21, cycle_days=(1,), horizon=0) == []


def test_most_in_window() -> None:
    assert most_in_window([0, 7, 21, 28, 42], 21) == 2
    assert most_in_window([0, 7, 21, 28, 42], 22) == 3  # 0, 7 and 21
    assert most_in_window([0, 21, 42], 21) == 1  # day 21 starts the next window
    assert most_in_window([], 21) == 0


# --- "N doses on unknown days of an L-day cycle" ----------------------------------------------


def test_window_bounds_examples() -> None:
    assert window_bounds(1, 21, 21) == (1, 1)
    assert window_bounds(1, 14, 21) == (2, 2)  # every 14 days: two doses in some 21 days
    assert window_bounds(1, 28, 21) == (1, 1)
    assert window_bounds(3, 28, 28) == (3, 3)
    assert window_bounds(2, 21, 28) == (3, 4)  # days 1, 8: 3; days 1, 21: 4


def _placements(doses: int, length: int, window: int) -> tuple[int, int]:
    """The least and the most "busiest window" over every choice of cycle days."""
    found = [
        most_in_window(
            dose_days(cycle_length=length, cycle_days=days, horizon=6 * max(length, window)),
            window,
        )
        for days in itertools.combinations(range(1, length + 1), doses)
    ]
    return min(found), max(found)


@settings(max_examples=150, deadline=None)
@given(
    st.integers(1, 9).flatmap(lambda n: st.tuples(st.just(n), st.integers(n, 10))),
    st.integers(1, 30),
)
def test_window_bounds_are_exactly_the_quietest_and_busiest_placements(
    doses_and_length: tuple[int, int], window: int
) -> None:
    """A bound that is too tight decides wrongly (a fitting schedule outside); one that is too
    loose asks for cycle days no answer could change."""
    doses, length = doses_and_length
    assert window_bounds(doses, length, window) == _placements(doses, length, window)


def test_two_doses_every_20_days_always_give_three_in_21() -> None:
    """Every placement of 2 doses in a 20-day cycle puts 3 doses in some 21 days, never 4
    (distinct days: the 21st day of a window holds at most one more dose)."""
    assert window_bounds(2, 20, 21) == (3, 3)


# --- dates ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("birth", "on", "years"),
    [
        ("2008-12-01", "2026-12-01", 18),  # the birthday itself counts
        ("2008-12-02", "2026-12-01", 17),
        ("2008-02-29", "2026-02-28", 17),  # born on 29 February: a year older on 1 March
        ("2008-02-29", "2026-03-01", 18),
        ("2008-02-29", "2028-02-29", 20),
        ("2026-12-01", "2026-12-01", 0),
    ],
)
def test_age_in_years(birth: str, on: str, years: int) -> None:
    assert age_in_years(dt.date.fromisoformat(birth), dt.date.fromisoformat(on)) == years


@pytest.mark.parametrize(
    ("birth", "on", "months"),
    [
        ("2026-01-31", "2026-02-28", 1),  # calendar months: the end of a shorter month counts
        ("2026-01-31", "2026-02-27", 0),
        ("2024-01-31", "2024-02-29", 1),
        ("2025-06-15", "2026-06-14", 11),
        ("2025-06-15", "2026-06-15", 12),
        ("2000-01-01", "2026-12-01", 26 * 12 + 11),
    ],
)
def test_age_in_months(birth: str, on: str, months: int) -> None:
    assert age_in_months(dt.date.fromisoformat(birth), dt.date.fromisoformat(on)) == months


@pytest.mark.parametrize(
    ("start", "years", "months", "days", "end"),
    [
        ("2026-12-01", 1, 0, 0, "2027-11-30"),
        ("2026-12-01", 0, 6, 0, "2027-05-31"),
        ("2026-08-31", 0, 6, 0, "2027-02-28"),  # the anniversary "31 February" is 1 March
        ("2026-12-01", 0, 0, 90, "2027-02-28"),
        ("2028-02-29", 1, 0, 0, "2029-02-28"),
        ("2027-03-01", 1, 0, 0, "2028-02-29"),
        ("2026-12-01", 1, 2, 3, "2028-02-03"),
    ],
)
def test_period_end(start: str, years: int, months: int, days: int, end: str) -> None:
    assert period_end(dt.date.fromisoformat(start), years, months, days).isoformat() == end


# --- renal ---------------------------------------------------------------------------------


def test_cockcroft_gault() -> None:
    male = cockcroft_gault(age_years=60, weight_kg=72, serum_creatinine_mg_dl=1.0, female=False)
    assert male == pytest.approx(80.0)
    female = cockcroft_gault(age_years=60, weight_kg=72, serum_creatinine_mg_dl=1.0, female=True)
    assert female == pytest.approx(68.0)


def test_fewest_days_calendar_months_span() -> None:
    from priorauth.clinical.schedules import fewest_days

    assert [fewest_days(m) for m in (1, 2, 6, 12, 18, 24)] == [28, 59, 181, 365, 546, 730]


def test_monthly_dates_clamp_to_shorter_months_without_drifting() -> None:
    from priorauth.clinical.schedules import monthly

    dates = monthly(dt.date(2026, 1, 31), 1, dt.date(2026, 4, 30))
    assert dates == [
        dt.date(2026, 1, 31),
        dt.date(2026, 2, 28),
        dt.date(2026, 3, 31),
        dt.date(2026, 4, 30),
    ]
