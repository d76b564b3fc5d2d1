"""The policy model: a payer's drug policy as typed data (drugs, facts, criteria, dosing).

A policy names the facts its criteria speak of, each of a general *kind* (an age, a set of
condition codes, an observation, a derived measure, a specialty, a medication history, a
current medication, the requested product, or the answer to a question). The criteria combine
facts with ALL / ANY / NOT / AT LEAST n; the dosing section lists the approvable regimens. The
engine knows no drug: everything drug-specific is here, in YAML. `policies/*.yaml` are complete
examples, and docs/policies.md teaches how to write one.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from priorauth.clinical.schedules import fewest_days

__all__ = [
    "FACT_KINDS",
    "AgeFact",
    "AgentClass",
    "AnswerFact",
    "Approval",
    "Billing",
    "BodySurfaceArea",
    "CodeRef",
    "ConditionFact",
    "Continuation",
    "CriterionSpec",
    "CurrentMedicationFact",
    "Cycle",
    "DoseLimit",
    "DoseRounding",
    "Dosing",
    "Drug",
    "FactSpec",
    "HistoryEntry",
    "Indication",
    "IndicationContinuation",
    "Induction",
    "Interval",
    "MeasureFact",
    "MedicationHistoryFact",
    "ObservationFact",
    "Policy",
    "ProductFact",
    "ReasonCode",
    "Regimen",
    "ServiceDates",
    "SpecialtyFact",
]

# Why a request is pended, most serious first (engine.determination.REASON_ORDER keeps this order).
ReasonCode = Literal[
    "service-date",
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
NUCC_PATTERN = r"^[0-9]{3}[0-9A-Z]{6}X$"
FactName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=64)]
ClassName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]*$")]
Text = Annotated[str, Field(min_length=1)]
CodePattern = Annotated[str, Field(min_length=1, max_length=64)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CodeRef(_Strict):
    """A code in a system (short name, see clinical.systems): `{system: rxnorm, code: "3639"}`."""

    system: str
    code: str


class Billing(_Strict):
    """How a product is billed: its code and how many mg make one billing unit."""

    code: Annotated[str, Field(pattern=HCPCS_PATTERN)]
    description: str = ""
    mg_per_unit: Annotated[float, Field(gt=0)]


class Drug(_Strict):
    """A product the policy governs, by HCPCS code, NDC product (labeler-product) or RxNorm."""

    name: Text
    generic_name: Text
    labeler: str = ""
    hcpcs: list[Annotated[str, Field(pattern=HCPCS_PATTERN)]] = []
    ndc_products: list[Annotated[str, Field(pattern=NDC_PRODUCT_PATTERN)]] = []
    rxnorm: list[Annotated[str, Field(pattern=r"^[0-9]{1,10}$")]] = []
    billing: Billing | None = None
    # A policy with preferred products approves a non-preferred one only when its criteria
    # say so (a `product` fact reads this flag when it lists no codes of its own).
    preferred: bool | None = None

    @model_validator(mode="after")
    def _identified(self) -> Drug:
        if not self.hcpcs and not self.ndc_products and not self.rxnorm:
            raise ValueError("a drug needs at least one HCPCS code, NDC product or RxNorm code")
        return self


class AgentClass(_Strict):
    """A class of agents the medication facts match (e.g. the anthracyclines): names matched
    as words inside a medication's name, case-insensitively, and codes matched exactly."""

    description: str = ""
    agents: list[Text] = []
    codes: list[CodeRef] = []

    @model_validator(mode="after")
    def _some(self) -> AgentClass:
        if not self.agents and not self.codes:
            raise ValueError("an agent class needs agents (names) or codes")
        return self


class _FactBase(_Strict):
    description: str = ""
    # What the requester is asked when the fact is unknown and the decision depends on it. The
    # fact's name is the question id (a DTR item's linkId, a key of the request's `answers`).
    question: Text


Absent = Literal["unknown", "false"]


class AgeFact(_FactBase):
    """Age on the service date from patient.birth_date, in whole years or months."""

    kind: Literal["age"]
    unit: Literal["years", "months"] = "years"


