"""The clinical-review data beside a policy: label safety screens, resistance windows, context.

A policy names its data file (`safety: <policy>-safety.data.yaml`); the file holds every
drug-specific number, drug list, code and message, so the engine that runs the screens names no
drug. Screens read the request contract's own parts (observations by LOINC code, medications,
allergies, conditions, the patient, service.with). Checked by `policy.safety_loader`; the JSON
Schema is `priorauth schema safety`; docs/safety.md explains each kind.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from priorauth.clinical.observations import ULN
from priorauth.clinical.units import UnitError, dimension, normalize_unit
from priorauth.policy.model import ICD10_PATTERN, Outcome, Setting

__all__ = [
    "ULN",
    "AgentClass",
    "AllergyScreen",
    "AttestedScreen",
    "Band",
    "BandObservation",
    "ConditionScreen",
    "Guideline",
    "InteractionScreen",
    "LabelIndicationSpec",
    "ObservationBandsScreen",
    "ObservationCondition",
    "ObservationLimitsScreen",
    "ObservationResultScreen",
    "ReceptorCode",
    "Resistance",
    "ResistanceCondition",
    "SafetyData",
    "Screen",
    "Severity",
]

# The unit of a lab read as a multiple of its upper limit of normal (observation.uln_multiple).
# `review`: a pharmacist must look, though the label names no contraindication or dose limit
# (a warning of the label that calls for a person, a partner that cannot be identified).
Severity = Literal["contraindication", "dose-limit", "review", "warning"]
Id = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]*$")]
Key = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]
RxNorm = Annotated[str, Field(pattern=r"^[0-9]{1,10}$")]
Name = Annotated[str, Field(min_length=1)]
Text = Annotated[str, Field(min_length=1)]
Loinc = Annotated[str, Field(pattern=r"^[0-9]{1,7}-[0-9]$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _observation_unit(unit: str) -> str:
    """A UCUM unit an observation's value is converted to, or `{ULN}` for a multiple of the
    upper limit of normal."""
    if unit == ULN:
        return unit
    unit = normalize_unit(unit)
    if "{" in unit:
        raise ValueError(f"{unit!r}: a UCUM unit without annotations, or {ULN}")
    try:
        dimension(unit)
    except UnitError as exc:
        raise ValueError(str(exc)) from None
    return unit


ObservationUnit = Annotated[str, AfterValidator(_observation_unit)]


class _ScreenBase(_Strict):
    id: Id
    title: Text
    severity: Severity
    # Shown to the reviewer; {placeholders} are filled from the request (see docs/safety.md).
    message: Text
    source: Text


class ObservationCondition(_Strict):
    """One observation a screen reads (the latest of its code) and its limit, strictly below or
    above. The value is converted to `unit` (UCUM); with `unit: "{ULN}"` the observation's
    `uln_multiple` is read instead. `label` names it in the message."""

    code: Loinc
    label: Text
    unit: ObservationUnit
    below: float | None = None
    above: float | None = None

    @model_validator(mode="after")
    def _one_limit(self) -> ObservationCondition:
        if (self.below is None) == (self.above is None):
            raise ValueError(f"observation {self.code}: give exactly one of below, above")
        return self


class ObservationLimitsScreen(_ScreenBase):
    """Fires when any condition holds; with `given_with`, only when the requested service is
    given with one of those ingredients (service.with, read through the drug vocabulary)."""

    kind: Literal["observation-limits"]
    given_with: list[Name] = []
    any: list[ObservationCondition] = Field(min_length=1)


class BandObservation(_Strict):
    """An observation the bands read (the latest of its code), in `unit` (UCUM or `{ULN}`)."""

    code: Loinc
    label: Text
    unit: ObservationUnit


class Band(_Strict):
    """One band: each observation at most its limit (`at_most`, by the screen's observation
    keys). A band without limits is the catch-all (the last band). `dose_mg_per_m2` is the
    starting dose the label allows; `dose_max_mg_per_m2` a higher dose allowed in later cycles
    (on a continuation)."""

    id: Id
    text: Text
    at_most: dict[Key, Annotated[float, Field(gt=0)]] = {}
    dose_mg_per_m2: Annotated[float, Field(gt=0)] | None = None
    dose_max_mg_per_m2: Annotated[float, Field(gt=0)] | None = None
    not_recommended: bool = False

    @model_validator(mode="after")
    def _dose_or_not(self) -> Band:
        if self.not_recommended == (self.dose_mg_per_m2 is not None):
            raise ValueError(f"band {self.id}: give dose_mg_per_m2 or not_recommended: true")
        if self.dose_max_mg_per_m2 is not None and (
            self.dose_mg_per_m2 is None or self.dose_max_mg_per_m2 < self.dose_mg_per_m2
        ):
            raise ValueError(f"band {self.id}: dose_max_mg_per_m2 below dose_mg_per_m2")
        return self


class ObservationBandsScreen(_ScreenBase):
    """Dose bands by observations (e.g. liver function): the first band whose limits all hold
    sets the dose; above it the screen has its `severity`. The not-recommended band is worse."""

    kind: Literal["observation-bands"]
    # The bands do not apply when the drug is given with one of these ingredients (another
    # screen covers that combination); with any other partner, or alone, they do.
    not_with: list[Name] = []
    # The band's dose is per dose and, with `per_days`, also the most in any so many days on
    # average over the requested schedule (dose intensity: a weekly schedule is held to it).
    per_days: Annotated[int, Field(ge=1, le=366)] | None = None
    observations: dict[Key, BandObservation] = Field(min_length=1)
    bands: list[Band] = Field(min_length=2)
    not_recommended_severity: Severity = "contraindication"
    not_recommended_message: Text


class AllergyScreen(_ScreenBase):
    """An allergy to one of the substances (by name, or by RxNorm code) or to a product of one
    of the vocabulary's `classes`, of one of the listed severities (`unspecified` for an
    allergy given without one)."""

    kind: Literal["allergy"]
    substances: list[Name] = []
    classes: list[Id] = []
    rxnorm: list[RxNorm] = []
    allergy_severity: list[Literal["mild", "moderate", "severe", "unspecified"]] = Field(
        min_length=1
    )

    @model_validator(mode="after")
    def _something(self) -> AllergyScreen:
        if not self.substances and not self.classes and not self.rxnorm:
            raise ValueError(f"screen {self.id}: give substances, classes or rxnorm")
        return self


class AttestedScreen(_ScreenBase):
    """Fires when a yes/no patient field is true. Not asked of a male patient."""

    kind: Literal["patient-state"]
    attested: Literal["patient.pregnant", "patient.breastfeeding"]


class InteractionScreen(_ScreenBase):
    """A medication taken now or an agent given alongside of one of the vocabulary's drug
    `classes` (e.g. strong CYP3A4 inhibitors). With `dose_above_mg_per_m2` the screen has its
    `severity` above that dose (per dose, and with `per_days` on average over so many days of
    the requested schedule), `otherwise_severity` at or below it; without, always `severity`."""

    kind: Literal["interaction"]
    classes: list[Id] = Field(min_length=1)
    # Ingredients of the classes that do not count (the requested drug itself, taken now on a
    # continuation, is not "another" drug of its class).
    except_ingredients: list[Name] = []
    dose_above_mg_per_m2: Annotated[float, Field(gt=0)] | None = None
    per_days: Annotated[int, Field(ge=1, le=366)] | None = None
    otherwise_severity: Severity | None = None
    otherwise_message: str | None = None

    @model_validator(mode="after")
    def _otherwise(self) -> InteractionScreen:
        given = (self.otherwise_severity is not None, self.otherwise_message is not None)
        if self.dose_above_mg_per_m2 is not None and given != (True, True):
            raise ValueError(
                f"screen {self.id}: a dose limit needs otherwise_severity and otherwise_message"
            )
        return self


class ConditionScreen(_ScreenBase):
    """An ICD-10-CM condition matching one of the patterns (`G62.*` a prefix, `E11.9` exact).
    With `dose_above_mg_per_kg` the screen has its `severity` above that dose and
    `otherwise_severity` at or below it (or with the dose in mg/kg unknown)."""

    kind: Literal["condition"]
    codes: list[Annotated[str, Field(pattern=ICD10_PATTERN)]] = Field(min_length=1)
    dose_above_mg_per_kg: Annotated[float, Field(gt=0)] | None = None
    otherwise_severity: Severity | None = None
    otherwise_message: str | None = None

    @model_validator(mode="after")
    def _otherwise(self) -> ConditionScreen:
        given = (self.otherwise_severity is not None, self.otherwise_message is not None)
        if self.dose_above_mg_per_kg is not None and given != (True, True):
            raise ValueError(
                f"screen {self.id}: a dose limit needs otherwise_severity and otherwise_message"
            )
        return self


class ObservationResultScreen(_ScreenBase):
    """The latest result of one of the LOINC `codes` within `within_days` before the service
    date is one of `results` (compared without regard to case: `positive`, `reactive`). No
    result in the window: not run."""

    kind: Literal["observation-result"]
    codes: list[Loinc] = Field(min_length=1)
    label: Text
    within_days: Annotated[int, Field(ge=1, le=3660)]
    results: list[Name] = Field(min_length=1)


Screen = Annotated[
    ObservationLimitsScreen
    | ObservationBandsScreen
    | AllergyScreen
    | AttestedScreen
    | InteractionScreen
    | ConditionScreen
    | ObservationResultScreen,
    Field(discriminator="kind"),
]


class AgentClass(_Strict):
    """A class of agents (e.g. one chemical class of cytotoxics) and the months after the last
    dose within which a progression still counts as resistance, by setting. A setting without
    a window is read as an unknown setting (every window given must agree); a class without
    windows counts only progression on therapy."""

    agents: list[Name] = Field(min_length=1)
    windows_months: dict[Setting, Annotated[int, Field(ge=0, le=60)]] = {}


class ResistanceCondition(_Strict):
    """A condition a label indication names beyond resistance: true when a medication of
    `agent_class` has the `outcome` (e.g. an agent of the class the patient could not take:
    `contraindicated`), else unknown (a history may be incomplete)."""

    text: Text
    agent_class: Key
    outcome: Outcome


class LabelIndicationSpec(_Strict):
    """A labelled indication: the agents given with the drug (none: alone) and the resistance it
    needs, as a list of alternatives, each a list of class ids (or `conditions` ids)."""

    id: Id
    text: Text
    given_with: list[Name] = []
    any_of: list[list[Id]] = Field(min_length=1)


class Resistance(_Strict):
    """Agent classes, their resistance windows and the label indications built on them."""

    source: str = ""
    classes: dict[Key, AgentClass] = Field(min_length=1)
    conditions: dict[Id, ResistanceCondition] = {}
    indications: list[LabelIndicationSpec] = Field(min_length=1)


class ReceptorCode(_Strict):
    marker: Literal["er", "pr", "her2"]
    status: Literal["positive", "negative"]


class Guideline(_Strict):
    """Guideline context shown to the reviewer; receptor status codes (ICD-10-CM Z17.*)."""

    summary: Text
    source: str = ""
    receptor_codes: dict[Annotated[str, Field(pattern=ICD10_PATTERN)], ReceptorCode] = {}


class SafetyData(_Strict):
    """The clinical-review data of one policy. See the `*.data.yaml` files under `policies/`."""

    id: Id
    version: Text
    description: str = ""
    screens: list[Screen] = []
    resistance: Resistance | None = None
    guideline: Guideline | None = None
