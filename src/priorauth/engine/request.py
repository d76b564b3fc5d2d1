"""The prior-authorization request contract: what a requester sends, validated and normalized.

Every field that a person may not know is optional, and a missing or null value means *unknown*,
never *no*. The published JSON Schema is `priorauth schema request`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)

from priorauth.clinical.codes import ICD10_CODE_PATTERN, normalize_ndc, npi_is_valid
from priorauth.errors import FieldProblem, InvalidRequest

__all__ = [
    "Allergy",
    "Disease",
    "DrugRef",
    "Labs",
    "Medication",
    "Patient",
    "Prescriber",
    "PriorTherapy",
    "Regimen",
    "Request",
    "parse_request",
]


def _npi(value: str) -> str:
    if not npi_is_valid(value):
        raise ValueError("not a valid NPI (10 digits with a correct check digit)")
    return value


Npi = Annotated[str, AfterValidator(_npi)]
# Dates a clinical record can hold. The bounds keep date arithmetic (a one-year approval from the
# start date) inside the calendar: a start date of 9999-12-31 is refused, not overflowed.
_EARLIEST, _LATEST = dt.date(1900, 1, 1), dt.date(2199, 12, 31)
_EARLIEST_TIME = dt.datetime(1900, 1, 1, tzinfo=dt.UTC)
_LATEST_TIME = dt.datetime(2199, 12, 31, tzinfo=dt.UTC)
ClinicalDate = Annotated[dt.date, Field(ge=_EARLIEST, le=_LATEST)]
# Checked and upper-cased natively (no Python call per code); C50912 and C50.912 both pass and
# match alike (clinical.codes.CodeSet ignores the dot).
Icd10 = Annotated[
    str, StringConstraints(strip_whitespace=True, to_upper=True, pattern=ICD10_CODE_PATTERN)
]
Ndc = Annotated[str, AfterValidator(normalize_ndc)]


class _Part(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class DrugRef(_Part):
    """The drug (or service) requested, by HCPCS code or NDC (either form), else by a code in
    another system (`code`, with its `system`: a CPT code, say). Policies govern drugs by HCPCS
    and NDC, so a request known only by another code is pended for intake. `name` is for
    people only."""

    hcpcs: Annotated[str, Field(pattern=r"^[A-Za-z][0-9]{4}$")] | None = None
    ndc: Ndc | None = None
    code: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    system: Annotated[str, Field(min_length=1, max_length=256)] | None = None
    name: str | None = None

    @model_validator(mode="after")
    def _identified(self) -> DrugRef:
        if self.hcpcs is None and self.ndc is None and self.code is None:
            raise ValueError("give the drug's hcpcs code or its ndc (or another code)")
        return self

    def label(self) -> str:
        """How people see the drug named: `J9207`, `70020-1910-01`, or `CPT 99213`."""
        if self.hcpcs is not None:
            return self.hcpcs
        if self.ndc is not None:
            return self.ndc
        return f"{self.system} {self.code}" if self.system else str(self.code)


class Patient(_Part):
    """The patient. Height and weight give the body surface area unless `bsa_m2` is measured."""

    birth_date: ClinicalDate | None = None
    sex: Literal["female", "male", "other", "unknown"] | None = None
    height_cm: Annotated[float, Field(gt=0, le=272)] | None = None
    weight_kg: Annotated[float, Field(gt=0, le=700)] | None = None
    bsa_m2: Annotated[float, Field(gt=0, le=5)] | None = None
    pregnant: bool | None = None
    breastfeeding: bool | None = None


class Disease(_Part):
    """What the requester attests about the disease; null or absent is unknown, never false."""

    metastatic: bool | None = None
    recurrent_unresectable_locoregional: bool | None = None
    no_response_to_preoperative_therapy: bool | None = None
    her2: Literal["positive", "negative", "low"] | None = None
    hormone_receptor: Literal["positive", "negative"] | None = None
    triple_negative: bool | None = None


class Prescriber(_Part):
    """Who prescribes: NPI, specialty (NUCC taxonomy code or a name like `medical-oncology`)."""

    npi: Npi | None = None
    specialty: str | None = None
    consulting_oncologist_npi: Npi | None = None


class Regimen(_Part):
    """The requested regimen: each dose, how many doses in a cycle of so many days."""

    dose: Annotated[float, Field(gt=0, le=100_000)] | None = None
    dose_unit: Literal["mg/m2", "mg"] | None = None
    doses_per_cycle: Annotated[int, Field(ge=1, le=31)] | None = None
    cycle_length_days: Annotated[int, Field(ge=1, le=366)] | None = None
    start_date: ClinicalDate | None = None
    route: str | None = None
    with_: Annotated[tuple[str, ...], Field(alias="with")] = ()

    model_config = ConfigDict(populate_by_name=True)

    @model_validator(mode="after")
    def _unit_with_dose(self) -> Regimen:
        if self.dose is not None and self.dose_unit is None:
            raise ValueError("dose_unit is required with a dose (mg/m2 or mg)")
        return self


class Labs(_Part):
    """Baseline laboratory values; liver tests as multiples of the upper limit of normal."""

    anc_per_mm3: Annotated[float, Field(ge=0)] | None = None
    platelets_per_mm3: Annotated[float, Field(ge=0)] | None = None
    ast_uln_ratio: Annotated[float, Field(ge=0)] | None = None
    alt_uln_ratio: Annotated[float, Field(ge=0)] | None = None
    bilirubin_uln_ratio: Annotated[float, Field(ge=0)] | None = None
    collected_on: ClinicalDate | None = None


class Medication(_Part):
    """A medication by generic name, with an optional RxNorm code."""

    name: Annotated[str, Field(min_length=1)]
    rxnorm: Annotated[str, Field(pattern=r"^[0-9]{1,10}$")] | None = None


class Allergy(_Part):
    """An allergy or intolerance by substance name, with an optional RxNorm code."""

    name: Annotated[str, Field(min_length=1)]
    rxnorm: Annotated[str, Field(pattern=r"^[0-9]{1,10}$")] | None = None
    severity: Literal["mild", "moderate", "severe"] | None = None


def _named(value: object) -> object:
    return {"name": value} if isinstance(value, str) else value


class PriorTherapy(_Part):
    """A systemic therapy given before, with the dates that define resistance to it."""

    agent: Annotated[str, Field(min_length=1)]
    setting: Literal["adjuvant", "neoadjuvant", "metastatic"] | None = None
    start_date: ClinicalDate | None = None
    end_date: ClinicalDate | None = None
    progression_date: ClinicalDate | None = None
    progressed_on_therapy: bool | None = None


# Shared empty parts: frozen, so one instance serves every request that leaves them out (a
# default instance would otherwise be deep-copied for each request).
_NO_PATIENT = Patient()
_NO_DISEASE = Disease()
_NO_PRESCRIBER = Prescriber()
_NO_REGIMEN = Regimen()
_NO_LABS = Labs()


class Request(_Part):
    """A prior-authorization request for one drug for one patient."""

    request_id: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")]
    type: Literal["initial", "continuation"] = "initial"
    prior_authorization_id: Annotated[str, Field(max_length=64)] | None = None
    urgency: Literal["standard", "expedited"] = "standard"
    received_at: Annotated[dt.datetime, Field(ge=_EARLIEST_TIME, le=_LATEST_TIME)] | None = None
    drug: DrugRef
    patient: Annotated[Patient, Field(default_factory=lambda: _NO_PATIENT)]
    diagnoses: tuple[Icd10, ...] = ()
    disease: Annotated[Disease, Field(default_factory=lambda: _NO_DISEASE)]
    prescriber: Annotated[Prescriber, Field(default_factory=lambda: _NO_PRESCRIBER)]
    regimen: Annotated[Regimen, Field(default_factory=lambda: _NO_REGIMEN)]
    labs: Annotated[Labs, Field(default_factory=lambda: _NO_LABS)]
    medications: tuple[Annotated[Medication, BeforeValidator(_named)], ...] = ()
    allergies: tuple[Annotated[Allergy, BeforeValidator(_named)], ...] = ()
    prior_therapies: tuple[PriorTherapy, ...] = ()
    # Where each field came from when the request was mapped from another document, e.g.
    # {"diagnoses[1]": "Condition/c1.code.coding[0]"} for a FHIR bundle. Carried through to the
    # determination so a fact's evidence can be traced to the original element.
    # A fresh dict per request (a plain {} default would be deep-copied for each one).
    sources: Annotated[
        dict[str, str], Field(default_factory=dict, json_schema_extra={"default": {}})
    ]


# The request model's validator, called directly: Request.model_validate adds a Python call.
_VALIDATE: Callable[[object], Request] = Request.__pydantic_validator__.validate_python


def _field(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif part.startswith("function-") or part in {"str", "Medication", "Allergy"}:
            continue
        else:
            text += f".{part}" if text else part
    return text


def parse_request(data: object) -> Request:
    """Validate a request (a dict or a Request) and return it, or raise InvalidRequest.

    Each problem names the field at fault, e.g. `patient.weight_kg: Input should be greater
    than 0`.
    """
    if isinstance(data, Request):
        return data
    if not isinstance(data, dict):
        raise InvalidRequest([FieldProblem("", "a request is a JSON object")])
    try:
        return _VALIDATE(data)
    except ValidationError as exc:
        problems = [
            FieldProblem(_field(tuple(e["loc"])), e["msg"].removeprefix("Value error, "))
            for e in exc.errors(include_url=False)
        ]
        raise InvalidRequest(problems) from exc