class ConditionFact(_FactBase):
    """True when a condition's code matches one of `codes` (`C50.*` a prefix, `Z85.3` exact)
    and none of `exclude`. `absent` says what no matching code means: `unknown` (the default:
    the record may simply not say) or `false` (the conditions listed are the whole story, as
    for the diagnosis a drug is requested for). With `attestable`, the requester may answer
    the fact's question instead; an answer that contradicts the codes is a conflict."""

    kind: Literal["condition"]
    system: str = "icd-10-cm"
    codes: list[CodePattern] = Field(min_length=1)
    exclude: list[CodePattern] = []
    absent: Absent = "unknown"
    attestable: bool = False
    # Only conditions with these statuses count (none listed: any status).
    statuses: list[Literal["active", "recurrence", "remission", "resolved", "history"]] = []


Comparator = Literal["at_least", "at_most", "below", "above"]


class ObservationFact(_FactBase):
    """The latest value of an observation with one of `codes` (LOINC by default), converted to
    `unit` (UCUM), or as a multiple of the upper limit of normal (`unit: "{ULN}"`). Values older
    than `within_days` before the service date do not count. A coded or yes/no observation
    gives its value as is (`unit` left out)."""

    kind: Literal["observation"]
    system: str = "loinc"
    codes: list[CodePattern] = Field(min_length=1)
    unit: str | None = None
    within_days: Annotated[int, Field(ge=0, le=36500)] | None = None
    attestable: bool = False


class MeasureFact(_FactBase):
    """A measure worked out by a named clinical function from the request's observations:
    `body-surface-area` (m2, by `formula`, capped at `cap_m2` when given), `body-weight` (kg),
    `creatinine-clearance` (mL/min: measured, else Cockcroft-Gault from serum creatinine, age,
    weight and sex)."""

    kind: Literal["measure"]
    function: Literal["body-surface-area", "body-weight", "creatinine-clearance"]
    formula: Literal["mosteller", "dubois", "haycock", "gehan-george", "boyd"] = "mosteller"
    cap_m2: Annotated[float, Field(gt=0)] | None = None
    within_days: Annotated[int, Field(ge=0, le=36500)] | None = None
    attestable: bool = False


class SpecialtyFact(_FactBase):
    """True when the prescriber's specialty (or, with `consultants`, a consultant's) is one of
    `specialties` (NUCC taxonomy codes, each with a readable name)."""

    kind: Literal["specialty"]
    specialties: dict[Annotated[str, Field(pattern=NUCC_PATTERN)], str] = Field(min_length=1)
    # Other names people write for a listed specialty, each mapped to its taxonomy code.
    aliases: dict[str, str] = {}
    consultants: bool = True

    @model_validator(mode="after")
    def _aliases_known(self) -> SpecialtyFact:
        for alias, code in self.aliases.items():
            if code not in self.specialties:
                raise ValueError(f"alias {alias!r} points to {code!r}, not a listed specialty")
        return self


Setting = Literal[
    "adjuvant", "neoadjuvant", "metastatic", "locally-advanced", "maintenance", "other"
]
Outcome = Literal[
    "failed", "intolerant", "contraindicated", "progressed", "responded", "completed", "ongoing"
]


class MedicationHistoryFact(_FactBase):
    """How many distinct regimens (`count: regimens`) or agents (`count: agents`) of the listed
    classes the patient has received, as a number: in the listed `settings` (any when none),
    started or taken within `within_months` before the service date, for at least `min_days`,
    with one of the listed `outcomes` (any when none). Medications whose setting, dates or
    outcome are not given may count or not: the fact is then unknown unless the sure count
    already decides. `absent` says whether the medication list is the whole story: `unknown`
    (the default) reads it as possibly incomplete, so the count has no upper bound (it can
    reach "at least n", never fail it, and a list without a match asks the question);
    `false` reads it as complete, so what it lacks was not given."""

    kind: Literal["medication-history"]
    classes: list[ClassName] = Field(min_length=1)
    count: Literal["regimens", "agents"] = "agents"
    settings: list[Setting] = []
    within_months: Annotated[int, Field(ge=1, le=1200)] | None = None
    min_days: Annotated[int, Field(ge=1, le=36500)] | None = None
    outcomes: list[Outcome] = []
    absent: Absent = "unknown"
    attestable: bool = False


