"""The clinical-review data beside a policy: label safety screens, resistance windows, context.

A policy names its data file (`safety: ixempra-safety.data.yaml`); the file holds every
drug-specific number, drug list and message, so the engine that runs the screens names no drug.
Checked by `policy.safety_loader`; the JSON Schema is `priorauth schema safety`.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from priorauth.policy.model import ICD10_PATTERN

__all__ = [
    "LAB_FIELDS",
    "AgentClass",
    "AllergyScreen",
    "AttestedScreen",
    "BsaCapScreen",
    "DiagnosisScreen",
    "DrugEntry",
    "DrugList",
    "Guideline",
    "HepaticBand",
    "HepaticBandsScreen",
    "InteractionScreen",
    "LabCondition",
    "LabScreen",
    "LabelIndicationSpec",
    "ReceptorCode",
    "Resistance",
    "SafetyData",
    "Screen",
]

# The request's lab fields a screen may read (engine.request.Labs).
LAB_FIELDS = (
    "anc_per_mm3",
    "platelets_per_mm3",
    "ast_uln_ratio",
    "alt_uln_ratio",
    "bilirubin_uln_ratio",
)
Severity = Literal["contraindication", "dose-limit", "warning"]
Setting = Literal["adjuvant", "neoadjuvant", "metastatic"]
Id = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]*$")]
RxNorm = Annotated[str, Field(pattern=r"^[0-9]{1,10}$")]
Name = Annotated[str, Field(min_length=1)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DrugEntry(_Strict):
    """One drug in a list: its generic name, other names, RxNorm codes and how strong it is."""

    name: Name
    aliases: list[Name] = []
    rxnorm: list[RxNorm] = []
    strength: Literal["strong", "moderate", "weak"]
    note: str = ""


class DrugList(_Strict):
    """A named list of drugs (e.g. strong CYP3A4 inhibitors), matched case-insensitively."""

    description: str = ""
    drugs: list[DrugEntry] = Field(min_length=1)


class _ScreenBase(_Strict):
    id: Id
    title: Annotated[str, Field(min_length=1)]
    severity: Severity
    # Shown to the reviewer; {placeholders} are filled from the request (see docs/safety.md).
    message: Annotated[str, Field(min_length=1)]
    source: Annotated[str, Field(min_length=1)]


class LabCondition(_Strict):
    """One lab test of a screen: the value is below or above a limit (strictly)."""

    lab: Literal[LAB_FIELDS]  # type: ignore[valid-type]
    label: Annotated[str, Field(min_length=1)]
    unit: str = ""
    below: float | None = None
    above: float | None = None

    @model_validator(mode="after")
    def _one_limit(self) -> LabCondition:
        if (self.below is None) == (self.above is None):
            raise ValueError(f"lab {self.lab}: give exactly one of below, above")
        return self


class LabScreen(_ScreenBase):
    """Fires when any condition holds; with `given_with`, only when the regimen includes one."""

    kind: Literal["labs"]
    given_with: list[Name] = []
    any: list[LabCondition] = Field(min_length=1)


class HepaticBand(_Strict):
    """A liver-function band: AST and ALT at most so many x ULN, bilirubin at most so many.

    A band without limits is the catch-all (the last band). `dose_mg_per_m2` is the starting
    dose the label allows; `dose_max_mg_per_m2` a higher dose allowed in later cycles.
    """

    id: Id
    text: Annotated[str, Field(min_length=1)]
    aminotransferases_at_most: Annotated[float, Field(gt=0)] | None = None
    bilirubin_at_most: Annotated[float, Field(gt=0)] | None = None
    dose_mg_per_m2: Annotated[float, Field(gt=0)] | None = None
    dose_max_mg_per_m2: Annotated[float, Field(gt=0)] | None = None
    not_recommended: bool = False

    @model_validator(mode="after")
    def _dose_or_not(self) -> HepaticBand:
        if self.not_recommended == (self.dose_mg_per_m2 is not None):
            raise ValueError(f"band {self.id}: give dose_mg_per_m2 or not_recommended: true")
        if self.dose_max_mg_per_m2 is not None and (
            self.dose_mg_per_m2 is None or self.dose_max_mg_per_m2 < self.dose_mg_per_m2
        ):
            raise ValueError(f"band {self.id}: dose_max_mg_per_m2 below dose_mg_per_m2")
        return self


class HepaticBandsScreen(_ScreenBase):
    """The first band whose limits all hold sets the dose; the not-recommended band is worse."""

    kind: Literal["hepatic-bands"]
    applies_to: Literal["monotherapy"] = "monotherapy"
    bands: list[HepaticBand] = Field(min_length=2)
    not_recommended_severity: Severity = "contraindication"
    not_recommended_message: Annotated[str, Field(min_length=1)]


class AllergyScreen(_ScreenBase):
    """An allergy to one of the substances, of one of the listed severities (`unspecified` for
    an allergy given without one)."""

    kind: Literal["allergy"]
    substances: list[Name] = Field(min_length=1)
    rxnorm: list[RxNorm] = []
    allergy_severity: list[Literal["mild", "moderate", "severe", "unspecified"]] = Field(
        min_length=1
    )


class AttestedScreen(_ScreenBase):
    """Fires when a yes/no patient field is attested true."""

    kind: Literal["patient-state"]
    attested: Literal["patient.pregnant", "patient.breastfeeding"]


class InteractionScreen(_ScreenBase):
    """A medication from a drug list, of the listed strengths. Above `dose_above_mg_per_m2` the
    screen has its `severity`; at or below it (or without a dose limit) `otherwise_severity`."""

    kind: Literal["interaction"]
    drug_list: Id
    strengths: list[Literal["strong", "moderate", "weak"]] = Field(min_length=1)
    dose_above_mg_per_m2: Annotated[float, Field(gt=0)] | None = None
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


class BsaCapScreen(_ScreenBase):
    """A body surface area above `bsa_above_m2` with a mg dose above cap x `bsa_above_m2`."""

    kind: Literal["bsa-cap"]
    bsa_above_m2: Annotated[float, Field(gt=0)]
    dose_cap_mg_per_m2: Annotated[float, Field(gt=0)]


class DiagnosisScreen(_ScreenBase):
    """A diagnosis code matching one of the patterns (`G62.*` a prefix, `E11.9` exact)."""

    kind: Literal["diagnosis"]
    codes: list[Annotated[str, Field(pattern=ICD10_PATTERN)]] = Field(min_length=1)


Screen = Annotated[
    LabScreen
    | HepaticBandsScreen
    | AllergyScreen
    | AttestedScreen
    | InteractionScreen
    | BsaCapScreen
    | DiagnosisScreen,
    Field(discriminator="kind"),
]


class AgentClass(_Strict):
    """A class of agents (e.g. the taxanes) and the months after the last dose within which a
    progression still counts as resistance, by setting."""

    agents: list[Name] = Field(min_length=1)
    windows_months: dict[Setting, Annotated[int, Field(ge=0, le=60)]] = {}


class LabelIndicationSpec(_Strict):
    """A labelled indication: the agents given with the drug (none: alone) and the resistance it
    needs, as a list of alternatives, each a list of class ids (or `conditions` ids)."""

    id: Id
    text: Annotated[str, Field(min_length=1)]
    given_with: list[Name] = []
    any_of: list[list[Id]] = Field(min_length=1)


class Resistance(_Strict):
    """Agent classes, their resistance windows and the label indications built on them."""

    source: str = ""
    classes: dict[Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")], AgentClass] = Field(
        min_length=1
    )
    # Conditions a label indication names that no request field states: always unknown.
    conditions: dict[Id, str] = {}
    indications: list[LabelIndicationSpec] = Field(min_length=1)


class ReceptorCode(_Strict):
    marker: Literal["er", "pr", "her2"]
    status: Literal["positive", "negative"]


class Guideline(_Strict):
    """Guideline context shown to the reviewer; receptor status codes (ICD-10-CM Z17.*)."""

    summary: Annotated[str, Field(min_length=1)]
    source: str = ""
    receptor_codes: dict[Annotated[str, Field(pattern=ICD10_PATTERN)], ReceptorCode] = {}


class SafetyData(_Strict):
    """The clinical-review data of one policy. See `policies/ixempra-safety.data.yaml`."""

    id: Id
    version: Annotated[str, Field(min_length=1)]
    description: str = ""
    drug_lists: dict[Id, DrugList] = {}
    screens: list[Screen] = []
    resistance: Resistance | None = None
    guideline: Guideline | None = None
