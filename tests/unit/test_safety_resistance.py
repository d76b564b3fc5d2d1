"""Resistance windows (the day inside, the day outside), the label indication, receptor context."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from dateutil.relativedelta import relativedelta
from hypothesis import given
from hypothesis import strategies as st

from priorauth import PolicySet
from priorauth.clinical.resistance import resistance, window_end
from tests.unit.safety_helpers import base, with_capecitabine

D = dt.date.fromisoformat


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
def test_window_boundary(
    policies: PolicySet, agent: str, setting: str, end: str, inside: str, outside: str
) -> None:
    flag = {
        "doxorubicin": "anthracycline",
        "epirubicin": "anthracycline",
        "liposomal doxorubicin": "anthracycline",
        "capecitabine": "capecitabine",
    }.get(agent, "taxane") + "_resistant"
    for progression, expected in ((inside, True), (outside, False)):
        request = base()
        request["prior_therapies"] = [
            {
                "agent": agent,
                "setting": setting,
                "start_date": "2023-01-01",
                "end_date": end,
                "progression_date": progression,
            }
        ]
        label = policies.evaluate(request).label_indication
        assert label is not None
        assert label.flags[flag] is expected, (progression, label.therapies)
        assert label.therapies[0].index == 0


def test_window_end_uses_calendar_months() -> None:
    assert window_end(D("2026-01-31"), 1) == D("2026-02-28")
    assert window_end(D("2026-01-15"), 12) == D("2027-01-15")


@given(
    last_dose=st.dates(dt.date(1900, 1, 1), dt.date(2199, 12, 31)),
    months=st.integers(0, 60),
)
def test_window_end_counts_months_as_relativedelta_does(last_dose: dt.date, months: int) -> None:
    """Plain calendar arithmetic, checked against dateutil over the dates a request may carry
    and the windows a policy may set (0 to 60 months)."""
    assert window_end.__wrapped__(last_dose, months) == last_dose + relativedelta(months=months)


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


def _history(*therapies: dict[str, Any]) -> list[dict[str, Any]]:
    return list(therapies)


ANTHRACYCLINE = {"agent": "Doxorubicin", "setting": "metastatic", "progressed_on_therapy": True}
TAXANE = {"agent": "docetaxel", "setting": "metastatic", "progressed_on_therapy": True}
CAPECITABINE = {"agent": "capecitabine", "setting": "metastatic", "progressed_on_therapy": True}
TAXANE_LONG_AGO = {
    "agent": "paclitaxel",
    "setting": "adjuvant",
    "end_date": "2020-01-01",
    "progression_date": "2024-01-01",
}


@pytest.mark.parametrize(
    ("regimen_with", "history", "requested", "status", "fits"),
    [
        (True, [ANTHRACYCLINE, TAXANE], "with-capecitabine", "met", "with-capecitabine"),
        (False, [ANTHRACYCLINE, TAXANE], "monotherapy", "unknown", None),
        (False, [ANTHRACYCLINE, TAXANE, CAPECITABINE], "monotherapy", "met", "monotherapy"),
        (True, [ANTHRACYCLINE, TAXANE_LONG_AGO], "with-capecitabine", "not-met", None),
        (False, [ANTHRACYCLINE, TAXANE_LONG_AGO, CAPECITABINE], "monotherapy", "not-met", None),
        # Taxane-resistant, anthracycline not known: fits if more anthracycline is
        # contraindicated, which no request field says.
        (True, [TAXANE], "with-capecitabine", "unknown", None),
        (True, [], "with-capecitabine", "unknown", None),
    ],
)
def test_label_indication(
    policies: PolicySet,
    regimen_with: bool,
    history: list[dict[str, Any]],
    requested: str,
    status: str,
    fits: str | None,
) -> None:
    request = with_capecitabine() if regimen_with else base()
    request["prior_therapies"] = history
    d = policies.evaluate(request)
    label = d.label_indication
    assert label is not None
    assert label.requested == requested
    assert {c.id: c.status for c in label.indications}[requested] == status
    assert label.fits == fits
    # Information only: the label indication never pends a request.
    assert d.outcome == "approved"


def test_a_class_never_given_is_unknown_not_false(policies: PolicySet) -> None:
    request = base()
    request["prior_therapies"] = [ANTHRACYCLINE]
    label = policies.evaluate(request).label_indication
    assert label is not None
    assert label.flags == {
        "anthracycline_resistant": True,
        "taxane_resistant": None,
        "capecitabine_resistant": None,
    }


def test_a_combination_counts_for_each_class_in_it(policies: PolicySet) -> None:
    request = base()
    request["prior_therapies"] = [
        {"agent": "doxorubicin / cyclophosphamide + paclitaxel", "progressed_on_therapy": True}
    ]
    label = policies.evaluate(request).label_indication
    assert label is not None
    assert label.flags["anthracycline_resistant"] is True
    assert label.flags["taxane_resistant"] is True
    assert [t.agent_class for t in label.therapies] == ["anthracycline", "taxane"]


def test_one_failed_therapy_of_a_class_is_enough(policies: PolicySet) -> None:
    request = base()
    request["prior_therapies"] = [TAXANE_LONG_AGO, TAXANE]
    label = policies.evaluate(request).label_indication
    assert label is not None
    assert label.flags["taxane_resistant"] is True
    assert [t.resistant for t in label.therapies] == [False, True]


def test_every_determination_under_a_policy_reports_the_label_indication(
    policies: PolicySet,
) -> None:
    request = base()
    request["diagnoses"] = ["C34.90"]  # not a covered indication
    d = policies.evaluate(request)
    assert d.reasons == ("not-covered-indication",)
    assert d.label_indication is not None


# Guideline context ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("codes", "disease", "expected"),
    [
        (["Z17.0", "Z17.32"], {}, ("negative", "positive", False)),
        (["Z17.1", "Z17.22", "Z17.32"], {}, ("negative", "negative", True)),
        (["Z17.1", "Z17.31"], {}, ("positive", None, False)),
        (["Z17.1"], {}, (None, None, None)),  # PR unknown: hormone receptor unknown
        ([], {"her2": "low", "hormone_receptor": "negative"}, ("low", "negative", True)),
        ([], {"triple_negative": True}, (None, None, True)),
    ],
)
def test_receptor_status(
    policies: PolicySet,
    codes: list[str],
    disease: dict[str, Any],
    expected: tuple[str | None, str | None, bool | None],
) -> None:
    request = base()
    request["diagnoses"] += codes
    request["disease"].update(disease)
    d = policies.evaluate(request)
    context = d.guideline
    assert context is not None
    assert (context.her2, context.hormone_receptor, context.triple_negative) == expected
    assert context.summary
    assert d.outcome == "approved"


def test_explicit_receptor_field_wins_and_a_disagreeing_code_is_shown(
    policies: PolicySet,
) -> None:
    request = base()
    request["diagnoses"].append("Z17.32")
    request["disease"]["her2"] = "positive"
    context = policies.evaluate(request).guideline
    assert context is not None
    assert context.her2 == "positive"
    assert context.evidence["her2"] == "disease.her2=positive"
    assert len(context.conflicts) == 1 and "Z17.32" in context.conflicts[0]