class CurrentMedicationFact(_FactBase):
    """True when the patient takes a medication of the listed classes now (status active, or
    no end date before the service date), or, with `partners`, when one is given alongside
    the requested drug (service.with). When none is found, `absent` says what that means:
    `unknown` (the default: the list may be incomplete, so the question is asked) or `false`
    (the list is the whole story)."""

    kind: Literal["current-medication"]
    classes: list[ClassName] = Field(min_length=1)
    medications: bool = True
    partners: bool = True
    absent: Absent = "unknown"
    attestable: bool = False


class ProductFact(_FactBase):
    """True when the requested product is one of `codes`, or, with no codes, one of the
    policy's drugs marked `preferred: true`."""

    kind: Literal["product"]
    codes: list[CodeRef] = []


class AnswerFact(_FactBase):
    """The answer to the fact's question, from the request's `answers` (keyed by the fact's
    name): yes/no, a number (in `unit`), one of `choices`, a date or text."""

    kind: Literal["answer"]
    type: Literal["boolean", "number", "choice", "date", "text"] = "boolean"
    choices: list[Text] = []
    unit: str | None = None

    @model_validator(mode="after")
    def _choices(self) -> AnswerFact:
        if (self.type == "choice") != bool(self.choices):
            raise ValueError("a choice question lists its choices (and only it does)")
        return self


FactSpec = Annotated[
    AgeFact
    | ConditionFact
    | ObservationFact
    | MeasureFact
    | SpecialtyFact
    | MedicationHistoryFact
    | CurrentMedicationFact
    | ProductFact
    | AnswerFact,
    Field(discriminator="kind"),
]
FACT_KINDS = (
    "age",
    "condition",
    "observation",
    "measure",
    "specialty",
    "medication-history",
    "current-medication",
    "product",
    "answer",
)
# Facts whose value is a number (compared with at_least, at_most, below, above).
NUMERIC_KINDS = ("age", "observation", "measure", "medication-history")


class CriterionSpec(_Strict):
    """One node of the criteria tree: ALL / ANY / NOT of children, AT LEAST n `of` children, or
    a test of one fact.

    A fact test without a comparator requires a true/false fact (`is: false` asks for false);
    `at_least` / `at_most` / `below` / `above` compare a number, `equals` / `in` a choice.
    """

    id: Text
    text: Text
    all: list[CriterionSpec] | None = None
    any: list[CriterionSpec] | None = None
    not_: CriterionSpec | None = Field(default=None, alias="not")
    of: list[CriterionSpec] | None = None
    fact: str | None = None
    at_least: float | None = None
    at_most: float | None = None
    below: float | None = None
    above: float | None = None
    equals: str | float | bool | None = None
    in_: list[str] | None = Field(default=None, alias="in")
    is_: bool | None = Field(default=None, alias="is")

    @model_validator(mode="after")
    def _one_shape(self) -> CriterionSpec:
        shapes = [
            name
            for name, value in (
                ("all", self.all),
                ("any", self.any),
                ("not", self.not_),
                ("of", self.of),
                ("fact", self.fact),
            )
            if value is not None
        ]
        if len(shapes) != 1:
            raise ValueError(
                f"criterion {self.id!r} needs exactly one of all, any, not, of, fact "
                f"(has {', '.join(shapes) or 'none'})"
            )
        if self.of is not None:
            if self.at_least is None or self.at_least < 1 or not float(self.at_least).is_integer():
                raise ValueError(f"criterion {self.id!r}: `of` needs at_least, a whole number")
            if self.at_least > len(self.of):
                raise ValueError(
                    f"criterion {self.id!r}: at least {self.at_least:g} of {len(self.of)} "
                    "can never hold"
                )
            others = (self.at_most, self.below, self.above, self.equals, self.in_, self.is_)
            if any(v is not None for v in others):
                raise ValueError(f"criterion {self.id!r}: `of` takes only at_least")
        elif self.fact is None and self.comparators():
            raise ValueError(f"criterion {self.id!r}: comparators need a fact")
        for children in (self.all, self.any, self.of):
            if children is not None and not children:
                raise ValueError(f"criterion {self.id!r}: an empty list of criteria")
        return self

    def comparators(self) -> dict[str, Any]:
        """The leaf's comparisons that are set, by name (`at_least`, `in`, ...)."""
        pairs = {
            "at_least": self.at_least,
            "at_most": self.at_most,
            "below": self.below,
            "above": self.above,
            "equals": self.equals,
            "in": self.in_,
            "is": self.is_,
        }
        return {k: v for k, v in pairs.items() if v is not None}

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
        if self.of is not None:
            return self.of
        if self.not_ is not None:
            return [self.not_]
        return []

    @property
    def operator(self) -> Literal["all", "any", "not", "at-least", "fact"]:
        if self.all is not None:
            return "all"
        if self.any is not None:
            return "any"
        if self.of is not None:
            return "at-least"
        if self.not_ is not None:
            return "not"
        return "fact"


