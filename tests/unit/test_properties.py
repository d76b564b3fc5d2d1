"""Invariants of the logic, checked with hypothesis over many generated requests."""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from priorauth import Determination, PolicySet, parse_request
from priorauth.engine.compiled import CompiledPolicy
from priorauth.engine.criteria import compile_criteria
from priorauth.engine.determination import FactResult
from priorauth.engine.kleene import Truth
from tests.conftest import ROOT

POLICIES = PolicySet.from_directory(ROOT / "policies")
POLICY = POLICIES.policies[0].policy
CRITERIA = compile_criteria(POLICY.indications[0].criteria)
FLAGS = (
    "metastatic",
    "recurrent_unresectable_locoregional",
    "no_response_to_preoperative_therapy",
)
DIAGNOSES = ["C50.912", "C50.A11", "Z85.3", "C78.01", "C79.51", "C77.3", "C34.90", "D05.10"]
SPECIALTIES = ["207RX0202X", "medical-oncology", "207Q00000X", "family medicine", None]

maybe_bool = st.sampled_from([True, False, None])


def _fact(name: str, value: bool | int | None) -> FactResult:
    return FactResult(name, "", value, (), None)


fact_values = st.fixed_dictionaries(
    {
        "age_years": st.one_of(st.none(), st.integers(0, 110)),
        "recurrent_unresectable_locoregional": maybe_bool,
        "metastatic": maybe_bool,
        "no_response_to_preoperative_therapy": maybe_bool,
        "prescribed_by_or_with_oncologist": maybe_bool,
    }
)


def _evaluate(values: dict[str, Any]) -> Truth:
    return CRITERIA({k: _fact(k, v) for k, v in values.items()})[0]


@given(values=fact_values, data=st.data())
def test_kleene_monotonicity_of_the_criteria_tree(values: dict[str, Any], data: Any) -> None:
    """Filling in an unknown fact never changes a result that was already true or false."""
    before = _evaluate(values)
    unknown = [k for k, v in values.items() if v is None]
    if not unknown:
        return
    name = data.draw(st.sampled_from(unknown))
    filled = dict(values)
    filled[name] = data.draw(st.integers(0, 110) if name == "age_years" else st.booleans())
    after = _evaluate(filled)
    if before is not None:
        assert after == before


requests = st.fixed_dictionaries(
    {
        "request_id": st.just("PA-PROP-1"),
        "received_at": st.just("2026-11-20T10:00:00Z"),
        "drug": st.just({"hcpcs": "J9207"}),
        "patient": st.fixed_dictionaries(
            {},
            optional={
                "birth_date": st.dates(dt.date(1930, 1, 1), dt.date(2015, 12, 31)).map(
                    dt.date.isoformat
                ),
                "height_cm": st.floats(140, 200),
                "weight_kg": st.floats(40, 130),
            },
        ),
        "diagnoses": st.lists(st.sampled_from(DIAGNOSES), max_size=3, unique=True),
        "disease": st.fixed_dictionaries({}, optional=dict.fromkeys(FLAGS, maybe_bool)),
        "prescriber": st.fixed_dictionaries(
            {"npi": st.just("1234567893")},
            optional={"specialty": st.sampled_from(SPECIALTIES)},
        ),
        "regimen": st.fixed_dictionaries(
            {"start_date": st.just("2026-12-01")},
            optional={
                "dose": st.sampled_from([10, 16, 20, 40, 45, 60]),
                "dose_unit": st.just("mg/m2"),
                "doses_per_cycle": st.integers(1, 4),
                "cycle_length_days": st.sampled_from([7, 14, 21, 28]),
            },
        ),
    }
).map(lambda r: _dose_has_unit(r))


def _dose_has_unit(request: dict[str, Any]) -> dict[str, Any]:
    regimen = request["regimen"]
    if "dose" in regimen:
        regimen["dose_unit"] = "mg/m2"
    else:
        regimen.pop("dose_unit", None)
    return request


def _has_distant_code(request: dict[str, Any]) -> bool:
    return any(code.startswith(("C78", "C79", "C80.0")) for code in request["diagnoses"])


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(request=requests)
def test_determination_invariants(request: dict[str, Any]) -> None:
    determination = POLICIES.evaluate(request)
    assert determination.outcome in ("approved", "pended")  # never denied
    assert (determination.outcome == "approved") == (determination.reasons == ())
    assert (determination.authorization is not None) == (determination.outcome == "approved")
    assert bool(determination.missing) == ("missing-information" in determination.reasons)
    if determination.authorization is not None:
        auth = determination.authorization
        assert auth.valid_from <= auth.valid_through
        assert (auth.valid_through - auth.valid_from).days in (364, 365)
    # Same request, same bytes; and the JSON reads back to the same determination.
    again = POLICIES.evaluate(copy.deepcopy(request))
    assert again.model_dump_json() == determination.model_dump_json()
    assert Determination.model_validate(determination.model_dump()) == determination


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(request=requests, data=st.data())
def test_filling_in_an_unknown_keeps_decided_outcomes(request: dict[str, Any], data: Any) -> None:
    """An approval stays an approval, and a false criterion stays false, when an unknown is
    answered (without contradicting other evidence)."""
    before = POLICIES.evaluate(request)
    fillable = [f for f in FLAGS if request["disease"].get(f) is None]
    if "birth_date" not in request["patient"]:
        fillable.append("birth_date")
    if "specialty" not in request["prescriber"]:
        fillable.append("specialty")
    if not fillable:
        return
    field = data.draw(st.sampled_from(fillable))
    filled = copy.deepcopy(request)
    if field == "birth_date":
        birth = data.draw(st.dates(dt.date(1930, 1, 1), dt.date(2015, 12, 31)))
        filled["patient"]["birth_date"] = birth.isoformat()
    elif field == "specialty":
        filled["prescriber"]["specialty"] = data.draw(st.sampled_from(SPECIALTIES[:-1]))
    else:
        value = data.draw(st.booleans())
        if field == "metastatic" and value is False and _has_distant_code(request):
            return  # that answer contradicts a code: a conflict, which rightly pends
        filled["disease"][field] = value
    after = POLICIES.evaluate(filled)
    if before.outcome == "approved":
        assert after.outcome == "approved"
    if "criteria-not-met" in before.reasons:
        assert "criteria-not-met" in after.reasons
    if "not-covered-indication" in before.reasons:
        assert "not-covered-indication" in after.reasons


COMPILED = POLICIES.policies[0]


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(batch=st.lists(st.tuples(requests, st.booleans()), min_size=1, max_size=4))
def test_results_kept_from_earlier_requests_never_change_an_answer(
    batch: list[tuple[dict[str, Any], bool]],
) -> None:
    """The engine keeps facts, criteria results and dosing fits by their inputs. A policy that
    has seen every earlier example must answer exactly as one compiled afresh."""
    cold = CompiledPolicy(COMPILED.policy, COMPILED.safety)
    as_of = dt.date(2026, 11, 20)
    for request, in_mg in batch:
        if in_mg and "dose" in request["regimen"]:
            request["regimen"].update(dose=request["regimen"]["dose"] * 1.8, dose_unit="mg")
        parsed = parse_request(request)
        warm = COMPILED.evaluate(parsed, as_of, request)
        assert cold.evaluate(parsed, as_of, request).model_dump_json() == warm.model_dump_json()
