"""The policy model: a payer's drug policy as typed data (identity, facts, criteria, dosing)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "AgeFact",
    "Approval",
    "AttestedFact",
    "AttestedOrDiagnosisFact",
    "Billing",
    "Continuation",
    "CriterionSpec",
    "DiagnosisFact",
    "DoseRounding",
    "Dosing",
    "Drug",
    "FactSpec",
    "HistoryEntry",
    "Indication",
    "Policy",
    "Regimen",
    "SpecialtyFact",
]

# Why a request is pended, most serious first (engine.determination.REASON_ORDER keeps this order).
ReasonCode = Literal[
    "not-covered-indication",
    "criteria-not-met",
    "missing-information",
    "dose-exception",
    "safety-review",
    "no-policy",
]

ICD10_PATTERN = r"^[A-Z][0-9][0-9A-Z](\.[0-9A-Z]{0,4})?\*?$"
HCPCS_PATTERN = r"^[A-Z][0-9]{4}$"
NDC_PRODUCT_PATTERN = r"^[0-9]{5}-[0-9]{4}$"
# Paths into the request that an attested fact may read (see engine.request.Disease and friends).
ATTESTABLE_PATHS = (
    "disease.metastatic",
    "disease.recurrent_unresectable_locoregional",
    "disease.no_response_to_preoperative_therapy",
    "patient.pregnant",
    "patient.breastfeeding",
)
CONSULTANT_PATHS = ("prescriber.consulting_oncologist_npi",)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Billing(_Strict):
    """How the drug is billed: the code and how many mg make one billing unit."""

    code: Annotated[str, Field(pattern=HCPCS_PATTERN)]
    description: str = ""
    mg_per_unit: Annotated[float, Field(gt=0)]


class Drug(_Strict):
    """A drug the policy governs, by HCPCS code and NDC product (labeler-product)."""

    name: str
    generic_name: str
    labeler: str = ""
    hcpcs: list[Annotated[str, Field(pattern=HCPCS_PATTERN)]] = []
    ndc_products: list[Annotated[str, Field(pattern=NDC_PRODUCT_PATTERN)]] = []
    billing: Billing | None = None

    @model_validator(mode="after")
    def _identified(self) -> Drug:
        if not self.hcpcs and not self.ndc_products:
            raise ValueError("a drug needs at least one HCPCS code or NDC product")
        return self


class _FactBase(_Strict):
    description: str = ""
    question: Annotated[str, Field(min_length=1)]


class AgeFact(_FactBase):
    """Age in whole years on the service date, from patient.birth_date."""

    kind: Literal["age"]


class DiagnosisFact(_FactBase):
    """True when a request diagnosis matches a code pattern (`C50.*` a prefix, `Z85.3` exact)."""

    kind: Literal["diagnosis"]
    codes: list[Annotated[str, Field(pattern=ICD10_PATTERN)]] = Field(min_length=1)


class AttestedFact(_FactBase):
    """A yes/no the requester attests in a request field; absent or null is unknown."""

    kind: Literal["attested"]
    attested: Literal[ATTESTABLE_PATHS]  # type: ignore[valid-type]


class AttestedOrDiagnosisFact(_FactBase):
    """An attested flag corroborated (or contradicted) by diagnosis codes."""

    kind: Literal["attested-or-diagnosis"]
    attested: Literal[ATTESTABLE_PATHS]  # type: ignore[valid-type]
    codes: list[Annotated[str, Field(pattern=ICD10_PATTERN)]] = Field(min_length=1)


class SpecialtyFact(_FactBase):
    """True when the prescriber's specialty, or a named consultant, is one of `specialties`."""

    kind: Literal["specialty"]
    specialties: dict[Annotated[str, Field(pattern=r"^[0-9]{3}[0-9A-Z]{6}X$")], str] = Field(
        min_length=1
    )
    # Other names people write for a listed specialty, each mapped to its taxonomy code.
    aliases: dict[str, str] = {}
    # A request field naming a consulting specialist (an NPI); when present the fact holds.
    consultant: Literal[CONSULTANT_PATHS] | None = None  # type: ignore[valid-type]

    @model_validator(mode="after")
    def _aliases_known(self) -> SpecialtyFact:
        for alias, code in self.aliases.items():
            if code not in self.specialties:
                raise ValueError(f"alias {alias!r} points to {code!r}, not a listed specialty")
        return self


FactSpec = Annotated[
    AgeFact | DiagnosisFact | AttestedFact | AttestedOrDiagnosisFact | SpecialtyFact,
    Field(discriminator="kind"),
]


