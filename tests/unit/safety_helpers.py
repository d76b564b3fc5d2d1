"""Requests for the safety tests in the request contract's shape: one approvable base, changed a
part at a time, and the reviewer run on it directly (with a dosing result built here, standing
in for the engine's dosing step)."""

from __future__ import annotations

import copy
from functools import cache
from pathlib import Path
from typing import Any, Literal

from priorauth.clinical.bsa import mosteller
from priorauth.engine.determination import DosingResult, RequestedRegimen
from priorauth.engine.request import Request, parse_request
from priorauth.engine.safety import Review, SafetyReviewer
from priorauth.policy.safety_loader import load_safety_text
from priorauth.policy.safety_model import SafetyData

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "policies" / "ixempra-safety.data.yaml"

# LOINC codes the screens and the body measures read.
ANC, PLATELETS = "751-8", "777-3"
AST, ALT, BILIRUBIN = "1920-8", "1742-6", "1975-2"
HEIGHT, WEIGHT, BSA = "8302-2", "29463-7", "8277-6"
LAB_DATE = "2026-11-25"

_BASE: dict[str, Any] = {
    "request_id": "PA-SAFETY-1",
    "type": "initial",
    "received_at": "2026-11-25T10:00:00Z",
    "service": {
        "code": "J9207",
        "dose": {"value": 40, "unit": "mg/m2"},
        "schedule": {"cycle_length_days": 21, "doses_per_cycle": 1},
        "start_date": "2026-12-01",
        "with": [],
    },
    "patient": {
        "birth_date": "1968-04-12",
        "sex": "female",
        "pregnant": False,
        "breastfeeding": False,
    },
    "conditions": ["C50.911", "C78.7"],
    "observations": [
        {"code": HEIGHT, "value": 165, "unit": "cm", "date": LAB_DATE},
        {"code": WEIGHT, "value": 68, "unit": "kg", "date": LAB_DATE},
        {"code": ANC, "value": 3200, "unit": "/uL", "date": LAB_DATE},
        {"code": PLATELETS, "value": 240000, "unit": "/uL", "date": LAB_DATE},
        {"code": AST, "uln_multiple": 0.8, "date": LAB_DATE},
        {"code": ALT, "uln_multiple": 0.7, "date": LAB_DATE},
        {"code": BILIRUBIN, "uln_multiple": 0.5, "date": LAB_DATE},
    ],
    "medications": [{"name": "ondansetron", "status": "active"}],
    "allergies": [{"name": "penicillin", "severity": "mild"}],
    "practitioners": [{"role": "prescriber", "npi": "1234567893", "specialty": "207RX0202X"}],
}


def base(dose: float | None = 40, unit: str = "mg/m2") -> dict[str, Any]:
    """An approvable request: the drug alone at 40 mg/m2 every 21 days for metastatic breast
    cancer, prescribed by an oncologist, normal labs, a current medication that interacts with
    nothing and an allergy to something else."""
    request = copy.deepcopy(_BASE)
    if dose is None:
        del request["service"]["dose"]
    else:
        request["service"]["dose"] = {"value": dose, "unit": unit}
    return request


def with_capecitabine(dose: float | None = 40) -> dict[str, Any]:
    request = base(dose)
    request["service"]["with"] = ["capecitabine"]
    return request


def set_observation(request: dict[str, Any], code: str, **fields: Any) -> dict[str, Any]:
    """Replace the observations of `code` by one with these fields (dated LAB_DATE unless
    `date` is given; `date=None` leaves it undated)."""
    drop_observations(request, code)
    observation = {"code": code, "date": LAB_DATE, **fields}
    request["observations"].append({k: v for k, v in observation.items() if v is not None})
    return request


def drop_observations(request: dict[str, Any], *codes: str) -> dict[str, Any]:
    request["observations"] = [o for o in request["observations"] if o["code"] not in codes]
    return request


def set_liver(
    request: dict[str, Any], ast: float | None, alt: float | None, bilirubin: float | None
) -> dict[str, Any]:
    """The liver tests as multiples of the upper limit of normal; None leaves one out."""
    for code, value in ((AST, ast), (ALT, alt), (BILIRUBIN, bilirubin)):
        drop_observations(request, code)
        if value is not None:
            set_observation(request, code, uln_multiple=value)
    return request


def dosing_for(request: Request) -> DosingResult:
    """What a dosing step would report: the BSA (given, else Mosteller from height and weight,
    to 2 decimals) and the dose in mg (given in mg, or mg/m2 x BSA)."""
    measures = {o.code: float(o.value) for o in request.observations if o.unit is not None}  # type: ignore[arg-type]
    bsa: float | None = measures.get(BSA)
    if bsa is None and HEIGHT in measures and WEIGHT in measures:
        bsa = round(mosteller(measures[HEIGHT], measures[WEIGHT]), 2)
    service = request.service
    mg: float | None = None
    if service.dose is not None and service.dose.unit == "mg":
        mg = service.dose.value
    elif service.dose is not None and service.dose.unit == "mg/m2" and bsa is not None:
        mg = round(service.dose.value * bsa, 1)
    schedule = service.schedule
    requested = RequestedRegimen(
        dose=service.dose.value if service.dose else None,
        dose_unit=service.dose.unit if service.dose else None,
        cycle_length_days=schedule.cycle_length_days if schedule else None,
        doses_per_cycle=schedule.doses_per_cycle if schedule else None,
        cycle_days=None,
        induction_days=None,
        interval_days=None,
        route=service.route,
    )
    return DosingResult(
        status="within",
        requested=requested,
        bsa_m2=bsa,
        bsa_source="test",
        weight_kg=measures.get(WEIGHT),
        weight_source="test",
        mg_per_dose=mg,
        regimen=None,
        checks=(),
    )


@cache
def shipped_data() -> SafetyData:
    return load_safety_text(DATA.read_text(encoding="utf-8"), str(DATA))


@cache
def reviewer() -> SafetyReviewer:
    """The reviewer compiled from the shipped safety data."""
    return SafetyReviewer(shipped_data())


def review(
    submitted: dict[str, Any],
    dosing: DosingResult | Literal["built"] | None = "built",
    **options: Any,
) -> Review:
    """Screen a request with the shipped data. By default the dosing result is `dosing_for`'s;
    give another, or None for no dosing step."""
    request = parse_request(submitted)
    result = dosing_for(request) if dosing == "built" else dosing
    bsa = result.bsa_m2 if isinstance(result, DosingResult) else None
    return reviewer().review(
        request, result if isinstance(result, DosingResult) else None, bsa, **options
    )


def not_run(found: Review) -> dict[str, tuple[str, ...]]:
    """The screens that could not run, with the fields each lacked."""
    return {s.screen: s.fields for s in found.not_run}


def codes(found: Review) -> list[str]:
    return [a.code for a in found.alerts]
