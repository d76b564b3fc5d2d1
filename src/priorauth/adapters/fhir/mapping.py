"""Map a PAS request bundle to priorauth requests: one request per Claim item.

Each request is a dict that `priorauth.parse_request` accepts, shaped like the clinical record
the bundle carries: the service asked for (the item's product codes, and the dose, schedule and
route of its MedicationRequest), the patient, the conditions, observations, medications,
allergies and practitioners, and the answers of any QuestionnaireResponse.

A FHIR element that is absent, or whose value the contract cannot carry (a dose in mL, a
partial birth date), leaves its field out (unknown, never false) and a warning names it. An
element that cannot be read at all (a code system or unit priorauth does not know, a value the
contract refuses) refuses the bundle: `map_bundle` then returns Rejected, answered with an
OperationOutcome naming the element. Every field that was filled records the FHIR element it
came from in the request's `sources`, e.g. `{"conditions[0]": "Condition/c1.code.coding[0]"}`.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from typing import Any

from fhir.resources.R4B.allergyintolerance import AllergyIntolerance
from fhir.resources.R4B.claim import Claim, ClaimItem
from fhir.resources.R4B.codeableconcept import CodeableConcept
from fhir.resources.R4B.condition import Condition
from fhir.resources.R4B.dosage import Dosage
from fhir.resources.R4B.extension import Extension
from fhir.resources.R4B.medication import Medication
from fhir.resources.R4B.medicationrequest import MedicationRequest
from fhir.resources.R4B.medicationstatement import MedicationStatement
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.patient import Patient
from fhir.resources.R4B.practitioner import Practitioner
from fhir.resources.R4B.practitionerrole import PractitionerRole
from fhir.resources.R4B.quantity import Quantity
from fhir.resources.R4B.questionnaireresponse import (
    QuestionnaireResponse,
    QuestionnaireResponseItem,
    QuestionnaireResponseItemAnswer,
)

from priorauth.adapters.fhir.bundle import Located, PasBundle, Rejected, read_bundle
from priorauth.adapters.fhir.codes import CodeTable, code_table
from priorauth.adapters.fhir.problems import IssueCode, Problem
from priorauth.catalog import PolicySet
from priorauth.clinical.codes import npi_is_valid
from priorauth.clinical.schedules import fewest_days
from priorauth.clinical.systems import system_name
from priorauth.clinical.units import UnitError, convert, dimension, normalize_unit
from priorauth.engine.answers import answerable, check_answers
from priorauth.engine.request import Request, parse_request
from priorauth.errors import InvalidRequest

__all__ = [
    "InvalidBundle",
    "ItemRequest",
    "Submission",
    "bundle_requests",
    "default_policies",
    "map_bundle",
    "map_pas_bundle",
]

_ID_UNSAFE = re.compile(r"[^A-Za-z0-9._:-]+")
_HCPCS_LEVEL_II = re.compile(r"^[A-Za-z][0-9]{4}$")
_QUESTION_ID = re.compile(r"^[a-z][a-z0-9_]*$")
_ANNOTATION = re.compile(r"^\{[^{}]*\}$")
_LAST_PART = re.compile(r"(\.[^.\[]+|\[\d+\])$")
_SKIPPED_VERIFICATION = frozenset({"refuted", "entered-in-error"})
_SKIPPED_OBSERVATION = frozenset({"entered-in-error", "cancelled"})
_SEVERITY_RANK = {"mild": 1, "moderate": 2, "severe": 3}
# Medication codes in the order the contract's single code prefers them.
_MEDICATION_SYSTEMS = ("rxnorm", "ndc", "hcpcs")
_TEXT_MAX = 500
# Days in each month of a common year, and the longest cycle the request contract carries.
_LONGEST_CYCLE = 366
_VALUE_TEXT_MAX = 200


@dataclass(frozen=True, slots=True)
class ItemRequest:
    """One Claim item and the request mapped from it.

    `request` is None only when the item names no code and no drug priorauth knows by name
    (then `note` says why, and the response pends the item).
    """

    sequence: int
    path: str
    request: dict[str, Any] | None
    note: str | None = None
    # `request` as the contract read it (the mapping checks it), so it is not read again.
    parsed: Request | None = None


@dataclass(frozen=True, slots=True)
class Submission:
    """A PAS request bundle read and mapped: the bundle, a request per item, and warnings."""

    bundle: PasBundle
    items: tuple[ItemRequest, ...]
    problems: tuple[Problem, ...]


class InvalidBundle(ValueError):
    """A PAS bundle that cannot be used as a request; `problems` names each element at fault."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems = tuple(problems)
        blocking = [p for p in self.problems if p.blocking] or list(self.problems)
        super().__init__("; ".join(f"{p.path}: {p.message}" for p in blocking))


@cache
def default_policies() -> PolicySet:
    """The shipped policies, loaded once (used to recognize a drug by name)."""
    return PolicySet.from_directory()


def map_bundle(data: object, policies: PolicySet | None = None) -> Submission | Rejected:
    """Read a PAS request bundle (JSON text, bytes or parsed JSON) and map each Claim item.

    Returns a Submission, or Rejected with every problem when the bundle breaks a PAS rule or
    holds an element that cannot be read. `policies` (default: the shipped ones) is used only
    to recognize a drug by its name.
    """
    read = read_bundle(data)
    if isinstance(read, Rejected):
        return read
    return map_pas_bundle(read, policies)


def map_pas_bundle(bundle: PasBundle, policies: PolicySet | None = None) -> Submission | Rejected:
    """Map a bundle that passed the PAS rules: one request per Claim item."""
    return _Mapper(bundle, policies or default_policies()).run()


def bundle_requests(data: object, policies: PolicySet | None = None) -> list[dict[str, Any]]:
    """The request of each Claim item of a PAS bundle, in item order, ready to decide.

    Raises InvalidBundle naming each element at fault when the bundle cannot be used, or an
    item names nothing priorauth can decide.
    """
    mapped = map_bundle(data, policies)
    if isinstance(mapped, Rejected):
        raise InvalidBundle(mapped.problems)
    unread = [
        Problem(item.path, "error", item.note or "the item could not be read", "not-supported")
        for item in mapped.items
        if item.request is None
    ]
    if unread:
        raise InvalidBundle(unread)
    return [item.request for item in mapped.items if item.request is not None]


# --- reading FHIR values ----------------------------------------------------------------------


def _number(value: Decimal | int | float) -> float | int:
    number = float(value)
    return int(number) if number.is_integer() else number


