"""The prior-authorization request contract: one patient's clinical record for one service.

Shaped like the clinical record (and like FHIR, so every mapping is direct): the patient, coded
conditions, coded observations, medications past and present, practitioners, the requested
service (product codes, dose, schedule) and answers to the policy's own questions. Every field a
person may not know is optional, and a missing or null value means *unknown*, never *no*. The
published JSON Schema is `priorauth schema request`; docs/request.md explains each field.

Units are UCUM codes and are checked here (`mcg` is read as `ug`); code systems are checked
against clinical.systems. Question ids in `answers` are checked against the policy when the
request is decided (engine.answers), since only the policy knows its questions.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from functools import lru_cache
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from priorauth.clinical.codes import normalize_icd10, normalize_ndc, npi_is_valid
from priorauth.clinical.observations import check_plausible
from priorauth.clinical.schedules import fewest_days
from priorauth.clinical.systems import system_name
from priorauth.clinical.units import UnitError, normalize_unit
from priorauth.clinical.units import dimension as unit_dimension
from priorauth.errors import FieldProblem, InvalidRequest
from priorauth.sizes import REQUEST_ID, has_nul, nul_paths

__all__ = [
    "Allergy",
    "Answer",
    "Coding",
    "Condition",
    "Dose",
    "Medication",
    "Observation",
    "Patient",
    "Practitioner",
    "Request",
    "Schedule",
    "Service",
    "parse_request",
]


def _npi(value: str) -> str:
    if not npi_is_valid(value):
        raise ValueError("not a valid NPI (10 digits with a correct check digit)")
    return value


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("must be a finite number")
    return value


@lru_cache(maxsize=1024)
def _unit(value: str) -> str:
    unit = normalize_unit(value)
    try:
        unit_dimension(unit)
    except UnitError as exc:
        raise ValueError(str(exc)) from None
    return unit


Npi = Annotated[str, AfterValidator(_npi)]
Number = Annotated[float, AfterValidator(_finite), Field(ge=-1e12, le=1e12)]
Unit = Annotated[str, Field(min_length=1, max_length=64), AfterValidator(_unit)]
System = Annotated[str, Field(min_length=1, max_length=256), AfterValidator(system_name)]
Text = Annotated[str, Field(min_length=1, max_length=500)]
Code = Annotated[str, Field(min_length=1, max_length=64)]
# Dates a clinical record can hold. The bounds keep date arithmetic (a one-year approval from the
# start date) inside the calendar: a start date of 9999-12-31 is refused, not overflowed.
_EARLIEST, _LATEST = dt.date(1900, 1, 1), dt.date(2199, 12, 31)
_EARLIEST_TIME = dt.datetime(1900, 1, 1, tzinfo=dt.UTC)
_LATEST_TIME = dt.datetime(2199, 12, 31, tzinfo=dt.UTC)
ClinicalDate = Annotated[dt.date, Field(ge=_EARLIEST, le=_LATEST)]
QuestionId = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=64)]


class _Part(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


def _normalized_code(system: str, code: str) -> str:
    """A code in its usual form for its system: ICD-10-CM dotted upper case, NDC 5-4-2, HCPCS
    and CPT upper case; others as given."""
    if system == "icd-10-cm":
        return normalize_icd10(code)
    if system == "ndc":
        return normalize_ndc(code)
    if system in ("hcpcs", "cpt", "nucc"):
        return code.upper()
    return code


class Coding(_Part):
    """A code in a code system (`{"system": "hcpcs", "code": "J9999"}`). The system is a short
    name or its FHIR URI; see docs/request.md for the list."""

    system: System
    code: Code
    display: Text | None = None

    @model_validator(mode="after")
    def _shaped(self) -> Coding:
        object.__setattr__(self, "code", _normalized_code(self.system, self.code))
        return self


def _coded(default_system: str) -> Callable[[Any], Any]:
    """Accept a bare code string for a part whose system has a default."""

    def before(value: Any) -> Any:
        if isinstance(value, str):
            return {"code": value, "system": default_system}
        return value

    return before


class Patient(_Part):
    """Who the patient is. Height, weight and other measures are observations."""

    birth_date: ClinicalDate | None = None
    sex: Literal["female", "male", "other", "unknown"] | None = None
    pregnant: bool | None = None
    breastfeeding: bool | None = None


class Condition(_Part):
    """A coded condition (a diagnosis): ICD-10-CM by default; ICD-O-3 for a tumour's
    morphology (histology), SNOMED CT and others allowed."""

    code: Code
    system: System = "icd-10-cm"
    display: Text | None = None
    status: Literal["active", "recurrence", "remission", "resolved", "history"] | None = None
    onset_date: ClinicalDate | None = None

    @model_validator(mode="after")
    def _shaped(self) -> Condition:
        object.__setattr__(self, "code", _normalized_code(self.system, self.code))
        return self


class Observation(_Part):
    """A coded observation (LOINC by default): a quantity with its UCUM unit, a code, a yes/no
    or text, and the date it was taken. `uln_multiple` is a lab value as a multiple of the upper
    limit of normal (AST 2.6 x ULN), given with or instead of the value."""

    code: Code
    system: System = "loinc"
    display: Text | None = None
    value: Number | bool | Annotated[str, Field(min_length=1, max_length=200)] | None = None
    unit: Unit | None = None
    uln_multiple: Annotated[Number, Field(ge=0)] | None = None
    date: ClinicalDate | None = None

    @model_validator(mode="after")
    def _valued(self) -> Observation:
        if self.value is None and self.uln_multiple is None:
            raise ValueError("an observation needs a value (or uln_multiple)")
        numeric = isinstance(self.value, float | int) and not isinstance(self.value, bool)
        if self.unit is not None and not numeric:
            raise ValueError("a unit goes with a numeric value")
        if numeric and self.system == "loinc":
            problem = check_plausible(self.code, float(self.value), self.unit)  # type: ignore[arg-type]
            if problem is not None:
                raise ValueError(problem)
        return self


_SETTINGS = Literal[
    "adjuvant", "neoadjuvant", "metastatic", "locally-advanced", "maintenance", "other"
]
_OUTCOMES = Literal[
    "failed", "intolerant", "contraindicated", "progressed", "responded", "completed", "ongoing"
]


class Medication(_Part):
    """A medication the patient takes or took (or could not take): coded (RxNorm, NDC, HCPCS)
    or named, with its dates, the setting it was given in and how it went.

    `regimen` groups agents given together (the two agents of an "AC" regimen) so regimens
    can be counted; `status` says whether it is taken now."""

    name: Text | None = None
    code: Code | None = None
    system: System | None = None
    status: Literal["active", "completed", "stopped", "intended", "on-hold", "unknown"] | None = (
        None
    )
    start_date: ClinicalDate | None = None
    end_date: ClinicalDate | None = None
    setting: _SETTINGS | None = None
    outcome: _OUTCOMES | None = None
    progression_date: ClinicalDate | None = None
    progressed_on_therapy: bool | None = None
    regimen: Annotated[str, Field(min_length=1, max_length=64)] | None = None

    @model_validator(mode="after")
    def _identified(self) -> Medication:
        if self.name is None and self.code is None:
            raise ValueError("a medication needs a name or a code")
        if self.code is not None and self.system is None:
            raise ValueError("a medication code needs its system (rxnorm, ndc, hcpcs, ...)")
        if self.code is not None and self.system is not None:
            object.__setattr__(self, "code", _normalized_code(self.system, self.code))
        if self.start_date and self.end_date and self.end_date < self.start_date:
            raise ValueError("end_date is before start_date")
        return self


def _named(value: object) -> object:
    return {"name": value} if isinstance(value, str) else value


class Allergy(_Part):
    """An allergy or intolerance, by substance name and optionally a code."""

    name: Text
    code: Code | None = None
    system: System | None = None
    severity: Literal["mild", "moderate", "severe"] | None = None


class Practitioner(_Part):
    """A practitioner on the request: the prescriber, or a consultant. `specialty` is a NUCC
    taxonomy code (`207RX0202X`) or a readable name (`medical-oncology`)."""

    role: Literal["prescriber", "consultant"] = "prescriber"
    npi: Npi | None = None
    specialty: Annotated[str, Field(min_length=1, max_length=100)] | None = None
    name: Text | None = None


class Dose(_Part):
    """One dose: a value and its unit: a mass (`mg`, `g`, `ug`), a mass per body surface area
    (`mg/m2`) or per body weight (`mg/kg`)."""

    value: Annotated[Number, Field(gt=0, le=1_000_000)]
    unit: Unit

    @field_validator("unit")
    @classmethod
    def _dose_unit(cls, unit: str) -> str:
        mass, _, per = unit.partition("/")
        if per not in ("", "m2", "kg") or unit_dimension(mass) != "[mass]":
            raise ValueError(
                f"a dose unit is a mass, a mass per m2 or a mass per kg (mg, mg/m2, mg/kg), "
                f"not {unit!r}"
            )
        return unit


def _weeks_to_days(data: Any) -> Any:
    """`induction_weeks` and `interval_weeks` are read as days (weeks x 7)."""
    if not isinstance(data, dict):
        return data
    data = dict(data)
    for weeks, days in (("induction_weeks", "induction_days"), ("interval_weeks", "interval_days")):
        if weeks in data:
            value = data.pop(weeks)
            if days in data and value is not None:
                raise ValueError(f"give {weeks} or {days}, not both")
            if isinstance(value, list | tuple):
                data[days] = [
                    w * 7 if isinstance(w, int | float) and not isinstance(w, bool) else w
                    for w in value
                ]
            elif isinstance(value, int | float) and not isinstance(value, bool):
                data[days] = value * 7
            else:
                data[days] = value
    return data


class Schedule(_Part):
    """When the doses are given. Either cycles (so many doses in each cycle of so many days, or
    on given days of the cycle: days 1 and 8 of 21), or an induction (doses on given days from
    the first, day 0: weeks 0, 2 and 6 are days 0, 14 and 42) then a maintenance interval, or
    just an interval (every 8 weeks, every 6 months). `induction_weeks` and `interval_weeks`
    may be given instead of days; `interval_months` is in calendar months."""

    cycle_length_days: Annotated[int, Field(ge=1, le=366, strict=True)] | None = None
    doses_per_cycle: Annotated[int, Field(ge=1, le=31, strict=True)] | None = None
    cycle_days: (
        Annotated[tuple[Annotated[int, Field(ge=1, le=366, strict=True)], ...], Field(min_length=1)]
        | None
    ) = None
    induction_days: (
        Annotated[tuple[Annotated[int, Field(ge=0, le=366, strict=True)], ...], Field(min_length=1)]
        | None
    ) = None
    interval_days: Annotated[int, Field(ge=1, le=731, strict=True)] | None = None
    interval_months: Annotated[int, Field(ge=1, le=24, strict=True)] | None = None

    @model_validator(mode="before")
    @classmethod
    def _weeks(cls, data: Any) -> Any:
        return _weeks_to_days(data)

    @model_validator(mode="after")
    def _consistent(self) -> Schedule:
        if self.cycle_days is not None:
            if list(self.cycle_days) != sorted(set(self.cycle_days)):
                raise ValueError("cycle_days must be distinct days in increasing order")
            if self.cycle_length_days is None:
                raise ValueError("cycle_days need cycle_length_days")
            if self.cycle_days[-1] > self.cycle_length_days:
                raise ValueError("a cycle day falls after the end of the cycle")
            if self.doses_per_cycle is not None and self.doses_per_cycle != len(self.cycle_days):
                raise ValueError("doses_per_cycle disagrees with the number of cycle_days")
        if self.induction_days is not None and list(self.induction_days) != sorted(
            set(self.induction_days)
        ):
            raise ValueError("induction days must be distinct and in increasing order")
        if self.interval_days is not None and self.interval_months is not None:
            raise ValueError("give interval_days (or interval_weeks) or interval_months, not both")
        cycles = self.cycle_length_days is not None or self.doses_per_cycle is not None
        if cycles and (self.interval_days is not None or self.interval_months is not None):
            raise ValueError("give cycles (cycle_length_days) or an interval, not both")
        return self

    @property
    def interval(self) -> int | None:
        """The interval in days; an interval in calendar months as the fewest days it spans."""
        if self.interval_months is not None:
            return fewest_days(self.interval_months)
        return self.interval_days

    @property
    def doses_in_cycle(self) -> int | None:
        """Doses in each cycle: the count given, or the number of cycle days."""
        if self.cycle_days is not None:
            return len(self.cycle_days)
        return self.doses_per_cycle


class Service(_Part):
    """The requested drug or service: its product codes (HCPCS, NDC, RxNorm, ...), each dose,
    the schedule, the route, the first planned dose and the agents given alongside.

    `code` with `system` (HCPCS by default) is shorthand for one entry of `codes`."""

    codes: tuple[Coding, ...] = ()
    code: Code | None = None
    system: System = "hcpcs"
    name: Text | None = None
    dose: Dose | None = None
    schedule: Schedule | None = None
    route: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    start_date: ClinicalDate | None = None
    with_: Annotated[
        tuple[Annotated[str, Field(min_length=1, max_length=200)], ...], Field(alias="with")
    ] = ()

    model_config = ConfigDict(populate_by_name=True)

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        """`code` (with `system`) becomes the first entry of `codes`."""
        if isinstance(data, dict) and data.get("code") is not None:
            data = dict(data)
            first = {"system": data.pop("system", None) or "hcpcs", "code": data.pop("code")}
            codes = data.get("codes") or []
            data["codes"] = [first, *codes] if isinstance(codes, list | tuple) else codes
        return data

    @model_validator(mode="after")
    def _identified(self) -> Service:
        if not self.codes:
            raise ValueError("give the service's code (a HCPCS code, an NDC, ...) or codes")
        return self

    def label(self) -> str:
        """How people see the service named: its first code (`hcpcs J9999`)."""
        first = self.codes[0]
        return f"{first.system} {first.code}"


class Answer(_Part):
    """An answer to one of the policy's questions (question ids are the policy's), and who
    attested it (an NPI or a name)."""

    value: bool | Number | dt.date | Annotated[str, Field(min_length=1, max_length=500)]
    by: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    at: dt.datetime | None = None


def _answer(value: object) -> object:
    """A bare value stands for `{"value": ...}`; null stays null (unknown)."""
    if value is None or isinstance(value, dict):
        return value
    return {"value": value}


_NO_PATIENT = Patient()


class Request(_Part):
    """A prior-authorization request for one service for one patient."""

    request_id: Annotated[
        str, Field(min_length=1, max_length=REQUEST_ID, pattern=r"^[A-Za-z0-9._:-]+$")
    ]
    type: Literal["initial", "continuation"] = "initial"
    prior_authorization_id: Annotated[str, Field(max_length=REQUEST_ID)] | None = None
    urgency: Literal["standard", "expedited"] = "standard"
    received_at: Annotated[dt.datetime, Field(ge=_EARLIEST_TIME, le=_LATEST_TIME)] | None = None
    service: Service
    patient: Annotated[Patient, Field(default_factory=lambda: _NO_PATIENT)]
    conditions: tuple[Annotated[Condition, BeforeValidator(_coded("icd-10-cm"))], ...] = ()
    observations: tuple[Observation, ...] = ()
    medications: tuple[Annotated[Medication, BeforeValidator(_named)], ...] = ()
    allergies: tuple[Annotated[Allergy, BeforeValidator(_named)], ...] = ()
    practitioners: tuple[Practitioner, ...] = ()
    answers: dict[QuestionId, Annotated[Answer | None, BeforeValidator(_answer)]] = Field(
        default_factory=dict, json_schema_extra={"default": {}}
    )
    # Where each field came from when the request was mapped from another document, e.g.
    # {"conditions[1]": "Condition/c1.code.coding[0]"} for a FHIR bundle. Carried through to the
    # determination so a fact's evidence can be traced to the original element.
    sources: Annotated[
        dict[str, str], Field(default_factory=dict, json_schema_extra={"default": {}})
    ]

    def practitioner(self, role: str) -> tuple[tuple[int, Practitioner], ...]:
        """The practitioners in a role, with their places in `practitioners`."""
        return tuple((i, p) for i, p in enumerate(self.practitioners) if p.role == role)


def _field(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif part.startswith("function-") or part in {
            "str",
            "Medication",
            "Allergy",
            "Condition",
            "Answer",
            "bool",
            "float",
            "date",
            "constrained-str",
            "[key]",
        }:
            continue
        else:
            text += f".{part}" if text else part
    return text


def parse_request(data: object) -> Request:
    """Validate a request (a dict or a Request) and return it, or raise InvalidRequest.

    Each problem names the field at fault, e.g. `observations[0].unit: unknown unit 'kgg'`.
    """
    if isinstance(data, Request):
        return data
    if not isinstance(data, dict):
        raise InvalidRequest([FieldProblem("", "a request is a JSON object")])
    # No text in a request holds a NUL character (PostgreSQL cannot store or compare one).
    if has_nul(data):
        raise InvalidRequest(
            [FieldProblem(path, "a NUL character is not accepted") for path in nul_paths(data)]
        )
    try:
        return Request.model_validate(data)
    except ValidationError as exc:
        problems: list[FieldProblem] = []
        for e in exc.errors(include_url=False):
            problem = FieldProblem(_field(tuple(e["loc"])), e["msg"].removeprefix("Value error, "))
            # A value that fits none of a union's types is reported once, by its first type.
            if all(p.field != problem.field for p in problems):
                problems.append(problem)
        raise InvalidRequest(problems) from exc
