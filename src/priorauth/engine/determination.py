"""The determination contract: what the engine decides about a request, and why.

`outcome` is `approved` or `pended`, never `denied`: an adverse decision needs a licensed
clinician. The published JSON Schema is `priorauth schema determination`.

The parts are frozen, slotted dataclasses (engine.records): the engine builds thousands of them a
second and shares the ones that do not vary (a criterion node with a given status) between
determinations.
Pydantic serializes and validates them through `Determination.model_dump()` and friends.
"""

from __future__ import annotations

import datetime as dt
from functools import cache
from typing import Any, Literal, get_args

from pydantic import TypeAdapter

from priorauth.engine.records import record
from priorauth.engine.review import GuidelineContext, LabelIndication, ScreenNotRun, Unrecognized
from priorauth.policy.model import ReasonCode

__all__ = [
    "REASON_ORDER",
    "SEVERITY_ORDER",
    "Alert",
    "Authorization",
    "Conflict",
    "CriterionResult",
    "Determination",
    "DosingResult",
    "EngineRef",
    "Evidence",
    "Exemption",
    "FactResult",
    "GovernedBy",
    "IndicationResult",
    "Missing",
    "Operator",
    "PolicyRef",
    "Reason",
    "RegimenCheck",
    "RequestedRegimen",
    "Status",
]

Status = Literal["met", "not-met", "unknown"]
Operator = Literal["all", "any", "not", "at-least", "fact"]
# The policy's routing names the same reasons, so the policy model owns the list. Its order is
# most serious first: the order reasons are listed in, and the first one routes the request.
Reason = ReasonCode
REASON_ORDER: tuple[Reason, ...] = get_args(ReasonCode)

JsonScalar = bool | int | float | str | None


@record
class Evidence:
    """One piece of the request a fact was read from: the field path and the value found there."""

    field: str
    value: JsonScalar | tuple[str, ...]


@record
class FactResult:
    """A derived fact: its value (true, false, a number, a choice, or null for unknown) and
    provenance. `bounds` is the least and the most a count can be when some records may or may
    not count (the value is then null; a null upper bound: no limit, the record may be
    incomplete); `unit` is a number's unit."""

    name: str
    description: str
    value: bool | int | float | str | None
    evidence: tuple[Evidence, ...]
    note: str | None = None
    unit: str | None = None
    bounds: tuple[int, int | None] | None = None


@record
class Conflict:
    """Evidence that disagrees about a fact. The fact is left unknown for a person to settle."""

    fact: str
    message: str
    evidence: tuple[Evidence, ...]


@record
class Missing:
    """An unknown that matters to the outcome, as a question a person can answer."""

    fact: str
    question: str
    fields: tuple[str, ...]
    criteria: tuple[str, ...]


@record
class CriterionResult:
    """One evaluated node of the criteria tree, with the policy's own id and wording."""

    id: str
    text: str
    operator: Operator
    status: Status
    facts: tuple[str, ...]
    children: tuple[CriterionResult, ...]


@record
class IndicationResult:
    """Which of the policy's indications the request was judged under, and whether it applies."""

    id: str | None
    title: str | None
    status: Status
    fact: str | None


@record
class RequestedRegimen:
    """The regimen as requested: each dose with its unit, the schedule, the route."""

    dose: float | None
    dose_unit: str | None
    cycle_length_days: int | None
    doses_per_cycle: int | None
    cycle_days: tuple[int, ...] | None
    induction_days: tuple[int, ...] | None
    interval_days: int | None
    route: str | None
    interval_months: int | None = None


@record
class RegimenCheck:
    """How the requested regimen compares with one of the policy's regimens: the dose in the
    regimen's unit (when it could be worked out) and, in words, why it fits or not."""

    id: str
    text: str
    status: Status
    detail: str
    dose: float | None = None
    dose_unit: str | None = None


@record
class DosingResult:
    """The requested regimen fitted to the policy's regimens. `bsa_m2` (capped when the policy
    caps it) and `weight_kg` are the body measures the dose was converted with."""

    status: Literal["within", "outside", "unknown"]
    requested: RequestedRegimen
    bsa_m2: float | None
    bsa_source: str | None
    weight_kg: float | None
    weight_source: str | None
    mg_per_dose: float | None
    regimen: str | None
    checks: tuple[RegimenCheck, ...]


@record
class Authorization:
    """What an approval authorizes: the period, the regimen, the dose and, when the dose in mg
    is known, the billing units for the period."""

    valid_from: dt.date
    valid_through: dt.date
    regimen: str
    regimen_text: str
    dose: float | None
    dose_unit: str | None
    doses: int | None
    mg_per_dose: float | None
    billing_code: str | None
    units_per_dose: int | None
    units: int | None
    continues: str | None