def _date(value: object) -> dt.date | None:
    """A full date from a FHIR date or dateTime; None for a partial one (`2026-11`)."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return None


def _instant(value: object) -> dt.datetime | None:
    """A FHIR dateTime as an aware datetime (a date alone is midnight UTC)."""
    if isinstance(value, dt.datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)
    return None


def _concept_name(concept: CodeableConcept | None) -> str | None:
    if concept is None:
        return None
    if concept.text:
        return concept.text[:_TEXT_MAX]
    return next((c.display[:_TEXT_MAX] for c in concept.coding or () if c.display), None)


@dataclass(frozen=True, slots=True)
class _Code:
    """A coding in a code system the contract knows (by its short name) and where it sits."""

    system: str
    code: str
    display: str | None
    element: str  # relative to its resource: `code.coding[0]`


class _Record:
    """Request fields gathered from the bundle, each with the FHIR element it came from."""

    def __init__(self) -> None:
        self.fields: dict[str, Any] = {}
        self.sources: dict[str, str] = {}

    def set(self, field: str, value: Any, source: str) -> None:
        """Set `field` (`patient.birth_date` sets birth_date inside patient)."""
        head, _, rest = field.partition(".")
        if rest:
            self.fields.setdefault(head, {})[rest] = value
        else:
            self.fields[head] = value
        self.sources[field] = source

    def has(self, field: str) -> bool:
        head, _, rest = field.partition(".")
        return head in self.fields and (not rest or rest in self.fields[head])

    def unset(self, field: str) -> None:
        head, _, rest = field.partition(".")
        if rest:
            self.fields.get(head, {}).pop(rest, None)
        else:
            self.fields.pop(head, None)
        self.sources.pop(field, None)

    def append(self, name: str, entry: dict[str, Any], source: str, **parts: str) -> None:
        """Add an entry to a list field; `parts` name the elements some of its fields came
        from, when not the entry's own (`date="Observation/o1.effectiveDateTime"`)."""
        entries: list[dict[str, Any]] = self.fields.setdefault(name, [])
        place = f"{name}[{len(entries)}]"
        entries.append(entry)
        self.sources[place] = source
        for part, where in parts.items():
            self.sources[f"{place}.{part}"] = where

    def copy(self) -> _Record:
        other = _Record()
        other.fields = {
            k: list(v) if isinstance(v, list) else dict(v) if isinstance(v, dict) else v
            for k, v in self.fields.items()
        }
        other.sources = dict(self.sources)
        return other

    def request(self) -> dict[str, Any]:
        return {**self.fields, "sources": dict(self.sources)}


def _at(found: Located, element: str) -> str:
    """`Observation/o1.valueQuantity`: an element of a resource, named by the resource."""
    return f"{found.key}.{element}" if element else found.key


def _path(found: Located, element: str) -> str:
    """`Bundle.entry[5].resource.valueQuantity`: the same element as a FHIRPath from the Bundle."""
    return f"{found.path}.{element}" if element else found.path