class Approval(_Strict):
    """An approval period: years, months and days added to the service date, less one day."""

    years: Annotated[int, Field(ge=0, le=10)] = 0
    months: Annotated[int, Field(ge=0, le=120)] = 0
    days: Annotated[int, Field(ge=0, le=3660)] = 0

    @model_validator(mode="after")
    def _positive(self) -> Approval:
        if self.years == 0 and self.months == 0 and self.days == 0:
            raise ValueError("an approval period needs years, months or days")
        return self


class IndicationContinuation(_Strict):
    """The criteria and period of a continued approval for one indication (a patient already
    on the drug); without `criteria`, the initial criteria apply again."""

    text: str = ""
    approval: Approval
    criteria: CriterionSpec | None = None


class Indication(_Strict):
    """A covered indication: when it applies (a true/false fact), its initial criteria and
    approval period, its own continuation rule, and the regimens allowed for it (all when
    none are listed)."""

    id: Text
    title: Text
    label: str = ""
    when: str
    approval: Approval
    criteria: CriterionSpec
    continuation: IndicationContinuation | None = None
    regimens: list[str] = []


class DoseRounding(_Strict):
    """How a dose converted to the policy's unit is compared with a limit."""

    dose_decimals: Annotated[int, Field(ge=0, le=4)] = 1
    tolerance_percent: Annotated[float, Field(ge=0, le=25)] = 0


class BodySurfaceArea(_Strict):
    """How a mg/m2 dose is worked out: the formula, the BSA's decimals and an optional cap."""

    formula: Literal["mosteller", "dubois", "haycock", "gehan-george", "boyd"] = "mosteller"
    decimals: Annotated[int, Field(ge=0, le=4)] = 2
    cap_m2: Annotated[float, Field(gt=0)] | None = None


class DoseLimit(_Strict):
    """The largest dose allowed each time: a number and its unit (mg, mg/m2, mg/kg)."""

    max: Annotated[float, Field(gt=0)]
    unit: Literal["mg", "mg/m2", "mg/kg"]


class Cycle(_Strict):
    """Doses in each cycle of `length_days`: at most `max_doses`, or on given `days` (from 1)."""

    length_days: Annotated[int, Field(ge=1, le=366)]
    max_doses: Annotated[int, Field(ge=1, le=31)] | None = None
    days: list[Annotated[int, Field(ge=1, le=366)]] | None = None

    @model_validator(mode="after")
    def _one(self) -> Cycle:
        if (self.max_doses is None) == (self.days is None):
            raise ValueError("a cycle gives max_doses or days (not both)")
        if self.days is not None and (
            self.days != sorted(set(self.days)) or self.days[-1] > self.length_days
        ):
            raise ValueError("cycle days are distinct, increasing and inside the cycle")
        return self

    @property
    def doses(self) -> int:
        return len(self.days) if self.days is not None else self.max_doses or 0


class Induction(_Strict):
    """Induction doses on given days from the first dose (day 0), or given weeks."""

    days: list[Annotated[int, Field(ge=0, le=366)]] | None = None
    weeks: list[Annotated[int, Field(ge=0, le=52)]] | None = None
    dose: DoseLimit | None = None

    @model_validator(mode="after")
    def _one(self) -> Induction:
        if (self.days is None) == (self.weeks is None):
            raise ValueError("an induction gives days or weeks (not both)")
        return self

    @property
    def on_days(self) -> list[int]:
        return self.days if self.days is not None else [w * 7 for w in self.weeks or []]


