"""Properties of the safety screens over many generated requests (hypothesis): a low count always
holds, missing information never adds a finding, warnings never hold, units do not matter."""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from priorauth.engine.request import parse_request
from priorauth.engine.safety import SEVERITY_ORDER, Review, SafetyReviewer
from tests.unit.safety_helpers import (
    ALT,
    ANC,
    AST,
    BILIRUBIN,
    BSA,
    HEIGHT,
    PLATELETS,
    WEIGHT,
    base,
    dosing_for,
    review,
    shipped_data,
)

_maybe = st.none() | st.booleans()
_LABS = (ANC, PLATELETS, AST, ALT, BILIRUBIN)
_MEDICATIONS = [
    "ketoconazole",
    "KETOCONAZOLE",
    "rifampin",
    "Rifampicin",
    "dexamethasone",
    "ondansetron",
    "ritonavir",
    "doxorubicin",
    "paclitaxel",
    "capecitabine",
]
_OBSERVATION_SCREENS = ("low-blood-counts", "liver-with-capecitabine", "liver-monotherapy-dose")


def _around(*limits: float) -> st.SearchStrategy[float]:
    """A limit, just either side of one, or anything in range."""
    near = [round(x + d, 2) for x in limits for d in (-0.01, 0, 0.01) if x + d >= 0]
    return st.sampled_from(near) | st.floats(0, max(limits) * 3).map(lambda x: round(x, 2))


@st.composite
def _medication(draw: st.DrawFn) -> dict[str, Any]:
    medication: dict[str, Any] = {"name": draw(st.sampled_from(_MEDICATIONS))}
    status = draw(st.sampled_from([None, "active", "completed", "stopped", "intended", "on-hold"]))
    if status is not None:
        medication["status"] = status
    if draw(st.booleans()):
        medication["end_date"] = draw(st.sampled_from(["2026-06-30", "2026-11-30", "2026-12-01"]))
    if draw(st.booleans()):
        medication["setting"] = draw(st.sampled_from(["adjuvant", "metastatic", "other"]))
        medication["progression_date"] = "2026-10-01"
    on_therapy = draw(_maybe)
    if on_therapy is not None:
        medication["progressed_on_therapy"] = on_therapy
    if draw(st.integers(0, 9)) == 0:
        medication["outcome"] = "contraindicated"
    return medication


@st.composite
def requests(draw: st.DrawFn) -> dict[str, Any]:
    """Requests of every shape: labs on and around each limit or missing, doses in mg or
    mg/m2 or none, combinations, medications past and present, allergies, conditions."""
    unit = draw(st.sampled_from(["mg/m2", "mg"]))
    dose = draw(st.none() | st.sampled_from([16, 20, 20.01, 30, 32, 40, 64, 88, 88.01, 100]))
    request = base(dose, unit)
    request["type"] = draw(st.sampled_from(["initial", "continuation"]))
    if request["type"] == "continuation":
        request["prior_authorization_id"] = "PA-2025-000001"
    request["service"]["with"] = draw(
        st.sampled_from([[], ["capecitabine"], ["Xeloda"], ["trastuzumab"]])
    )
    observations: list[dict[str, Any]] = []
    for code, limits in (
        (ANC, (1500,)),
        (PLATELETS, (100000,)),
        (AST, (2.5, 10)),
        (ALT, (2.5, 10)),
        (BILIRUBIN, (1, 1.5, 3)),
    ):
        if draw(st.integers(0, 4)) == 0:
            continue  # missing
        value = draw(_around(*limits))
        if code in (ANC, PLATELETS):
            observations.append({"code": code, "value": value, "unit": "/uL"})
        else:
            observations.append({"code": code, "uln_multiple": value})
    body = draw(st.sampled_from(["height-weight", "bsa", "none"]))
    if body == "height-weight":
        observations += [
            {"code": HEIGHT, "value": draw(st.sampled_from([150, 165, 190])), "unit": "cm"},
            {"code": WEIGHT, "value": draw(st.sampled_from([45, 68, 140])), "unit": "kg"},
        ]
    elif body == "bsa":
        observations.append(
            {"code": BSA, "value": draw(st.sampled_from([1.6, 2.2, 2.21, 2.5])), "unit": "m2"}
        )
    request["observations"] = observations
    request["patient"] = {
        k: v
        for k, v in {
            "birth_date": "1970-01-01",
            "sex": draw(st.sampled_from([None, "female", "male", "other"])),
            "pregnant": draw(_maybe),
            "breastfeeding": draw(_maybe),
        }.items()
        if v is not None
    }
    request["medications"] = draw(st.lists(_medication(), max_size=4))
    request["allergies"] = draw(
        st.lists(
            st.sampled_from(
                [
                    {"name": "cremophor el", "severity": "severe"},
                    {"name": "Cremophor"},
                    {"name": "kolliphor EL", "severity": "mild"},
                    {"name": "penicillin"},
                ]
            ),
            max_size=2,
        )
    )
    request["conditions"] = draw(
        st.lists(
            st.sampled_from(["C50.912", "C78.01", "E11.9", "E11.40", "G62.9", "Z17.0", "Z17.32"]),
            unique=True,
            max_size=4,
        )
    )
    return request


