"""Service dates: the window of start dates software decides (retro requests and ones far ahead
go to a person) and approval periods that are right on leap days."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from dateutil.relativedelta import relativedelta
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from priorauth import PolicySet
from priorauth.clinical.dates import period_end
from priorauth.policy import model
from priorauth.policy.loader import check_policy_text
from tests.conftest import ROOT, example

# --- the period arithmetic ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "years", "months", "end"),
    [
        ("2028-02-29", 1, 0, "2029-02-28"),  # the anniversary 2029-02-29 does not exist
        ("2027-03-01", 1, 0, "2028-02-29"),  # the year holds the leap day
        ("2028-03-01", 1, 0, "2029-02-28"),
        ("2028-02-28", 1, 0, "2029-02-27"),
        ("2028-02-29", 4, 0, "2032-02-28"),  # the anniversary exists again
        ("2026-01-31", 0, 1, "2026-02-28"),
        ("2028-01-31", 0, 1, "2028-02-29"),
        ("2026-08-31", 0, 6, "2027-02-28"),
        ("2026-03-31", 0, 1, "2026-04-30"),
    ],
)
def test_a_period_ends_the_day_before_its_anniversary(
    start: str, years: int, months: int, end: str
) -> None:
    assert period_end(dt.date.fromisoformat(start), years, months).isoformat() == end


starts = st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(2190, 12, 31))


@given(starts)
def test_a_year_is_365_or_366_days_and_ends_the_day_before_the_anniversary(
    start: dt.date,
) -> None:
    end = period_end(start, years=1)
    assert (end - start).days + 1 in (365, 366)
    after = end + dt.timedelta(days=1)
    if (start.month, start.day) == (2, 29):
        assert (after.month, after.day) == (3, 1)  # all of the next February is in the period
    else:
        assert after == start.replace(year=start.year + 1)


@given(starts, st.integers(0, 10), st.integers(0, 24), st.integers(0, 400))
def test_a_period_ends_on_or_after_its_start(
    start: dt.date, years: int, months: int, days: int
) -> None:
    if years == months == days == 0:
        return
    end = period_end(start, years, months, days)
    assert end >= start
    # Never shorter than the calendar step it stands for, less the day clamping could take.
    assert end + dt.timedelta(days=1) >= start + relativedelta(
        years=years, months=months, days=days
    )


@given(starts, st.sampled_from([(1, 0), (0, 1), (0, 6), (0, 3)]), st.integers(2, 8))
def test_consecutive_periods_tile_without_gap_or_overlap(
    start: dt.date, period: tuple[int, int], count: int
) -> None:
    """Periods laid end to end (each starts the day after the last ends) cover every day once,
    and each is as long as its calendar period allows."""
    years, months = period
    shortest, longest = (365, 366) if years else (28 * months + 2 * (months > 1), 31 * months)
    covered: list[dt.date] = []
    begin = start
    for _ in range(count):
        end = period_end(begin, years, months)
        assert shortest - 3 * (months > 1) <= (end - begin).days + 1 <= longest
        covered.extend(begin + dt.timedelta(days=k) for k in range((end - begin).days + 1))
        begin = end + dt.timedelta(days=1)
    assert covered == [start + dt.timedelta(days=k) for k in range(len(covered))]


@given(starts, starts)
def test_a_later_start_never_ends_earlier(first: dt.date, second: dt.date) -> None:
    early, late = sorted((first, second))
    assert period_end(early, years=1) <= period_end(late, years=1)


# --- the window of start dates --------------------------------------------------------------


def _approvable(start: str, received: str = "2026-11-20") -> dict[str, Any]:
    request = example("eribulin-01-approved-breast-cancer.json")
    request["received_at"] = f"{received}T10:00:00Z"
    request["service"]["start_date"] = start
    return request


def test_the_example_is_approved_inside_the_window(policies: PolicySet) -> None:
    determination = policies.evaluate(_approvable("2026-11-30"))
    assert determination.outcome == "approved"


def test_a_start_years_back_is_a_retro_request_for_intake(policies: PolicySet) -> None:
    """Received in 2026, starting in 2023: once approved for a wholly past year."""
    determination = policies.evaluate(_approvable("2023-03-01"))
    assert determination.outcome == "pended"
    assert determination.reasons[0] == "service-date"
    assert determination.route == "intake"
    assert determination.authorization is None
    assert "service.start_date 2023-03-01 is 1,360 days before" in determination.summary
    assert "retro request" in determination.summary


def test_a_start_years_ahead_is_pended_with_its_reason(policies: PolicySet) -> None:
    """Received in 2026, starting in 2029: once approved."""
    determination = policies.evaluate(_approvable("2029-01-15"))
    assert determination.outcome == "pended"
    # The labs of November 2026 are too old for a 2029 start, and are asked for too.
    assert determination.reasons[0] == "service-date"
    assert determination.route == "intake"
    assert "service.start_date 2029-01-15 is 787 days after" in determination.summary


@pytest.mark.parametrize(
    ("start", "outside"),
    [
        ("2026-11-06", False),  # 14 days back: the default retro_days
        ("2026-11-05", True),
        ("2027-02-18", False),  # 90 days ahead: the default ahead_days
        ("2027-02-19", True),
    ],
)
def test_the_default_window_is_14_days_back_and_90_ahead(
    policies: PolicySet, start: str, outside: bool
) -> None:
    # (Ninety days ahead the labs are too old for the policy: other questions, not this one.)
    determination = policies.evaluate(_approvable(start))
    assert ("service-date" in determination.reasons) is outside


def test_without_received_at_the_window_counts_from_the_day_decided(policies: PolicySet) -> None:
    request = _approvable("2026-11-30")
    del request["received_at"]
    assert policies.evaluate(request, as_of=dt.date(2026, 11, 20)).outcome == "approved"
    late = policies.evaluate(request, as_of=dt.date(2027, 1, 5))
    assert late.reasons == ("service-date",)
    assert "36 days before the day the request was received (2027-01-05)" in late.summary


def _policy_text(name: str, extra: str) -> str:
    text = (ROOT / "policies" / f"{name}.yaml").read_text()
    return text.replace("\nrouting:", f"\n{extra}\nrouting:", 1)


def _eribulin(policies: PolicySet, text: str) -> PolicySet:
    """The eribulin policy from `text`, with its safety data, alone."""
    checked = check_policy_text(text)
    assert checked.value is not None, [i.message for i in checked.issues]
    shipped = policies.get("eribulin")
    assert shipped is not None
    safety = {"eribulin": shipped.safety} if shipped.safety is not None else None
    return PolicySet([checked.value], safety=safety)


def _with_rule(policies: PolicySet, extra: str) -> PolicySet:
    return _eribulin(policies, _policy_text("eribulin", extra))


def test_the_policy_sets_its_own_window(policies: PolicySet) -> None:
    strict = _with_rule(policies, "service_dates: {retro_days: 0, ahead_days: 5}")
    assert strict.evaluate(_approvable("2026-11-20")).outcome == "approved"
    assert strict.evaluate(_approvable("2026-11-19")).reasons == ("service-date",)
    assert strict.evaluate(_approvable("2026-11-25")).outcome == "approved"
    assert strict.evaluate(_approvable("2026-11-26")).reasons == ("service-date",)


def test_never_an_approval_for_a_period_wholly_past(policies: PolicySet) -> None:
    """A window wider than the approval period still never approves a period already over."""
    policy = _policy_text("eribulin", "service_dates: {retro_days: 366}")
    # Approve for 30 days only, in every indication.
    set_ = _eribulin(policies, policy.replace("approval:\n      years: 1", "approval: {days: 30}"))
    assert set_.evaluate(_approvable("2026-10-22")).outcome == "approved"  # through 11-20
    past = set_.evaluate(_approvable("2026-10-21"))  # through 11-19: over before received
    assert past.reasons == ("service-date",)
    assert "an approval would end on 2026-11-19" in past.summary


def test_the_policy_routes_a_service_date_question_its_own_way(policies: PolicySet) -> None:
    text = _policy_text("eribulin", "").replace(
        "  no-policy: intake", "  no-policy: intake\n  service-date: utilization-management"
    )
    routed = _eribulin(policies, text)
    assert routed.evaluate(_approvable("2023-03-01")).route == "utilization-management"


# --- the policy setting -----------------------------------------------------------------------


def test_the_defaults_are_documented_values() -> None:
    assert model.ServiceDates() == model.ServiceDates(retro_days=14, ahead_days=90)


@pytest.mark.parametrize(
    ("extra", "code", "words"),
    [
        ("service_date: {retro_days: 3}", "PA201", "did you mean 'service_dates'"),
        ("service_dates: {retro_day: 3}", "PA201", "did you mean 'retro_days'"),
        ("service_dates: {retro_days: -1}", "PA201", "greater than or equal to 0"),
        ("service_dates: {ahead_days: 5000}", "PA201", "less than or equal to 731"),
    ],
)
def test_the_loader_names_a_wrong_setting(extra: str, code: str, words: str) -> None:
    checked = check_policy_text(_policy_text("eribulin", extra))
    errors = [i for i in checked.issues if i.severity == "error"]
    assert errors, "expected an error"
    assert errors[0].code == code
    assert words in errors[0].message
    assert errors[0].line is not None


def test_a_window_wider_than_the_shortest_approval_is_a_warning() -> None:
    checked = check_policy_text(_policy_text("eribulin", "service_dates: {retro_days: 365}"))
    assert checked.value is not None
    warnings = [i for i in checked.issues if i.code == "PA407"]
    assert warnings and "retro_days" in warnings[0].message


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(offset=st.integers(-800, 800))
def test_an_approval_always_starts_inside_the_window_and_never_ends_before_received(
    policies: PolicySet, offset: int
) -> None:
    received = dt.date(2026, 11, 20)
    start = received + dt.timedelta(days=offset)
    determination = policies.evaluate(_approvable(start.isoformat()))
    authorization = determination.authorization
    if authorization is not None:
        assert -14 <= offset <= 90
        assert authorization.valid_from == start
        assert authorization.valid_through >= received
        assert (authorization.valid_through - start).days + 1 in (365, 366)
    if not -14 <= offset <= 90:
        assert determination.reasons[0] == "service-date"
        assert determination.route == "intake"


def test_an_old_request_decided_late_is_never_approved_for_a_period_already_over(
    policies: PolicySet,
) -> None:
    """Without a start date the service starts on the day received: decided years later, the
    year it would approve is over."""
    request = _approvable("2026-11-30", received="2023-01-10")
    del request["service"]["start_date"]
    on_time = policies.evaluate(request)  # decided as of the day received
    assert "service-date" not in on_time.reasons
    late = policies.evaluate(request, as_of=dt.date(2026, 11, 20))
    assert late.reasons[0] == "service-date"
    assert late.authorization is None
    assert "received_at 2023-01-10: an approval would end on 2024-01-09" in late.summary