class _Mapper:
    def __init__(self, bundle: PasBundle, policies: PolicySet) -> None:
        self.bundle = bundle
        self.claim: Claim = bundle.claim
        self.claim_entry = bundle.claim_entry
        self.codes: CodeTable = code_table()
        self.policies = policies
        self.problems: list[Problem] = list(bundle.problems)

    # --- problems ---------------------------------------------------------------------------

    def warn(self, path: str, message: str, severity: str = "warning") -> None:
        """A value left unknown (or not read), with the element named (once)."""
        problem = Problem(
            path, "information" if severity == "information" else "warning", message, "value"
        )
        if problem not in self.problems:
            self.problems.append(problem)

    def refuse(self, path: str, message: str, code: IssueCode = "value") -> None:
        """An element that cannot be read: the bundle is refused, naming it."""
        problem = Problem(path, "error", message, code)
        if problem not in self.problems:
            self.problems.append(problem)

    def run(self) -> Submission | Rejected:
        items = list(self.claim.item or ())
        orders = [self._requested_order(item) for item in items]
        ordered = {order.key for order in orders if order is not None}
        record = _Record()
        self._claim_fields(record)
        self._patient(record)
        self._conditions(record)
        self._observations(record)
        self._medications(record, ordered)
        self._allergies(record)
        self._questionnaires(record)
        mapped = tuple(
            self._item(record, item, index, order)
            for index, (item, order) in enumerate(zip(items, orders, strict=True))
        )
        if any(p.blocking for p in self.problems):
            return Rejected(tuple(self.problems))
        return Submission(self.bundle, mapped, tuple(self.problems))

    # --- codes and units ----------------------------------------------------------------------

    def _known_codes(
        self, concept: CodeableConcept | None, found: Located, element: str, *, required: bool
    ) -> list[_Code]:
        """The codings of a concept in code systems the contract knows, each system by its
        short name (a CPT coding of a HCPCS level II code, `G0154`, is read as HCPCS).

        With `required`, a concept whose codings are all in systems priorauth does not know
        refuses the bundle, naming the first such coding: the code is the fact, and a fact in
        an unknown system cannot be read."""
        if concept is None:
            return []
        known: list[_Code] = []
        unknown: list[tuple[str, str]] = []
        for index, coding in enumerate(concept.coding or ()):
            if not coding.code:
                continue
            where = f"{element}.coding[{index}]"
            if not coding.system:
                unknown.append((f"{where}.system", "a coding needs its system"))
                continue
            try:
                system = system_name(coding.system)
            except ValueError as exc:
                unknown.append((f"{where}.system", str(exc)))
                continue
            code = coding.code.strip()
            if system == "cpt" and _HCPCS_LEVEL_II.match(code):
                system = "hcpcs"
            display = coding.display[:_TEXT_MAX] if coding.display else None
            known.append(_Code(system, code, display, where))
        if required and unknown and not known:
            where, message = unknown[0]
            self.refuse(_path(found, where), message, "not-supported")
        return known

    def _unit(self, quantity: Quantity, found: Located, element: str) -> tuple[str | None, bool]:
        """The UCUM unit of a quantity (None when it has none) and whether it could be read.
        A unit that is not UCUM refuses the bundle, naming it."""
        if quantity.system and quantity.system != self.codes.ucum:
            self.refuse(
                _path(found, f"{element}.system"),
                "the unit is not a UCUM code (Quantity.system must be http://unitsofmeasure.org)",
                "not-supported",
            )
            return None, False
        text = quantity.code or quantity.unit
        if not text or _ANNOTATION.match(text):
            return None, True  # UCUM reads an annotation alone (`{T-score}`) as the unit 1
        where = f"{element}.code" if quantity.code else f"{element}.unit"
        unit = normalize_unit(text)
        try:
            dimension(unit)
        except UnitError as exc:
            self.refuse(_path(found, where), str(exc), "not-supported")
            return None, False
        return unit, True

    # --- the Claim itself -------------------------------------------------------------------

    def _request_base(self) -> str:
        for identifier in self.claim.identifier or ():
            if identifier.value:
                return identifier.value
        return self.claim.id or "claim"

    def _claim_fields(self, record: _Record) -> None:
        claim = self.claim_entry
        created = self.claim.created
        instant = _instant(created)
        if instant is not None:
            record.set("received_at", instant.isoformat(), _at(claim, "created"))
        priority = self.claim.priority
        for index, coding in enumerate((priority.coding if priority else None) or ()):
            if coding.code == "stat":
                record.set("urgency", "expedited", _at(claim, f"priority.coding[{index}]"))
                break
        certification = self._certification_type()
        if certification is None:
            return
        code, where = certification
        if code not in self.codes.continuation_certification_types:
            return
        record.set("type", "continuation", _at(claim, where))
        for index, related in enumerate(self.claim.related or ()):
            reference = related.claim
            if reference is not None and reference.identifier and reference.identifier.value:
                record.set(
                    "prior_authorization_id",
                    reference.identifier.value[:64],
                    _at(claim, f"related[{index}].claim.identifier"),
                )
                break

    def _certification_type(self) -> tuple[str, str] | None:
        url = self.codes.extensions["certification_type"]
        places: list[tuple[Iterable[Extension], str]] = [(self.claim.extension or (), "extension")]
        if self.claim.use__ext is not None:
            places.append((self.claim.use__ext.extension or (), "use.extension"))
        for extensions, element in places:
            for index, extension in enumerate(extensions):
                if extension.url != url:
                    continue
                if extension.valueCode:
                    return extension.valueCode, f"{element}[{index}].valueCode"
                concept = extension.valueCodeableConcept
                for number, coding in enumerate(concept.coding or () if concept else ()):
                    if coding.code:
                        where = f"{element}[{index}].valueCodeableConcept.coding[{number}]"
                        return coding.code, where
        return None

    # --- the patient ------------------------------------------------------------------------

    def _patient(self, record: _Record) -> None:
        found = self.bundle.resolve(self.claim.patient.reference)
        if found is None or not isinstance(found.resource, Patient):
            self.warn(
                _path(self.claim_entry, "patient"),
                "the Claim's patient is not a Patient in the bundle; age and sex are unknown",
            )
            return
        patient = found.resource
        birth = _date(patient.birthDate)
        if birth is not None:
            record.set("patient.birth_date", birth.isoformat(), _at(found, "birthDate"))
        elif patient.birthDate:
            self.warn(_path(found, "birthDate"), "a partial birth date; the age is left unknown")
        if patient.gender:
            record.set("patient.sex", patient.gender, _at(found, "gender"))

    # --- conditions -------------------------------------------------------------------------

    def _conditions(self, record: _Record) -> None:
        """The Claim's diagnoses first (coded on the Claim, or its Conditions), then every
        other Condition in the bundle; each coding in a known system is a condition."""
        seen: set[tuple[str, str]] = set()
        read: set[str] = set()
        claim = self.claim_entry
        for index, diagnosis in enumerate(self.claim.diagnosis or ()):
            element = f"diagnosis[{index}]"
            if diagnosis.diagnosisCodeableConcept is not None:
                concept = diagnosis.diagnosisCodeableConcept
                for code in self._known_codes(
                    concept, claim, f"{element}.diagnosisCodeableConcept", required=True
                ):
                    self._condition_entry(record, seen, claim, code, {})
            elif diagnosis.diagnosisReference is not None:
                found = self.bundle.resolve(diagnosis.diagnosisReference.reference)
                if found is not None and isinstance(found.resource, Condition):
                    read.add(found.key)
                    self._condition(record, seen, found)
        for found in self.bundle.of_type("Condition"):
            if found.key not in read:
                self._condition(record, seen, found)

    def _condition(self, record: _Record, seen: set[tuple[str, str]], found: Located) -> None:
        condition = found.resource
        assert isinstance(condition, Condition)
        statuses = {
            c.code for c in (condition.verificationStatus or CodeableConcept()).coding or ()
        }
        if statuses & _SKIPPED_VERIFICATION:
            return
        details: dict[str, Any] = {}
        parts: dict[str, str] = {}
        for index, coding in enumerate(
            (condition.clinicalStatus or CodeableConcept()).coding or ()
        ):
            status = self.codes.condition_statuses.get(coding.code or "")
            if status is not None:
                details["status"] = status
                parts["status"] = _at(found, f"clinicalStatus.coding[{index}]")
                break
        onset = _date(condition.onsetDateTime)
        onset_element = "onsetDateTime"
        if onset is None and condition.onsetPeriod is not None:
            onset, onset_element = _date(condition.onsetPeriod.start), "onsetPeriod.start"
        if onset is not None:
            details["onset_date"] = onset.isoformat()
            parts["onset_date"] = _at(found, onset_element)
        codes = self._known_codes(condition.code, found, "code", required=True)
        if condition.code is None or not (condition.code.coding or ()):
            self.warn(_path(found, "code"), "a Condition without a coded code; not read")
        url = self.codes.extensions["histology"]
        for index, extension in enumerate(condition.extension or ()):
            if extension.url == url:
                codes += self._known_codes(
                    extension.valueCodeableConcept,
                    found,
                    f"extension[{index}].valueCodeableConcept",
                    required=True,
                )
        for code in codes:
            self._condition_entry(record, seen, found, code, details, parts)

    def _condition_entry(
        self,
        record: _Record,
        seen: set[tuple[str, str]],
        found: Located,
        code: _Code,
        details: dict[str, Any],
        parts: dict[str, str] | None = None,
    ) -> None:
        key = (code.system, code.code.upper().replace(".", ""))
        if key in seen:
            return
        seen.add(key)
        entry: dict[str, Any] = {"code": code.code, "system": code.system}
        if code.display:
            entry["display"] = code.display
        entry.update(details)
        record.append("conditions", entry, _at(found, code.element), **(parts or {}))

    # --- observations -----------------------------------------------------------------------

    def _observations(self, record: _Record) -> None:
        """Every Observation with a code in a known system and a value the contract carries
        (a quantity with its UCUM unit, a code, yes/no, short text), with its date."""
        for found in self.bundle.of_type("Observation"):
            observation = found.resource
            assert isinstance(observation, Observation)
            if observation.status in _SKIPPED_OBSERVATION:
                continue
            codes = self._known_codes(observation.code, found, "code", required=True)
            if not codes:
                concept = observation.code or CodeableConcept()
                if not any(c.code for c in concept.coding or ()):
                    self.warn(_path(found, "code"), "an Observation without a code; not read")
                continue
            code = next((c for c in codes if c.system == "loinc"), codes[0])
            entry: dict[str, Any] = {"code": code.code, "system": code.system}
            if code.display:
                entry["display"] = code.display
            parts: dict[str, str] = {"code": _at(found, code.element)}
            if not self._observation_value(observation, found, entry, parts):
                continue
            when, element = self._effective(observation)
            if when is not None:
                entry["date"] = when.isoformat()
                parts["date"] = _at(found, element)
            record.append("observations", entry, _at(found, "value"), **parts)

    def _observation_value(
        self, observation: Observation, found: Located, entry: dict[str, Any], parts: dict[str, str]
    ) -> bool:
        """Fill the entry's value (and unit, and multiple of the upper limit of normal);
        whether the observation has a value the contract carries."""
        if observation.valueQuantity is not None:
            quantity = observation.valueQuantity
            if quantity.value is None:
                self.warn(_path(found, "valueQuantity"), "a quantity without a value; not read")
                return False
            if quantity.comparator:
                self.warn(
                    _path(found, "valueQuantity.comparator"),
                    "a value with a comparator (<, >) is not an exact value; not read",
                )
                return False
            unit, readable = self._unit(quantity, found, "valueQuantity")
            if not readable:
                return False
            entry["value"] = _number(quantity.value)
            if unit is not None:
                entry["unit"] = unit
            self._uln(observation, found, float(quantity.value), unit, entry, parts)
            return True
        if observation.valueCodeableConcept is not None:
            coding = next(
                (c for c in observation.valueCodeableConcept.coding or () if c.code), None
            )
            if coding is None or coding.code is None:
                self.warn(_path(found, "valueCodeableConcept"), "a coded value without a code")
                return False
            entry["value"] = self._coded_value(coding.system, coding.code)[:_VALUE_TEXT_MAX]
            return True
        if observation.valueBoolean is not None:
            entry["value"] = bool(observation.valueBoolean)
            return True
        if observation.valueInteger is not None:
            entry["value"] = int(observation.valueInteger)
            return True
        if observation.valueString is not None:
            if len(observation.valueString) > _VALUE_TEXT_MAX:
                self.warn(
                    _path(found, "valueString"),
                    f"a text value longer than {_VALUE_TEXT_MAX} characters; not read",
                    "information",
                )
                return False
            entry["value"] = observation.valueString
            return True
        other = next(
            (
                name
                for name in (
                    "valueRange",
                    "valueRatio",
                    "valueSampledData",
                    "valueTime",
                    "valueDateTime",
                    "valuePeriod",
                )
                if getattr(observation, name) is not None
            ),
            None,
        )
        if other is not None:
            self.warn(_path(found, other), "a value of this type is not read")
        else:
            self.warn(
                _path(found, "value"), "an Observation without a value; not read", "information"
            )
        return False

    def _uln(
        self,
        observation: Observation,
        found: Located,
        value: float,
        unit: str | None,
        entry: dict[str, Any],
        parts: dict[str, str],
    ) -> None:
        """The value as a multiple of the upper limit of normal, from the first reference range
        whose upper limit is in the value's unit (or one that converts to it)."""
        for index, limits in enumerate(observation.referenceRange or ()):
            high = limits.high
            if high is None or high.value is None or high.value <= 0:
                continue
            element = f"referenceRange[{index}].high"
            high_unit = normalize_unit(high.code or high.unit or "") or None
            if high_unit == unit:
                limit = float(high.value)
            else:
                try:
                    limit = convert(float(high.value), high_unit or "1", unit or "1")
                except UnitError:
                    self.warn(
                        _path(found, element),
                        "the upper limit's unit is not the value's; not used",
                        "information",
                    )
                    continue
            if value >= 0:
                entry["uln_multiple"] = round(value / limit, 6)
                parts["uln_multiple"] = _at(found, element)
            return

    def _coded_value(self, system: str | None, code: str) -> str:
        """A coded value as policies word it: a well-known result (SNOMED CT 260385009) as
        its word (`negative`), any other as its code."""
        return self.codes.coded_words.get(system or "", {}).get(code, code)

    @staticmethod
    def _effective(observation: Observation) -> tuple[dt.date | None, str]:
        if observation.effectiveDateTime is not None:
            return _date(observation.effectiveDateTime), "effectiveDateTime"
        if observation.effectivePeriod is not None and observation.effectivePeriod.start:
            return _date(observation.effectivePeriod.start), "effectivePeriod.start"
        if observation.effectiveInstant is not None:
            return _date(observation.effectiveInstant), "effectiveInstant"
        if observation.issued is not None:
            return _date(observation.issued), "issued"
        return None, ""

    # --- medications and allergies ----------------------------------------------------------

    def _medication_concept(
        self, resource: MedicationStatement | MedicationRequest, found: Located
    ) -> tuple[CodeableConcept | None, Located, str]:
        """The medication's concept, the resource it sits in and its element there."""
        if resource.medicationCodeableConcept is not None:
            return resource.medicationCodeableConcept, found, "medicationCodeableConcept"
        reference = resource.medicationReference
        if reference is not None and reference.reference:
            if reference.reference.startswith("#"):
                for index, contained in enumerate(resource.contained or ()):
                    if (
                        isinstance(contained, Medication)
                        and f"#{contained.id}" == reference.reference
                    ):
                        return contained.code, found, f"contained[{index}].code"
            target = self.bundle.resolve(reference.reference)
            if target is not None and isinstance(target.resource, Medication):
                return target.resource.code, target, "code"
        return None, found, ""

    def _medication_entry(
        self, concept: CodeableConcept | None, owner: Located, element: str
    ) -> dict[str, Any] | None:
        """A medication by its code (RxNorm, NDC, HCPCS, then any other known system) and name.
        Codings in systems priorauth does not know are passed over when a name or another code
        identifies the medication."""
        name = _concept_name(concept)
        codes = self._known_codes(concept, owner, element, required=name is None)
        entry: dict[str, Any] = {}
        if name:
            entry["name"] = name
        ranked = sorted(
            codes,
            key=lambda c: (
                _MEDICATION_SYSTEMS.index(c.system)
                if c.system in _MEDICATION_SYSTEMS
                else len(_MEDICATION_SYSTEMS)
            ),
        )
        if ranked:
            entry["code"], entry["system"] = ranked[0].code, ranked[0].system
        return entry or None

    def _medications(self, record: _Record, ordered: set[str]) -> None:
        """Medications past and present: every MedicationStatement, and every MedicationRequest
        that is not what a Claim item asks for. A medication not taken (not-taken, cancelled,
        entered-in-error) is not read."""
        statuses = self.codes.medication_statuses
        for found in self.bundle.resources:
            resource = found.resource
            if isinstance(resource, MedicationStatement):
                status = statuses.get(resource.status or "")
                start, start_element = _date(resource.effectiveDateTime), "effectiveDateTime"
                end: dt.date | None = None
                if resource.effectivePeriod is not None:
                    start, start_element = (
                        _date(resource.effectivePeriod.start),
                        "effectivePeriod.start",
                    )
                    end = _date(resource.effectivePeriod.end)
            elif isinstance(resource, MedicationRequest) and found.key not in ordered:
                status = statuses.get(resource.status or "")
                if resource.intent in ("proposal", "plan") and status == "active":
                    status = "intended"
                start, start_element = _date(resource.authoredOn), "authoredOn"
                end = None
            else:
                continue
            if status is None:
                continue
            concept, owner, element = self._medication_concept(resource, found)
            entry = self._medication_entry(concept, owner, element)
            if entry is None:
                self.warn(
                    _path(found, "medication"), "a medication without a name or code; not read"
                )
                continue
            entry["status"] = status
            parts = {"status": _at(found, "status")}
            if start is not None:
                entry["start_date"] = start.isoformat()
                parts["start_date"] = _at(found, start_element)
            if end is not None and (start is None or end >= start):
                entry["end_date"] = end.isoformat()
                parts["end_date"] = _at(found, "effectivePeriod.end")
            record.append("medications", entry, _at(owner, element or "medication"), **parts)

    def _allergies(self, record: _Record) -> None:
        for found in self.bundle.of_type("AllergyIntolerance"):
            allergy = found.resource
            assert isinstance(allergy, AllergyIntolerance)
            statuses = {
                c.code for c in (allergy.verificationStatus or CodeableConcept()).coding or ()
            }
            if statuses & _SKIPPED_VERIFICATION:
                continue
            codes = self._known_codes(allergy.code, found, "code", required=False)
            name = _concept_name(allergy.code)
            if not name:
                self.warn(_path(found, "code"), "an allergy without a name or display; not read")
                continue
            entry: dict[str, Any] = {"name": name}
            if codes:
                entry["code"], entry["system"] = codes[0].code, codes[0].system
            severities = [
                r.severity for r in allergy.reaction or () if r.severity in _SEVERITY_RANK
            ]
            if severities:
                entry["severity"] = max(severities, key=lambda s: _SEVERITY_RANK[str(s)])
            record.append("allergies", entry, _at(found, "code"))

    # --- answers ----------------------------------------------------------------------------

    def _questionnaires(self, record: _Record) -> None:
        """Answers from every QuestionnaireResponse in the bundle (a DTR bundle attached to the
        Claim included), keyed by item linkId. Items whose linkId is not a question id (group
        items, another form's `3.1`) are not read. Two responses that answer one question
        differently leave it unknown, with a warning, for a person to settle."""
        conflicting: set[str] = set()
        for found in self.bundle.of_type("QuestionnaireResponse"):
            response = found.resource
            assert isinstance(response, QuestionnaireResponse)
            if response.status == "entered-in-error":
                continue
            by = self._author_npi(response)
            at = _instant(response.authored)
            self._items(record, found, response.item or (), "item", by, at, conflicting)

    def _author_npi(self, response: QuestionnaireResponse) -> str | None:
        author = self.bundle.resolve(response.author.reference if response.author else None)
        if author is not None and isinstance(author.resource, PractitionerRole):
            linked = author.resource.practitioner
            author = self.bundle.resolve(linked.reference if linked else None)
        if author is None or not isinstance(author.resource, Practitioner):
            return None
        npi = self._npi(author)[0]
        return npi if npi is not None and npi_is_valid(npi) else None

    def _items(
        self,
        record: _Record,
        found: Located,
        items: Iterable[QuestionnaireResponseItem],
        element: str,
        by: str | None,
        at: dt.datetime | None,
        conflicting: set[str],
    ) -> None:
        for index, item in enumerate(items):
            here = f"{element}[{index}]"
            answers = list(item.answer or ())
            question = item.linkId or ""
            if answers and _QUESTION_ID.match(question):
                self._answer(record, found, question, here, answers, by, at, conflicting)
            for number, answer in enumerate(answers):
                self._items(
                    record,
                    found,
                    answer.item or (),
                    f"{here}.answer[{number}].item",
                    by,
                    at,
                    conflicting,
                )
            self._items(record, found, item.item or (), f"{here}.item", by, at, conflicting)

    def _answer(
        self,
        record: _Record,
        found: Located,
        question: str,
        element: str,
        answers: list[QuestionnaireResponseItemAnswer],
        by: str | None,
        at: dt.datetime | None,
        conflicting: set[str],
    ) -> None:
        value = self._answer_value(answers[0], found, f"{element}.answer[0]")
        if value is None:
            return
        if len(answers) > 1:
            self.warn(
                _path(found, f"{element}.answer"),
                "several answers to one question; the first is read",
                "information",
            )
        source = _at(found, element)
        patient_field = self.codes.patient_answers.get(question)
        if patient_field is not None:
            if isinstance(value, bool):
                self._settle(
                    record, f"patient.{patient_field}", value, source, found, element, conflicting
                )
            else:
                self.warn(_path(found, f"{element}.answer[0]"), "a yes/no question; not read")
            return
        answer: dict[str, Any] = {"value": value}
        if by is not None:
            answer["by"] = by
        if at is not None:
            answer["at"] = at.isoformat()
        self._settle(record, f"answers.{question}", answer, source, found, element, conflicting)

    def _settle(
        self,
        record: _Record,
        field: str,
        value: Any,
        source: str,
        found: Located,
        element: str,
        conflicting: set[str],
    ) -> None:
        """Set a field one answer fills; a second answer that disagrees leaves it unknown."""
        if field in conflicting:
            return
        if record.has(field):
            head, _, rest = field.partition(".")
            earlier = record.fields[head][rest]
            earlier_value = earlier["value"] if isinstance(earlier, dict) else earlier
            now_value = value["value"] if isinstance(value, dict) else value
            if earlier_value != now_value:
                conflicting.add(field)
                record.unset(field)
                self.warn(
                    _path(found, element),
                    f"answers {rest!r} differently from an earlier response; left unknown "
                    "for a person to settle",
                )
            return
        record.set(field, value, source)

    def _answer_value(
        self, answer: QuestionnaireResponseItemAnswer, found: Located, element: str
    ) -> bool | int | float | str | None:
        """The value of an answer as the contract carries it; None (with a note) otherwise."""
        if answer.valueBoolean is not None:
            return bool(answer.valueBoolean)
        if answer.valueDecimal is not None:
            return _number(answer.valueDecimal)
        if answer.valueInteger is not None:
            return int(answer.valueInteger)
        if answer.valueDate is not None:
            day = _date(answer.valueDate)
            if day is None:
                self.warn(_path(found, f"{element}.valueDate"), "a partial date; not read")
            return day.isoformat() if day is not None else None
        if answer.valueDateTime is not None:
            day = _date(answer.valueDateTime)
            if day is None:
                self.warn(_path(found, f"{element}.valueDateTime"), "a partial date; not read")
            return day.isoformat() if day is not None else None
        code = answer.valueCoding.code if answer.valueCoding is not None else None
        if answer.valueCoding is not None and code:
            yes_no = self.codes.yes_no.get(answer.valueCoding.system or "", {})
            if code in yes_no:
                return yes_no[code]
            return self._coded_value(answer.valueCoding.system, code)[:_TEXT_MAX]
        if answer.valueString is not None:
            return answer.valueString[:_TEXT_MAX]
        self.warn(_path(found, element), "an answer of this type is not read", "information")
        return None

    # --- practitioners ----------------------------------------------------------------------

    def _npi(self, practitioner: Located) -> tuple[str | None, str | None]:
        """The NPI of a Practitioner and its element, as given (its check digit is checked by
        the caller)."""
        resource = practitioner.resource
        assert isinstance(resource, Practitioner)
        for index, identifier in enumerate(resource.identifier or ()):
            if identifier.system == self.codes.npi and identifier.value:
                return identifier.value, _at(practitioner, f"identifier[{index}]")
        return None, None

    def _person(self, found: Located) -> tuple[Located | None, Located | None]:
        """The role and the practitioner a reference stands for."""
        resource = found.resource
        if isinstance(resource, PractitionerRole):
            linked = resource.practitioner
            person = self.bundle.resolve(linked.reference if linked else None)
            if person is not None and not isinstance(person.resource, Practitioner):
                person = None
            return found, person
        if isinstance(resource, Practitioner):
            return None, found
        return None, None

    def _roles_of(self, person: Located) -> Iterator[Located]:
        for role in self.bundle.of_type("PractitionerRole"):
            assert isinstance(role.resource, PractitionerRole)
            linked = role.resource.practitioner
            target = self.bundle.resolve(linked.reference) if linked is not None else None
            if target is not None and target.key == person.key:
                yield role

    def _specialty(self, role: Located | None, person: Located | None) -> tuple[str, str] | None:
        """A NUCC taxonomy code (from the role, the practitioner's other roles, then its
        qualifications), else the role's specialty in words."""
        roles = [role] if role is not None else []
        if person is not None:
            roles += [r for r in self._roles_of(person) if role is None or r.key != role.key]
        named: tuple[str, str] | None = None
        for found in roles:
            assert isinstance(found.resource, PractitionerRole)
            for index, specialty in enumerate(found.resource.specialty or ()):
                for number, coding in enumerate(specialty.coding or ()):
                    if coding.system == self.codes.nucc and coding.code:
                        return coding.code, _at(found, f"specialty[{index}].coding[{number}]")
                name = _concept_name(specialty)
                if name and named is None:
                    named = name[:100], _at(found, f"specialty[{index}]")
        if person is not None:
            assert isinstance(person.resource, Practitioner)
            for index, qualification in enumerate(person.resource.qualification or ()):
                concept = qualification.code or CodeableConcept()
                for number, coding in enumerate(concept.coding or ()):
                    if coding.system == self.codes.nucc and coding.code:
                        where = f"qualification[{index}].code.coding[{number}]"
                        return coding.code, _at(person, where)
        return named

    def _practitioner(self, record: _Record, found: Located, role_name: str) -> str | None:
        """Add the practitioner a reference stands for; the person's key (None: not one)."""
        role, person = self._person(found)
        if role is None and person is None:
            return None
        entry: dict[str, Any] = {"role": role_name}
        parts: dict[str, str] = {}
        if person is not None:
            npi, where = self._npi(person)
            if npi is not None and where is not None:
                if npi_is_valid(npi):
                    entry["npi"], parts["npi"] = npi, where
                else:
                    self.warn(
                        self._bundle_path(f"{where}.value"),
                        "not a valid NPI (check digit); left out",
                    )
        specialty = self._specialty(role, person)
        if specialty is not None:
            entry["specialty"], parts["specialty"] = specialty
        if len(entry) > 1:
            record.append("practitioners", entry, found.key, **parts)
        return (person or found).key

    def _practitioners(self, record: _Record, prescriber: Located | None) -> None:
        """The prescriber, then each other practitioner the bundle carries, as a consultant."""
        seen: set[str] = set()
        if prescriber is not None:
            key = self._practitioner(record, prescriber, "prescriber")
            if key is not None:
                seen.add(key)
        for found in self.bundle.resources:
            if isinstance(found.resource, PractitionerRole):
                _, person = self._person(found)
                key = (person or found).key
            elif isinstance(found.resource, Practitioner):
                key = found.key
                if any(True for _ in self._roles_of(found)):
                    continue  # read through its role
            else:
                continue
            if key not in seen:
                seen.add(key)
                self._practitioner(record, found, "consultant")

    # --- the items --------------------------------------------------------------------------

    def _item(
        self, shared: _Record, item: ClaimItem, index: int, order: Located | None
    ) -> ItemRequest:
        record = shared.copy()
        claim = self.claim_entry
        element = f"item[{index}]"
        path = _path(claim, element)
        base = _ID_UNSAFE.sub("-", self._request_base())[:56].strip("-") or "claim"
        record.set("request_id", f"{base}-{item.sequence}", _at(claim, f"{element}.sequence"))
        if not self._service(record, item, element, order):
            return ItemRequest(
                item.sequence or 0,
                path,
                None,
                "the item names no code, and no drug that priorauth reads",
            )
        prescriber = self.bundle.resolve(
            self.claim.provider.reference if self.claim.provider else None
        )
        if order is not None:
            request = order.resource
            assert isinstance(request, MedicationRequest)
            if request.requester is not None:
                prescriber = self.bundle.resolve(request.requester.reference) or prescriber
        self._practitioners(record, prescriber)
        checked, parsed = self._validated(record, path)
        return ItemRequest(item.sequence or 0, path, checked, parsed=parsed)

    def _requested_order(self, item: ClaimItem) -> Located | None:
        """The MedicationRequest behind an item: its requestedService extension, else the
        Claim's prescription for a one-item Claim, else the only MedicationRequest there is."""
        url = self.codes.extensions["requested_service"]
        for extension in item.extension or ():
            if extension.url == url and extension.valueReference is not None:
                found = self.bundle.resolve(extension.valueReference.reference)
                if found is not None and isinstance(found.resource, MedicationRequest):
                    return found
        if len(self.claim.item or ()) == 1:
            if self.claim.prescription is not None:
                found = self.bundle.resolve(self.claim.prescription.reference)
                if found is not None and isinstance(found.resource, MedicationRequest):
                    return found
            orders = list(self.bundle.of_type("MedicationRequest"))
            if len(orders) == 1:
                return orders[0]
        return None

    def _service(
        self, record: _Record, item: ClaimItem, element: str, order: Located | None
    ) -> bool:
        """The service's codes, name, dose, schedule, route and start; False when the item
        names nothing priorauth can decide."""
        claim = self.claim_entry
        codes = [
            (claim, code)
            for code in self._known_codes(
                item.productOrService, claim, f"{element}.productOrService", required=True
            )
        ]
        name = _concept_name(item.productOrService)
        name_source = _at(claim, f"{element}.productOrService")
        request: MedicationRequest | None = None
        if order is not None:
            assert isinstance(order.resource, MedicationRequest)
            request = order.resource
            concept, owner, where = self._medication_concept(request, order)
            codes += [(owner, c) for c in self._known_codes(concept, owner, where, required=False)]
            if name is None and _concept_name(concept) is not None:
                name, name_source = _concept_name(concept), _at(owner, where)
        seen: set[tuple[str, str]] = set()
        for owner, code in codes:
            if (code.system, code.code.upper()) in seen:
                continue
            seen.add((code.system, code.code.upper()))
            position = len(record.fields.setdefault("service", {}).setdefault("codes", []))
            record.fields["service"]["codes"].append({"system": code.system, "code": code.code})
            record.sources[f"service.codes[{position}]"] = _at(owner, code.element)
        if not seen and not (name and self._drug_by_name(record, name, element)):
            return False
        if name:
            record.set("service.name", name, name_source)
        if item.servicedDate is not None:
            record.set(
                "service.start_date",
                item.servicedDate.isoformat(),
                _at(claim, f"{element}.servicedDate"),
            )
        elif item.servicedPeriod is not None and _date(item.servicedPeriod.start) is not None:
            start = _date(item.servicedPeriod.start)
            assert start is not None
            record.set(
                "service.start_date",
                start.isoformat(),
                _at(claim, f"{element}.servicedPeriod.start"),
            )
        if order is not None and request is not None:
            self._dosage(record, request, order)
        return True

    def _drug_by_name(self, record: _Record, name: str, element: str) -> bool:
        """A drug a loaded policy governs, named in words (its brand or generic name): its
        codes are the policy's own, so no drug is named here."""
        words = set(re.findall(r"[a-z0-9]+", name.lower()))
        for compiled in self.policies.policies:
            for drug in compiled.policy.drugs:
                if not words & {drug.generic_name.lower(), drug.name.split()[0].lower()}:
                    continue
                codes = [{"system": "hcpcs", "code": c} for c in drug.hcpcs]
                codes += [{"system": "rxnorm", "code": c} for c in drug.rxnorm]
                if not codes:
                    continue
                source = _at(self.claim_entry, f"{element}.productOrService.text")
                record.fields.setdefault("service", {})["codes"] = codes[:1]
                record.sources["service.codes[0]"] = source
                return True
        return False

    def _dosage(self, record: _Record, request: MedicationRequest, order: Located) -> None:
        """Dose, schedule, route and first dose from the order's dosage instructions."""
        dosages = sorted(
            enumerate(request.dosageInstruction or ()),
            key=lambda pair: (pair[1].sequence or 0, pair[0]),
        )
        if not dosages:
            self.warn(
                _path(order, "dosageInstruction"),
                "no dosage instruction; the dose and schedule are unknown",
            )
            return
        self._dose(record, dosages, order)
        self._schedule(record, dosages, order)
        first_index, first = dosages[0]
        if first.route is not None:
            element = f"dosageInstruction[{first_index}].route"
            for number, coding in enumerate(first.route.coding or ()):
                if coding.code in self.codes.routes:
                    route = self.codes.routes[coding.code]
                    record.set("service.route", route, _at(order, f"{element}.coding[{number}]"))
                    break
            else:
                name = _concept_name(first.route)
                if name:
                    record.set("service.route", name.lower()[:64], _at(order, element))
        if not record.has("service.start_date") and request.dispenseRequest is not None:
            validity = request.dispenseRequest.validityPeriod
            start = _date(validity.start) if validity is not None else None
            if start is not None:
                record.set(
                    "service.start_date",
                    start.isoformat(),
                    _at(order, "dispenseRequest.validityPeriod.start"),
                )

    def _dose(self, record: _Record, dosages: list[tuple[int, Dosage]], order: Located) -> None:
        """The dose of each administration: every instruction that gives one must agree."""
        doses: list[tuple[float | int, str, str]] = []
        for index, dosage in dosages:
            quantity = dosage.doseAndRate[0].doseQuantity if dosage.doseAndRate else None
            if quantity is None or quantity.value is None:
                continue
            element = f"dosageInstruction[{index}].doseAndRate[0].doseQuantity"
            unit, readable = self._unit(quantity, order, element)
            if not readable:
                return
            if unit is None:
                self.warn(_path(order, element), "a dose without its unit; the dose is unknown")
                return
            mass, _, per = unit.partition("/")
            if per not in ("", "m2", "kg") or dimension(mass) != "[mass]":
                self.warn(
                    _path(order, element),
                    "the dose is not a mass, a mass per m2 or a mass per kg; the dose is unknown",
                )
                return
            doses.append((_number(quantity.value), unit, element))
        if not doses:
            return
        if len({(value, unit) for value, unit, _ in doses}) > 1:
            self.warn(
                _path(order, "dosageInstruction"),
                "the dosage instructions give different doses; the dose is left unknown for a "
                "person to read",
            )
            return
        value, unit, element = doses[0]
        record.set("service.dose", {"value": value, "unit": unit}, _at(order, element))

    def _schedule(self, record: _Record, dosages: list[tuple[int, Dosage]], order: Located) -> None:
        """The schedule from timing: `frequency` doses each `period` is a cycle; given dates
        (`timing.event`) are an induction, and a repeat after them the maintenance interval;
        dates inside one period, as many as its frequency, are the days of a cycle."""
        events: list[dt.date] = []
        event_element = ""
        # (days, frequency, index, element, calendar months when the period is in months)
        repeat_at: tuple[int, int, int, str, int | None] | None = None
        for index, dosage in dosages:
            timing = dosage.timing
            if timing is None:
                continue
            element = f"dosageInstruction[{index}].timing"
            for number, event in enumerate(timing.event or ()):
                day = _date(event)
                if day is None:
                    self.warn(
                        _path(order, f"{element}.event[{number}]"), "a partial date; not read"
                    )
                    return
                events.append(day)
                event_element = event_element or f"{element}.event"
            repeat = timing.repeat
            if repeat is None or repeat.period is None or repeat_at is not None:
                if repeat is not None and repeat.boundsPeriod is not None:
                    self._bounds_start(
                        record, order, repeat.boundsPeriod.start, f"{element}.repeat"
                    )
                continue
            length = self._period_days(float(repeat.period), repeat.periodUnit or "")
            if length is None:
                self.warn(
                    _path(order, f"{element}.repeat"),
                    "the period is not a whole number of days, weeks, months or years; the "
                    "schedule is unknown",
                )
                return
            unit = repeat.periodUnit or ""
            months = (
                int(repeat.period) * (12 if unit == "a" else 1)
                if unit in ("mo", "a") and float(repeat.period).is_integer()
                else None
            )
            repeat_at = (length, repeat.frequency or 1, index, f"{element}.repeat", months)
            if repeat.boundsPeriod is not None:
                self._bounds_start(record, order, repeat.boundsPeriod.start, f"{element}.repeat")
        events = sorted(set(events))
        schedule: dict[str, Any] = {}
        if events:
            offsets = [(day - events[0]).days for day in events]
            if not record.has("service.start_date"):
                record.set(
                    "service.start_date", events[0].isoformat(), _at(order, f"{event_element}[0]")
                )
            if (
                repeat_at is not None
                and repeat_at[1] == len(events) > 1
                and offsets[-1] < repeat_at[0]
            ):
                schedule = {
                    "cycle_length_days": repeat_at[0],
                    "cycle_days": [offset + 1 for offset in offsets],
                }
            else:
                schedule["induction_days"] = offsets
                if repeat_at is not None and repeat_at[1] == 1 and repeat_at[4] is not None:
                    schedule["interval_months"] = repeat_at[4]
                elif repeat_at is not None:
                    length, frequency = repeat_at[0], repeat_at[1]
                    if length % frequency:
                        self.warn(
                            _path(order, repeat_at[3]),
                            "the maintenance doses are not a whole number of days apart; "
                            "the interval is unknown",
                        )
                    else:
                        schedule["interval_days"] = length // frequency
        elif repeat_at is not None and repeat_at[1] == 1 and repeat_at[4] is not None:
            schedule = {"interval_months": repeat_at[4]}  # every 6 months: calendar months
        elif repeat_at is not None and repeat_at[1] == 1 and repeat_at[0] > _LONGEST_CYCLE:
            schedule = {"interval_days": repeat_at[0]}  # once every two years, say
        elif repeat_at is not None:
            schedule = {"cycle_length_days": repeat_at[0], "doses_per_cycle": repeat_at[1]}
        if schedule:
            where = repeat_at[3] if repeat_at is not None and not events else event_element
            record.set("service.schedule", schedule, _at(order, where))

    def _period_days(self, period: float, unit: str) -> int | None:
        """A timing period in whole days: days and weeks as they are; months and years as the
        fewest days so many calendar months span (6 months: 181 days, February to July), so a
        schedule is never read as sparser than it is. None for hours, or a part of a day."""
        if unit in ("mo", "a"):
            if not period.is_integer() or period < 1:
                return None
            return fewest_days(int(period) * (12 if unit == "a" else 1))
        days = self.codes.period_units.get(unit)
        length = period * days if days is not None else None
        if length is None or not length.is_integer() or length < 1:
            return None
        return int(length)

    def _bounds_start(self, record: _Record, order: Located, start: object, element: str) -> None:
        day = _date(start)
        if day is not None and not record.has("service.start_date"):
            record.set(
                "service.start_date", day.isoformat(), _at(order, f"{element}.boundsPeriod.start")
            )

    # --- the contract -----------------------------------------------------------------------

    def _source_of(self, sources: dict[str, str], field: str) -> str | None:
        """Where a request field came from: its own source, else its nearest parent's."""
        while field:
            if field in sources:
                return sources[field]
            shorter = _LAST_PART.sub("", field)
            if shorter == field:
                return None
            field = shorter
        return None

    def _bundle_path(self, source: str) -> str:
        """`Observation/o1.value` as a FHIRPath from the Bundle."""
        key, dot, rest = source.partition(".")
        found = self.bundle.by_reference.get(key)
        return f"{found.path}{dot}{rest}" if found is not None else source

    def _validated(
        self, record: _Record, item_path: str
    ) -> tuple[dict[str, Any] | None, Request | None]:
        """The request, checked against the contract and the policy that governs it, and as
        the contract read it. A value the contract refuses refuses the bundle, naming the FHIR
        element it came from; so does an answer of the wrong kind (text for a yes/no question).
        An answer to a question the item's policy does not ask (another drug's, say, in a form
        shared by the Claim's items) is not read, with a note."""
        request = record.request()
        try:
            parsed = parse_request(request)
            compiled = self.policies.find(parsed.service)
            if compiled is None or not parsed.answers:
                return request, parsed
            kinds = answerable(compiled.policy)
            for question in sorted(set(parsed.answers) - set(kinds)):
                source = request["sources"].get(f"answers.{question}")
                self.warn(
                    self._bundle_path(source) if source else item_path,
                    f"policy {compiled.policy.id} asks no question {question!r}; not read",
                    "information",
                )
                record.unset(f"answers.{question}")
            if set(parsed.answers) - set(kinds):
                request = record.request()
                parsed = parse_request(request)
            check_answers(compiled.policy, parsed, kinds)
            return request, parsed
        except InvalidRequest as exc:
            for problem in exc.problems:
                source = self._source_of(request["sources"], problem.field)
                self.refuse(
                    self._bundle_path(source) if source else item_path,
                    f"{problem.field}: {problem.message}" if problem.field else problem.message,
                )
            return None, None