def _codes(found: Review) -> set[str]:
    return {a.code for a in found.alerts}


@settings(max_examples=300, deadline=None)
@given(
    request=requests(),
    lab=st.sampled_from([(ANC, 10, 1499), (PLATELETS, 1000, 99999)]),
    fraction=st.floats(0, 1),
)
def test_a_contraindicated_count_always_holds(
    request: dict[str, Any], lab: tuple[str, int, int], fraction: float
) -> None:
    # Counts from the least plausible one (below it, a count is asked about, not read) to just
    # below the label's limit.
    code, lowest, highest = lab
    value = lowest + int((highest - lowest) * fraction)
    request["observations"] = [o for o in request["observations"] if o["code"] != code]
    request["observations"].append({"code": code, "value": value, "unit": "/uL"})
    found = review(request)
    assert "low-blood-counts" in _codes(found)
    assert found.alerts[0].severity == "contraindication"
    assert found.holds


@settings(max_examples=300, deadline=None)
@given(request=requests(), dropped=st.sets(st.sampled_from(_LABS), min_size=1))
def test_missing_labs_never_add_a_finding(request: dict[str, Any], dropped: set[str]) -> None:
    with_labs = review(request)
    without = copy.deepcopy(request)
    without["observations"] = [o for o in without["observations"] if o["code"] not in dropped]
    without_labs = review(without)
    assert _codes(without_labs) <= _codes(with_labs)
    assert without_labs.holds <= with_labs.holds
    if set(_LABS) <= dropped:
        # Without any lab only a dose above what every liver band allows is a finding.
        assert _codes(without_labs) & set(_OBSERVATION_SCREENS) <= {"liver-monotherapy-dose"}


@settings(max_examples=300, deadline=None)
@given(request=requests())
def test_each_screen_answers_once_and_only_holding_findings_hold(request: dict[str, Any]) -> None:
    found = review(request)
    fired = [a.code for a in found.alerts]
    skipped = [s.screen for s in found.not_run]
    assert len(set(fired)) == len(fired) and len(set(skipped)) == len(skipped)
    assert not set(fired) & set(skipped)
    assert {*fired, *skipped} <= {s.id for s in shipped_data().screens}
    assert all(s.fields for s in found.not_run)
    ranks = [SEVERITY_ORDER[a.severity] for a in found.alerts]
    assert ranks == sorted(ranks)
    assert found.holds is any(a.severity != "warning" for a in found.alerts)
    assert found.label_indication is not None and found.guideline is not None


@settings(max_examples=200, deadline=None)
@given(request=requests())
def test_review_is_pure(request: dict[str, Any]) -> None:
    parsed = parse_request(request)
    dosing = dosing_for(parsed)
    fresh = SafetyReviewer(shipped_data())
    first = fresh.review(parsed, dosing, dosing.bsa_m2)
    assert fresh.review(parsed, dosing, dosing.bsa_m2) == first
    assert review(request) == first
    assert fresh.review(parse_request(copy.deepcopy(request)), dosing, dosing.bsa_m2) == first


@settings(max_examples=200, deadline=None)
@given(request=requests(), unit=st.sampled_from(["10*3/uL", "10*9/L", "/mm3"]))
def test_counts_in_any_unit_give_the_same_review(request: dict[str, Any], unit: str) -> None:
    factor = {"10*3/uL": 1000, "10*9/L": 1000, "/mm3": 1}[unit]
    other = copy.deepcopy(request)
    for observation in other["observations"]:
        if observation["code"] in (ANC, PLATELETS):
            observation.update(value=observation["value"] / factor, unit=unit)
    found, expected = review(other), review(request)
    # An implausible count is doubted in either unit; the message quotes the unit given.
    assert [f for f, _ in found.doubted] == [f for f, _ in expected.doubted]
    assert found._replace(doubted=()) == expected._replace(doubted=())


@settings(max_examples=200, deadline=None)
@given(request=requests(), day=st.dates(dt.date(2026, 1, 1), dt.date(2027, 12, 31)))
def test_a_medication_that_is_not_taken_now_never_interacts(
    request: dict[str, Any], day: dt.date
) -> None:
    past = copy.deepcopy(request)
    for medication in past["medications"]:
        medication["status"] = "completed"
    found = review(past, service_date=day)
    assert not {"strong-cyp3a4-inhibitor", "strong-cyp3a4-inducer"} & _codes(found)
