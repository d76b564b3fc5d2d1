"""Properties of the safety screens over many generated requests (hypothesis)."""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from priorauth import PolicySet

_optional_bool = st.none() | st.booleans()


@st.composite
def requests(draw: st.DrawFn) -> dict[str, Any]:
    """Requests of every shape: approvable, pended for each reason, with and without labs."""
    unit = draw(st.sampled_from(["mg/m2", "mg"]))
    dose = draw(st.none() | st.floats(5, 60 if unit == "mg/m2" else 120).map(lambda x: round(x, 1)))
    labs = {
        "anc_per_mm3": draw(st.none() | st.integers(0, 8000)),
        "platelets_per_mm3": draw(st.none() | st.integers(0, 500000)),
        "ast_uln_ratio": draw(st.none() | st.floats(0, 15).map(lambda x: round(x, 2))),
        "alt_uln_ratio": draw(st.none() | st.floats(0, 15).map(lambda x: round(x, 2))),
        "bilirubin_uln_ratio": draw(st.none() | st.floats(0, 5).map(lambda x: round(x, 2))),
    }
    regimen: dict[str, Any] = {
        "dose_unit": unit,
        "doses_per_cycle": draw(st.sampled_from([1, 1, 3])),
        "cycle_length_days": draw(st.sampled_from([21, 28, 14])),
        "start_date": "2026-12-01",
        "with": draw(st.sampled_from([[], ["capecitabine"]])),
    }
    if dose is not None:
        regimen["dose"] = dose
    birth = draw(st.dates(dt.date(1930, 1, 1), dt.date(2012, 1, 1)))
    return {
        "request_id": "PA-PROP-1",
        "received_at": "2026-11-20T10:00:00Z",
        "drug": {"hcpcs": "J9207"},
        "patient": {
            "birth_date": birth.isoformat(),
            "sex": draw(st.sampled_from(["female", "male"])),
            "height_cm": draw(st.sampled_from([150, 165, 190])),
            "weight_kg": draw(st.sampled_from([45, 68, 130])),
            "pregnant": draw(_optional_bool),
            "breastfeeding": draw(_optional_bool),
        },
        "diagnoses": draw(
            st.lists(
                st.sampled_from(["C50.912", "C78.01", "C34.90", "C77.3", "E11.9", "G62.9"]),
                unique=True,
                max_size=4,
            )
        ),
        "disease": {"metastatic": draw(_optional_bool)},
        "prescriber": {"specialty": draw(st.sampled_from(["207RX0202X", "family-medicine"]))},
        "regimen": regimen,
        "labs": {k: v for k, v in labs.items() if v is not None},
        "medications": draw(
            st.lists(st.sampled_from(["ketoconazole", "rifampin", "ondansetron"]), max_size=2)
        ),
        "allergies": draw(
            st.lists(
                st.sampled_from(
                    [{"name": "cremophor el", "severity": "severe"}, {"name": "penicillin"}]
                ),
                max_size=1,
            )
        ),
    }


@settings(max_examples=300, deadline=None)
@given(
    request=requests(),
    lab=st.sampled_from([("anc_per_mm3", 1499), ("platelets_per_mm3", 99999)]),
    fraction=st.floats(0, 1),
)
def test_a_contraindicated_lab_never_turns_a_pended_request_into_an_approval(
    policies: PolicySet, request: dict[str, Any], lab: tuple[str, int], fraction: float
) -> None:
    before = policies.evaluate(request)
    changed = copy.deepcopy(request)
    name, highest = lab
    changed["labs"][name] = int(highest * fraction)
    after = policies.evaluate(changed)
    assert after.outcome == "pended"
    assert set(before.reasons) <= set(after.reasons)
    assert any(a.severity == "contraindication" for a in after.alerts)


@settings(max_examples=300, deadline=None)
@given(request=requests())
def test_missing_labs_never_fail_anything(policies: PolicySet, request: dict[str, Any]) -> None:
    with_labs = policies.evaluate(request)
    without = copy.deepcopy(request)
    without["labs"] = {}
    without_labs = policies.evaluate(without)
    assert set(without_labs.reasons) <= set(with_labs.reasons)
    if with_labs.outcome == "approved":
        assert without_labs.outcome == "approved"


@settings(max_examples=200, deadline=None)
@given(request=requests())
def test_warnings_alone_never_pend(policies: PolicySet, request: dict[str, Any]) -> None:
    d = policies.evaluate(request)
    if "safety-review" in d.reasons:
        assert any(a.severity != "warning" for a in d.alerts)
        assert len(d.reasons) == 1
    assert d.outcome in {"approved", "pended"}


@settings(max_examples=150, deadline=None)
@given(batch=st.lists(requests(), min_size=2, max_size=6))
def test_kept_findings_equal_fresh_ones(policies: PolicySet, batch: list[dict[str, Any]]) -> None:
    """The reviewer keeps findings by their inputs: a warm reviewer must answer exactly as a
    freshly compiled one would."""
    compiled = policies.get("ixempra")
    assert compiled is not None
    safety = compiled.safety
    for request in batch:
        warm = policies.evaluate(request)
        fresh = PolicySet([compiled.policy], {"ixempra": safety} if safety else None)
        assert fresh.evaluate(request) == warm
