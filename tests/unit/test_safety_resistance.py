"""Resistance windows (the day inside, the day outside), the label indication from the
medication history, and the receptor context from Z17.* conditions."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from dateutil.relativedelta import relativedelta
from hypothesis import given
from hypothesis import strategies as st

from priorauth.clinical.resistance import resistance, window_end
from priorauth.engine.review import LabelIndication
from tests.unit.safety_helpers import base, review, with_capecitabine

D = dt.date.fromisoformat


def _label(request: dict[str, Any]) -> LabelIndication:
    label = review(request).label_indication
    assert label is not None
    return label


def _with_history(request: dict[str, Any], *medications: dict[str, Any]) -> dict[str, Any]:
    request["medications"] = [{"name": "ondansetron", "status": "active"}, *medications]
    return request


@pytest.mark.parametrize(
    ("agent", "setting", "end", "inside", "outside"),
    [
        ("doxorubicin", "adjuvant", "2026-01-15", "2026-07-15", "2026-07-16"),  # 6 months
        ("epirubicin", "neoadjuvant", "2025-08-31", "2026-02-28", "2026-03-01"),  # month end
        ("liposomal doxorubicin", "metastatic", "2026-01-31", "2026-04-30", "2026-05-01"),
        ("paclitaxel", "adjuvant", "2024-02-29", "2025-02-28", "2025-03-01"),  # 12, leap day
        ("docetaxel", "metastatic", "2025-10-31", "2026-02-28", "2026-03-01"),  # 4 months
        ("nab-paclitaxel", "metastatic", "2025-06-10", "2025-10-10", "2025-10-11"),
        ("capecitabine", "metastatic", "2026-03-01", "2026-03-01", "2026-03-02"),  # on therapy
    ],
)
def test_window_boundary(agent: str, setting: str, end: str, inside: str, outside: str) -> None:
    flag = {
        "doxorubicin": "anthracycline",
        "epirubicin": "anthracycline",
        "liposomal doxorubicin": "anthracycline",
        "capecitabine": "capecitabine",
    }.get(agent, "taxane") + "_resistant"
    for progression, expected in ((inside, True), (outside, False)):
        therapy = {
            "name": agent,
            "status": "completed",
            "setting": setting,
            "start_date": "2023-01-01",
            "end_date": end,
            "progression_date": progression,
        }
        label = _label(_with_history(base(), therapy))
        assert label.flags[flag] is expected, (progression, label.therapies)
        assert label.therapies[0].index == 1  # its place among the medications


@pytest.mark.parametrize(
    ("last_dose", "months", "end"),
    [
        ("2026-01-31", 1, "2026-02-28"),
        ("2028-01-31", 1, "2028-02-29"),
        ("2026-01-15", 12, "2027-01-15"),
        ("2026-08-31", 6, "2027-02-28"),
        ("2026-03-10", 0, "2026-03-10"),
        ("2199-12-31", 60, "2204-12-31"),  # the latest date a request carries, the longest window
    ],
)
def test_window_end_counts_calendar_months(last_dose: str, months: int, end: str) -> None:
    assert window_end(D(last_dose), months) == D(end)


@given(
    last_dose=st.dates(dt.date(1900, 1, 1), dt.date(2199, 12, 31)),
    months=st.integers(0, 60),
)
def test_window_end_counts_months_as_relativedelta_does(last_dose: dt.date, months: int) -> None:
    """Over the dates a request may carry and the windows the data may set (0 to 60 months)."""
    assert window_end(last_dose, months) == last_dose + relativedelta(months=months)


@pytest.mark.parametrize(
    ("on_therapy", "start", "end", "progression", "windows", "expected"),
    [
        (True, None, None, None, (6,), True),
        (None, None, "2026-01-01", None, (6,), None),  # no progression date
        (None, "2025-06-01", "2026-01-01", "2025-05-01", (6,), False),  # before it began
        (None, None, None, "2026-02-01", (6,), None),  # end date unknown
        (None, None, "2026-01-01", "2025-12-01", (6,), True),  # during therapy
        (False, None, "2026-01-01", "2025-12-01", (6,), None),  # dates and flag disagree
        (None, None, "2026-01-01", "2026-03-01", (3, 6), True),  # setting unknown, both inside
        (None, None, "2026-01-01", "2026-05-01", (3, 6), None),  # between the windows
        (None, None, "2026-01-01", "2026-07-02", (3, 6), False),  # outside both
        (None, None, "2026-01-01", "2026-03-01", (), None),  # no window
    ],
)
def test_resistance_three_valued(
    on_therapy: bool | None,
    start: str | None,
    end: str | None,
    progression: str | None,
    windows: tuple[int, ...],
    expected: bool | None,
) -> None:
    truth, detail = resistance(
        on_therapy,
        D(start) if start else None,
        D(end) if end else None,
        D(progression) if progression else None,
        windows,
    )
    assert truth is expected
    assert detail


ANTHRACYCLINE = {
    "name": "Doxorubicin",
    "status": "completed",
    "setting": "metastatic",
    "progressed_on_therapy": True,
}
TAXANE = {
    "name": "docetaxel",
    "status": "completed",
    "setting": "metastatic",
    "progressed_on_therapy": True,
}
CAPECITABINE = {
    "name": "capecitabine",
    "status": "completed",
    "setting": "metastatic",
    "progressed_on_therapy": True,
}
TAXANE_LONG_AGO = {
    "name": "paclitaxel",
    "status": "completed",
    "setting": "adjuvant",
    "end_date": "2020-01-01",
    "progression_date": "2024-01-01",
}
NO_MORE_ANTHRACYCLINE = {"name": "doxorubicin", "outcome": "contraindicated"}


@pytest.mark.parametrize(
    ("combined", "history", "requested", "status", "fits"),
    [
        (True, [ANTHRACYCLINE, TAXANE], "with-capecitabine", "met", "with-capecitabine"),
        (False, [ANTHRACYCLINE, TAXANE], "monotherapy", "unknown", None),
        (False, [ANTHRACYCLINE, TAXANE, CAPECITABINE], "monotherapy", "met", "monotherapy"),
        (True, [ANTHRACYCLINE, TAXANE_LONG_AGO], "with-capecitabine", "not-met", None),
        (False, [ANTHRACYCLINE, TAXANE_LONG_AGO, CAPECITABINE], "monotherapy", "not-met", None),
        # Taxane-resistant, anthracycline not known: fits if more anthracycline is
        # contraindicated, which this history does not say.
        (True, [TAXANE], "with-capecitabine", "unknown", None),
        # ... and which this one does: an anthracycline the patient could not take.
        (True, [TAXANE, NO_MORE_ANTHRACYCLINE], "with-capecitabine", "met", "with-capecitabine"),
        (True, [TAXANE_LONG_AGO, NO_MORE_ANTHRACYCLINE], "with-capecitabine", "not-met", None),
        (True, [], "with-capecitabine", "unknown", None),
    ],
)
def test_label_indication(
    combined: bool,
    history: list[dict[str, Any]],
    requested: str,
    status: str,
    fits: str | None,
) -> None:
    request = with_capecitabine() if combined else base()
    found = review(_with_history(request, *history))
    label = found.label_indication
    assert label is not None
    assert label.requested == requested
    assert {c.id: c.status for c in label.indications}[requested] == status
    assert label.fits == fits
    # Information only: the label indication never holds a request.
    assert not found.holds


def test_a_medication_the_patient_could_not_take_is_not_judged_for_resistance() -> None:
    label = _label(_with_history(base(), NO_MORE_ANTHRACYCLINE))
    assert label.therapies == ()
    assert label.flags["anthracycline_resistant"] is None


def test_an_intended_medication_is_not_judged_for_resistance() -> None:
    label = _label(_with_history(base(), {"name": "paclitaxel", "status": "intended"}))
    assert label.therapies == ()


def test_a_class_never_given_is_unknown_not_false() -> None:
    label = _label(_with_history(base(), ANTHRACYCLINE))
    assert label.flags == {
        "anthracycline_resistant": True,
        "taxane_resistant": None,
        "capecitabine_resistant": None,
    }


def test_a_combination_counts_for_each_class_in_it() -> None:
    therapy = {"name": "doxorubicin / cyclophosphamide + paclitaxel", "progressed_on_therapy": True}
    label = _label(_with_history(base(), therapy))
    assert label.flags["anthracycline_resistant"] is True
    assert label.flags["taxane_resistant"] is True
    assert [t.agent_class for t in label.therapies] == ["anthracycline", "taxane"]


def test_a_class_is_found_in_a_record_s_full_drug_name() -> None:
    therapy = {"name": "DOXOrubicin HCl 2 MG/ML Injection", "progressed_on_therapy": True}
    label = _label(
        _with_history(base(), therapy, {"name": "epirubicinol", "progressed_on_therapy": True})
    )
    assert [(t.index, t.agent_class) for t in label.therapies] == [(1, "anthracycline")]


def test_one_failed_therapy_of_a_class_is_enough() -> None:
    label = _label(_with_history(base(), TAXANE_LONG_AGO, TAXANE))
    assert label.flags["taxane_resistant"] is True
    assert [t.resistant for t in label.therapies] == [False, True]


@pytest.mark.parametrize(
    ("setting", "progression", "expected"),
    [
        ("locally-advanced", "2026-03-15", True),  # inside the 3 and the 6 month windows
        ("locally-advanced", "2026-05-15", None),  # between them: the setting decides
        ("other", "2026-08-15", False),  # outside both
        (None, "2026-05-15", None),
    ],
)
def test_a_setting_without_its_own_window_is_read_as_unknown(
    setting: str | None, progression: str, expected: bool | None
) -> None:
    therapy = {
        "name": "epirubicin",
        "status": "completed",
        "end_date": "2026-01-15",
        "progression_date": progression,
    }
    if setting is not None:
        therapy["setting"] = setting
    label = _label(_with_history(base(), therapy))
    assert label.flags["anthracycline_resistant"] is expected


def test_medications_named_only_by_code_are_not_classed() -> None:
    therapy = {
        "code": "3639",
        "system": "rxnorm",
        "status": "completed",
        "progressed_on_therapy": True,
    }
    label = _label(_with_history(base(), therapy))
    assert label.therapies == ()


# Guideline context --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("codes", "expected"),
    [
        (["Z17.0", "Z17.32"], ("negative", "positive", False)),
        (["Z17.1", "Z17.22", "Z17.32"], ("negative", "negative", True)),
        (["Z17.1", "Z17.31"], ("positive", None, False)),
        (["Z17.1"], (None, None, None)),  # PR unknown: hormone receptor unknown
        (["Z17.21", "Z17.32"], ("negative", "positive", False)),  # PR positive is enough
        (["z1732"], ("negative", None, None)),  # written without its dot, in lower case
        ([], (None, None, None)),
    ],
)
def test_receptor_status(
    codes: list[str], expected: tuple[str | None, str | None, bool | None]
) -> None:
    request = base()
    request["conditions"] += codes
    found = review(request)
    context = found.guideline
    assert context is not None
    assert (context.her2, context.hormone_receptor, context.triple_negative) == expected
    assert context.conflicts == ()
    assert context.summary
    assert not found.holds


def test_receptor_evidence_names_the_conditions() -> None:
    request = base()
    request["conditions"] += ["Z17.1", "Z17.22", "Z17.32"]
    context = review(request).guideline
    assert context is not None
    assert context.evidence == {
        "her2": "conditions[4]=Z17.32",
        "hormone_receptor": "conditions[2]=Z17.1, conditions[3]=Z17.22",
        "triple_negative": "from the receptor status",
    }


def test_codes_that_disagree_leave_the_status_unknown_and_are_shown() -> None:
    request = base()
    request["conditions"] += ["Z17.31", "Z17.0", "Z17.32"]
    context = review(request).guideline
    assert context is not None
    assert context.her2 is None
    assert context.hormone_receptor == "positive"
    assert context.triple_negative is False  # hormone-receptor positive decides it
    assert context.conflicts == (
        "HER2: conditions[2]=Z17.31 says positive, yet conditions[4]=Z17.32 says negative",
    )