class Interval(_Strict):
    """Doses no more often than every `min_days`, `min_weeks` or `min_months` (calendar
    months: a request every 6 months meets `min_months: 6`, and one in days meets it with at
    least the fewest days 6 months can span, 181)."""

    min_days: Annotated[int, Field(ge=1, le=731)] | None = None
    min_weeks: Annotated[int, Field(ge=1, le=104)] | None = None
    min_months: Annotated[int, Field(ge=1, le=24)] | None = None

    @model_validator(mode="after")
    def _one(self) -> Interval:
        given = [v for v in (self.min_days, self.min_weeks, self.min_months) if v is not None]
        if len(given) != 1:
            raise ValueError("an interval gives one of min_days, min_weeks, min_months")
        return self

    @property
    def days(self) -> int:
        """The interval in days (calendar months as the fewest days they span)."""
        if self.min_months is not None:
            return fewest_days(self.min_months)
        return self.min_days if self.min_days is not None else (self.min_weeks or 0) * 7


class Regimen(_Strict):
    """An approvable regimen: the dose limit, and a cycle, or an induction then an interval,
    or an interval alone. `when` names a true/false fact the regimen is for (hepatic
    impairment), `unless` one it is not for (each a fact's name or a criterion, such as
    `{id: renal, text: ..., fact: crcl, below: 50}`); `route` the routes it allows."""

    id: Text
    text: Text
    dose: DoseLimit
    cycle: Cycle | None = None
    induction: Induction | None = None
    interval: Interval | None = None
    route: list[str] = ["intravenous"]
    # A true/false fact's name, or a criterion (a small tree with its own id and text).
    when: str | CriterionSpec | None = None
    unless: str | CriterionSpec | None = None

    @model_validator(mode="after")
    def _schedule(self) -> Regimen:
        if self.cycle is None and self.interval is None:
            raise ValueError(f"regimen {self.id!r} needs a cycle or an interval")
        if self.cycle is not None and (self.interval is not None or self.induction is not None):
            raise ValueError(f"regimen {self.id!r}: a cycle, or an induction and interval")
        return self


class Dosing(_Strict):
    """The approvable regimens (approve ONE of them) and the dose arithmetic settings."""

    text: str = ""
    body_surface_area: BodySurfaceArea = BodySurfaceArea()
    rounding: DoseRounding = DoseRounding()
    # How a part billing unit is billed: `up` (the default: a part unit is one unit),
    # `nearest` (half up), `down`.
    billing_rounding: Literal["up", "nearest", "down"] = "up"
    regimens: list[Regimen] = Field(min_length=1)


class Continuation(_Strict):
    """The policy-wide rule for extended approvals (an indication may have its own)."""

    text: str = ""
    approval: Approval
    criteria: CriterionSpec | None = None


class ServiceDates(_Strict):
    """How far from the day a request is received its service may start and still be decided
    by software: at most `retro_days` before it (a retro request further back goes to a
    person, routed as `service-date`, by default to intake) and at most `ahead_days` after it.
    A policy that leaves this out gets the defaults below (docs/policies.md)."""

    retro_days: Annotated[int, Field(ge=0, le=366)] = 14
    ahead_days: Annotated[int, Field(ge=0, le=731)] = 90


class HistoryEntry(_Strict):
    type: str
    summary: str
    review_date: dt.date | None = None


class Policy(_Strict):
    """A drug policy as data. See `policies/*.yaml` for complete examples."""

    id: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]*$")]
    title: Text
    version: Text
    review_date: dt.date
    effective_date: dt.date
    benefit: Literal["medical", "pharmacy"] = "medical"
    automation: str = ""
    drugs: list[Drug] = Field(min_length=1)
    agent_classes: dict[ClassName, AgentClass] = {}
    facts: dict[FactName, FactSpec] = Field(min_length=1)
    indications: list[Indication] = Field(min_length=1)
    dosing: Dosing
    continuation: Continuation | None = None
    routing: dict[ReasonCode, str] = {}
    # Left out: ServiceDates() (its defaults). Optional, so that a policy without it keeps its
    # content hash.
    service_dates: ServiceDates | None = None
    # The clinical-review data beside the policy (safety screens, label indications): a file
    # name in the policy's folder, ending in .data.yaml (see policy.safety_model).
    safety: (
        Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]*(\.[A-Za-z0-9_-]+)*\.data\.yaml$")]
        | None
    ) = None
    exceptions: dict[str, str] = {}
    references: list[str] = []
    history: list[HistoryEntry] = []