# Most serious first. A contraindication, a dose limit or a review holds an otherwise
# approvable request for a pharmacist; a warning rides along.
SEVERITY_ORDER = {"contraindication": 0, "dose-limit": 1, "review": 2, "warning": 3}


@record
class Alert:
    """A safety finding for the reviewer: code, severity, message, where the rule comes from."""

    code: str
    severity: Literal["contraindication", "dose-limit", "review", "warning"]
    message: str
    source: str
    facts: dict[str, JsonScalar]


@record
class PolicyRef:
    id: str
    version: str
    content_hash: str
    # The hash of the policy's safety data file (policy.safety), when it has one.
    safety_hash: str | None = None
    # The drug vocabulary the screens read (its id, version and the hash of its files).
    vocabulary: str | None = None


@record
class EngineRef:
    name: str
    version: str


@record
class GovernedBy:
    """How the policy was found when the service's codes are none of the policy's (an order
    coded in RxNorm only, say, whose code the policy does not list): the product the drug
    vocabulary found in the service's name is the policy's drug."""

    field: Literal["service.name"]
    text: str
    product: str


@record
class Exemption:
    """Why a request that would have pended is approved without review: its prescriber holds
    a gold card (an exemption from prior authorization) for the service on the service date."""

    program: Literal["gold-card"]
    npi: str
    service: str
    effective_from: dt.date
    effective_through: dt.date
    # What the request would have been pended for, had the prescriber no exemption.
    would_pend_for: tuple[Reason, ...]


@record
class Determination:
    """The engine's answer to one request. See docs/determination.md for every field."""

    request_id: str
    type: Literal["initial", "continuation"]
    outcome: Literal["approved", "pended"]
    reasons: tuple[Reason, ...]
    route: str | None
    summary: str
    service_date: dt.date
    as_of: dt.date
    indication: IndicationResult | None
    criteria: CriterionResult | None
    facts: dict[str, FactResult]
    conflicts: tuple[Conflict, ...]
    missing: tuple[Missing, ...]
    dosing: DosingResult | None
    authorization: Authorization | None
    alerts: tuple[Alert, ...]
    policy: PolicyRef | None
    engine: EngineRef
    request_hash: str
    sources: dict[str, str]
    # Clinical review (engine.safety): screens that could not run for want of data, the label
    # indication and the guideline context. Information for the reviewer; see docs/safety.md.
    screens_not_run: tuple[ScreenNotRun, ...] = ()
    label_indication: LabelIndication | None = None
    guideline: GuidelineContext | None = None
    # Medications and partners the drug vocabulary does not know (see docs/safety.md).
    unrecognized: tuple[Unrecognized, ...] = ()
    # Set only when a gold card approved a request that would have pended (engine.goldcard);
    # left out of the JSON when not set, so other determinations read as they always have.
    exemption: Exemption | None = None
    # Set only when the policy was found by the drug's name, not its codes (catalog).
    governed_by: GovernedBy | None = None

    def explain(self) -> list[str]:
        """The reasoning step by step, in words, built from the evaluated tree (see explain)."""
        from priorauth.engine.explain import rationale

        return rationale(self)

    def model_dump(self, mode: Literal["json", "python"] = "json") -> dict[str, Any]:
        """The determination as plain data (JSON types by default): the contract."""
        result: dict[str, Any] = _adapter().dump_python(self, mode=mode, exclude=self._unset())
        return result

    def model_dump_json(self, indent: int | None = None) -> str:
        """The determination as JSON text; the same determination gives the same bytes."""
        return _adapter().dump_json(self, indent=indent, exclude=self._unset()).decode()

    def model_dump_json_bytes(self) -> bytes:
        """model_dump_json() as the UTF-8 bytes it is made from, without a str between (a
        batch hands them to Arrow as they are; most determinations hold a `≥` or `–`, and
        such a str is encoded to UTF-8 again when it is written)."""
        return _adapter().dump_json(self, exclude=self._unset())

    def _unset(self) -> set[str] | None:
        unset = {
            name
            for name, value in (("exemption", self.exemption), ("governed_by", self.governed_by))
            if value is None
        }
        return unset or None

    @classmethod
    def model_validate(cls, data: Any) -> Determination:
        """A determination read back from its JSON form (as stored)."""
        return _adapter().validate_python(data)

    @classmethod
    def model_json_schema(cls) -> dict[str, Any]:
        """The JSON Schema of the determination contract."""
        return _adapter().json_schema()


@cache
def _adapter() -> TypeAdapter[Determination]:
    return TypeAdapter(Determination)