class CriterionSpec(_Strict):
    """One node of the criteria tree: ALL / ANY / NOT of children, or a test of one fact.

    A fact test without a comparator requires a true/false fact; `at_least` / `at_most` compare a
    numeric fact.
    """

    id: Annotated[str, Field(min_length=1)]
    text: Annotated[str, Field(min_length=1)]
    all: list[CriterionSpec] | None = None
    any: list[CriterionSpec] | None = None
    not_: CriterionSpec | None = Field(default=None, alias="not")
    fact: str | None = None
    at_least: float | None = None
    at_most: float | None = None

    @model_validator(mode="after")
    def _one_shape(self) -> CriterionSpec:
        shapes = [
            name
            for name, value in (
                ("all", self.all),
                ("any", self.any),
                ("not", self.not_),
                ("fact", self.fact),
            )
            if value is not None
        ]
        if len(shapes) != 1:
            raise ValueError(
                f"criterion {self.id!r} needs exactly one of all, any, not, fact "
                f"(has {', '.join(shapes) or 'none'})"
            )
        if self.fact is None and (self.at_least is not None or self.at_most is not None):
            raise ValueError(f"criterion {self.id!r}: at_least/at_most need a fact")
        for children in (self.all, self.any):
            if children is not None and not children:
                raise ValueError(f"criterion {self.id!r}: an empty list of criteria")
        return self

    def walk(self) -> list[CriterionSpec]:
        """This node and every node below it, depth first."""
        nodes = [self]
        for child in self.children():
            nodes.extend(child.walk())
        return nodes

    def children(self) -> list[CriterionSpec]:
        if self.all is not None:
            return self.all
        if self.any is not None:
            return self.any
        if self.not_ is not None:
            return [self.not_]
        return []


class Approval(_Strict):
    """An approval period: years and months added to the service date, less one day."""

    years: Annotated[int, Field(ge=0)] = 0
    months: Annotated[int, Field(ge=0)] = 0

    @model_validator(mode="after")
    def _positive(self) -> Approval:
        if self.years == 0 and self.months == 0:
            raise ValueError("an approval period needs years or months")
        return self


class Indication(_Strict):
    """A covered indication: when it applies (a fact), its criteria and its approval period."""

    id: str
    title: str
    label: str = ""
    when: str
    approval: Approval
    criteria: CriterionSpec


class DoseRounding(_Strict):
    """How a mg dose converted to mg/m2 is compared with a limit."""

    bsa_decimals: Annotated[int, Field(ge=0, le=4)] = 2
    mg_per_m2_decimals: Annotated[int, Field(ge=0, le=4)] = 1
    tolerance_percent: Annotated[float, Field(ge=0, le=25)] = 0


class Regimen(_Strict):
    """An approvable regimen: a per-dose limit and how many doses in a cycle of so many days."""

    id: str
    text: str
    max_dose_mg_per_m2: Annotated[float, Field(gt=0)]
    max_doses_per_cycle: Annotated[int, Field(ge=1)]
    cycle_length_days: Annotated[int, Field(ge=1)]
    route: str = "intravenous"


BsaFormula = Literal["mosteller", "dubois", "haycock", "gehan-george", "boyd"]


class Dosing(_Strict):
    """The approvable regimens (approve ONE of them) and the dose arithmetic settings."""

    text: str = ""
    bsa_formula: BsaFormula = "mosteller"
    rounding: DoseRounding = DoseRounding()
    regimens: list[Regimen] = Field(min_length=1)


class Continuation(_Strict):
    """The rule for extended approvals."""

    text: str = ""
    same_criteria: bool = True
    same_dosing: bool = True
    approval: Approval


class HistoryEntry(_Strict):
    type: str
    summary: str
    review_date: dt.date | None = None


class Policy(_Strict):
    """A drug policy as data. See `policies/ixempra.yaml` for a complete example."""

    id: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]*$")]
    title: str
    version: Annotated[str, Field(min_length=1)]
    review_date: dt.date
    effective_date: dt.date
    benefit: Literal["medical", "pharmacy"] = "medical"
    automation: str = ""
    drugs: list[Drug] = Field(min_length=1)
    facts: dict[Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")], FactSpec] = Field(min_length=1)
    indications: list[Indication] = Field(min_length=1)
    dosing: Dosing
    continuation: Continuation | None = None
    routing: dict[ReasonCode, str] = {}
    # The clinical-review data beside the policy (safety screens, label indications): a file
    # name in the policy's folder, ending in .data.yaml (see policy.safety_model).
    safety: (
        Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]*(\.[A-Za-z0-9_-]+)*\.data\.yaml$")]
        | None
    ) = None
    exceptions: dict[str, str] = {}
    references: list[str] = []
    history: list[HistoryEntry] = []
