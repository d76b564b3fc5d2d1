"""Map a PAS request bundle to priorauth requests: one request per Claim item.

Each request is a dict that `priorauth.parse_request` accepts. A FHIR element that is absent
or cannot be read leaves its field out (unknown), never false, and a warning names it. Every
field that was filled records the FHIR element it came from in the request's `sources`, e.g.
`{"diagnoses[0]": "Condition/c1.code.coding[0]"}`.
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
from fhir.resources.R4B.extension import Extension
from fhir.resources.R4B.medication import Medication
from fhir.resources.R4B.medicationrequest import MedicationRequest
from fhir.resources.R4B.medicationstatement import MedicationStatement
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.patient import Patient
from fhir.resources.R4B.practitioner import Practitioner
from fhir.resources.R4B.practitionerrole import PractitionerRole
from fhir.resources.R4B.questionnaireresponse import (
    QuestionnaireResponse,
    QuestionnaireResponseItem,
)

from priorauth.adapters.fhir.bundle import Located, PasBundle, Rejected, read_bundle
from priorauth.adapters.fhir.codes import CodeTable, code_table
from priorauth.adapters.fhir.problems import Problem
from priorauth.catalog import PolicySet
from priorauth.clinical.codes import normalize_icd10, normalize_ndc, npi_is_valid
from priorauth.engine.request import Request, parse_request
from priorauth.errors import InvalidRequest

__all__ = ["ItemRequest", "Submission", "default_policies", "map_bundle", "map_pas_bundle"]

_HCPCS = re.compile(r"^[A-Za-z][0-9]{4}$")
_ID_UNSAFE = re.compile(r"[^A-Za-z0-9._:-]+")
_RXNORM = re.compile(r"^[0-9]{1,10}$")
_YES = frozenset({"y", "yes", "true", "la33-6"})
_NO = frozenset({"n", "no", "false", "la32-8"})
_SKIPPED_CONDITION = frozenset({"refuted", "entered-in-error"})
_SKIPPED_OBSERVATION = frozenset({"entered-in-error", "cancelled"})
_SKIPPED_STATEMENT = frozenset({"entered-in-error", "not-taken", "stopped", "completed"})
_SEVERITY_RANK = {"mild": 1, "moderate": 2, "severe": 3}


@dataclass(frozen=True, slots=True)
class ItemRequest:
    """One Claim item and the request mapped from it.

    `request` is None only when the item names no drug code the contract can carry (then
    `note` says why, and the response pends the item).
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


@cache
def default_policies() -> PolicySet:
    """The shipped policies, loaded once (used to recognize a drug by name)."""
    return PolicySet.from_directory()


class _Facts:
    """Request fields gathered from the bundle, each with the FHIR element it came from."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}
        self.sources: dict[str, str] = {}
        self.lists: dict[str, list[tuple[Any, str]]] = {
            "diagnoses": [],
            "medications": [],
            "allergies": [],
        }

    def set(self, field: str, value: Any, source: str) -> None:
        self.values[field] = value
        self.sources[field] = source

    def add(self, field: str, value: Any, source: str) -> None:
        self.lists[field].append((value, source))

    def copy(self) -> _Facts:
        other = _Facts()
        other.values = dict(self.values)
        other.sources = dict(self.sources)
        other.lists = {k: list(v) for k, v in self.lists.items()}
        return other

    def drop(self, field: str) -> str | None:
        """Forget a field (or a list entry like `diagnoses[1]`); the source it had, if any."""
        match = re.fullmatch(r"(\w+)\[(\d+)\](?:\..*)?", field)
        if match and match.group(1) in self.lists:
            entries = self.lists[match.group(1)]
            index = int(match.group(2))
            if index < len(entries):
                return entries.pop(index)[1]
            return None
        if field in self.values:
            self.values.pop(field)
            return self.sources.pop(field, None)
        under = [k for k in self.values if k.startswith(field + ".")]
        source = None
        for key in under:
            self.values.pop(key)
            source = self.sources.pop(key, None) or source
        return source

    def request(self) -> dict[str, Any]:
        request: dict[str, Any] = {}
        for field, value in self.values.items():
            head, _, rest = field.partition(".")
            if rest:
                request.setdefault(head, {})[rest] = value
            else:
                request[head] = value
        sources = {k: v for k, v in self.sources.items() if k in self.values}
        for name, entries in self.lists.items():
            if entries:
                request[name] = [value for value, _ in entries]
                for index, (_, source) in enumerate(entries):
                    sources[f"{name}[{index}]"] = source
        request["sources"] = sources
        return request


def map_bundle(data: object, policies: PolicySet | None = None) -> Submission | Rejected:
    """Read a PAS request bundle (JSON text, bytes or parsed JSON) and map each Claim item.

    Returns a Submission, or Rejected with every problem when the bundle breaks a PAS rule.
    `policies` (default: the shipped ones) is used only to recognize a drug by its name.
    """
    read = read_bundle(data)
    if isinstance(read, Rejected):
        return read
    return map_pas_bundle(read, policies)


def map_pas_bundle(bundle: PasBundle, policies: PolicySet | None = None) -> Submission:
    """Map a bundle that passed the PAS rules: one request per Claim item."""
    mapper = _Mapper(bundle, policies or default_policies())
    return mapper.run()


def _codings(concept: CodeableConcept | None, path: str) -> Iterator[tuple[str | None, str, str]]:
    """(system, code, path) for each coding with a code."""
    if concept is None:
        return
    for index, coding in enumerate(concept.coding or ()):
        if coding.code:
            yield coding.system, coding.code, f"{path}.coding[{index}]"


def _concept_name(concept: CodeableConcept | None) -> str | None:
    if concept is None:
        return None
    if concept.text:
        return concept.text
    return next((c.display for c in concept.coding or () if c.display), None)


def _number(value: Decimal | int | float) -> float | int:
    number = float(value)
    return int(number) if number.is_integer() else number


def _date(value: object) -> dt.date | None:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return None


class _Mapper:
    def __init__(self, bundle: PasBundle, policies: PolicySet) -> None:
        self.bundle = bundle
        self.claim: Claim = bundle.claim
        self.claim_key = bundle.claim_entry.key
        self.claim_path = bundle.claim_entry.path
        self.codes: CodeTable = code_table()
        self.policies = policies
        self.problems: list[Problem] = list(bundle.problems)

    def warn(self, path: str, message: str, severity: str = "warning") -> None:
        self.problems.append(
            Problem(
                path, "information" if severity == "information" else "warning", message, "value"
            )
        )

    def run(self) -> Submission:
        shared = _Facts()
        self._claim_fields(shared)
        self._patient(shared)
        self._diagnoses(shared)
        self._observations(shared)
        self._medications(shared)
        self._allergies(shared)
        self._attestations(shared)
        self._staging(shared)
        provider = self.bundle.resolve(
            self.claim.provider.reference if self.claim.provider else None
        )
        items = tuple(
            self._item(shared, item, index, provider)
            for index, item in enumerate(self.claim.item or ())
        )
        return Submission(self.bundle, items, tuple(self.problems))

    # --- the Claim itself -------------------------------------------------------------------

    def _request_base(self) -> str:
        for identifier in self.claim.identifier or ():
            if identifier.value:
                return identifier.value
        return self.claim.id or "claim"

    def _claim_fields(self, facts: _Facts) -> None:
        created = self.claim.created
        where = f"{self.claim_key}.created"
        if isinstance(created, dt.datetime):
            if created.tzinfo is None:
                created = created.replace(tzinfo=dt.UTC)
            facts.set("received_at", created.isoformat(), where)
        elif isinstance(created, dt.date):
            facts.set("received_at", f"{created.isoformat()}T00:00:00+00:00", where)
        priority = self.claim.priority
        for _, code, path in _codings(priority, f"{self.claim_key}.priority"):
            if code == "stat":
                facts.set("urgency", "expedited", path)
                break
        certification = self._certification_type()
        if certification is not None:
            code, path = certification
            if code in self.codes.continuation_certification_types:
                facts.set("type", "continuation", path)
                for index, related in enumerate(self.claim.related or ()):
                    claim_ref = related.claim
                    if (
                        claim_ref is not None
                        and claim_ref.identifier
                        and claim_ref.identifier.value
                    ):
                        facts.set(
                            "prior_authorization_id",
                            claim_ref.identifier.value[:64],
                            f"{self.claim_key}.related[{index}].claim.identifier",
                        )
                        break

    def _certification_type(self) -> tuple[str, str] | None:
        url = self.codes.extensions["certification_type"]
        places: list[tuple[Iterable[Extension], str]] = [
            (self.claim.extension or (), f"{self.claim_key}.extension"),
        ]
        if self.claim.use__ext is not None:
            places.append((self.claim.use__ext.extension or (), f"{self.claim_key}.use.extension"))
        for extensions, path in places:
            for index, extension in enumerate(extensions):
                if extension.url != url:
                    continue
                if extension.valueCode:
                    return extension.valueCode, f"{path}[{index}].valueCode"
                for _, code, where in _codings(
                    extension.valueCodeableConcept, f"{path}[{index}].valueCodeableConcept"
                ):
                    return code, where
        return None

    # --- the patient ------------------------------------------------------------------------

    def _patient(self, facts: _Facts) -> None:
        found = self.bundle.resolve(self.claim.patient.reference)
        if found is None or not isinstance(found.resource, Patient):
            self.warn(
                f"{self.claim_path}.patient",
                "the Claim's patient is not a Patient in the bundle; age and sex are unknown",
            )
            return
        patient = found.resource
        birth = patient.birthDate
        if isinstance(birth, dt.date):
            facts.set("patient.birth_date", birth.isoformat(), f"{found.key}.birthDate")
        elif birth:
            self.warn(f"{found.path}.birthDate", "a partial birth date; the age is left unknown")
        if patient.gender in ("female", "male", "other", "unknown"):
            facts.set("patient.sex", patient.gender, f"{found.key}.gender")
        elif patient.gender:
            self.warn(f"{found.path}.gender", "not an administrative gender code; sex left unknown")

    # --- diagnoses --------------------------------------------------------------------------

    def _diagnoses(self, facts: _Facts) -> None:
        seen_conditions: set[str] = set()
        codes: set[str] = set()
        for index, diagnosis in enumerate(self.claim.diagnosis or ()):
            path = f"{self.claim_key}.diagnosis[{index}]"
            if diagnosis.diagnosisCodeableConcept is not None:
                self._icd10(
                    facts,
                    codes,
                    diagnosis.diagnosisCodeableConcept,
                    f"{path}.diagnosisCodeableConcept",
                    f"{self.claim_path}.diagnosis[{index}]",
                )
            elif diagnosis.diagnosisReference is not None:
                found = self.bundle.resolve(diagnosis.diagnosisReference.reference)
                if found is not None and isinstance(found.resource, Condition):
                    seen_conditions.add(found.key)
                    self._condition(facts, codes, found)
        for found in self.bundle.of_type("Condition"):
            if found.key not in seen_conditions:
                self._condition(facts, codes, found)

    def _condition(self, facts: _Facts, codes: set[str], found: Located) -> None:
        condition = found.resource
        assert isinstance(condition, Condition)
        statuses = {code for _, code, _ in _codings(condition.verificationStatus, "")}
        if statuses & _SKIPPED_CONDITION:
            return
        self._icd10(facts, codes, condition.code, f"{found.key}.code", f"{found.path}.code")

    def _icd10(
        self,
        facts: _Facts,
        codes: set[str],
        concept: CodeableConcept | None,
        source: str,
        path: str,
    ) -> None:
        read = False
        for system, code, where in _codings(concept, source):
            if system != self.codes.icd10cm:
                continue
            read = True
            try:
                normal = normalize_icd10(code)
            except ValueError:
                self.warn(
                    path, "an ICD-10-CM coding whose code is not shaped like ICD-10-CM; not read"
                )
                continue
            if normal not in codes:
                codes.add(normal)
                facts.add("diagnoses", normal, where)
        if not read and concept is not None and concept.coding:
            self.warn(path, "no ICD-10-CM coding; the diagnosis is not read", "information")

    # --- observations -----------------------------------------------------------------------

    def _observations(self, facts: _Facts) -> None:
        table = self.codes.observations
        chosen: dict[str, tuple[dt.date | None, Located, str, str]] = {}
        for found in self.bundle.of_type("Observation"):
            observation = found.resource
            assert isinstance(observation, Observation)
            if observation.status in _SKIPPED_OBSERVATION:
                continue
            for system, code, _ in _codings(observation.code, ""):
                if system != self.codes.loinc or code not in table:
                    continue
                field = table[code].field
                when, when_path = self._effective(observation)
                current = chosen.get(field)
                # The latest observation wins; undated ones only when nothing dated exists.
                if current is None or (
                    when is not None and (current[0] is None or when > current[0])
                ):
                    chosen[field] = (when, found, code, when_path)
                break
        lab_dates: list[tuple[dt.date, str]] = []
        for field, (when, found, code, when_path) in chosen.items():
            value = self._observation_value(found, table[code].field, code)
            if value is None:
                continue
            facts.set(field, value, f"{found.key}.valueQuantity")
            if field.startswith("labs.") and when is not None:
                lab_dates.append((when, f"{found.key}.{when_path}"))
        if lab_dates:
            # The oldest of the labs used: the conservative date for the whole panel.
            oldest = min(lab_dates)
            facts.set("labs.collected_on", oldest[0].isoformat(), oldest[1])

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

    def _observation_value(self, found: Located, field: str, code: str) -> float | int | None:
        observation = found.resource
        assert isinstance(observation, Observation)
        spec = self.codes.observations[code]
        quantity = observation.valueQuantity
        if quantity is None or quantity.value is None:
            self.warn(
                f"{found.path}.value", f"LOINC {code} has no valueQuantity; {field} left unknown"
            )
            return None
        unit = quantity.code or quantity.unit or ""
        if spec.uln:
            for index, limits in enumerate(observation.referenceRange or ()):
                high = limits.high
                if high is None or high.value is None or not high.value:
                    continue
                if (high.code or high.unit or "") != unit:
                    self.warn(
                        f"{found.path}.referenceRange[{index}].high",
                        "the upper limit's unit differs from the value's; not used",
                    )
                    continue
                return round(float(quantity.value) / float(high.value), 3)
            self.warn(
                f"{found.path}.referenceRange",
                f"no upper limit of normal to divide by; {field} left unknown",
            )
            return None
        factor = spec.units.get(unit)
        if factor is None:
            self.warn(
                f"{found.path}.valueQuantity",
                f"unit {unit!r} is not one read for LOINC {code}; {field} left unknown",
            )
            return None
        return _number(round(float(quantity.value) * factor, 4))

    # --- medications and allergies ----------------------------------------------------------

    def _medication_concept(
        self, resource: MedicationStatement | MedicationRequest, key: str
    ) -> tuple[CodeableConcept | None, str]:
        if resource.medicationCodeableConcept is not None:
            return resource.medicationCodeableConcept, f"{key}.medicationCodeableConcept"
        if resource.medicationReference is not None:
            found = self.bundle.resolve(resource.medicationReference.reference)
            if found is not None and isinstance(found.resource, Medication):
                return found.resource.code, f"{found.key}.code"
        return None, ""

    def _rxnorm(self, concept: CodeableConcept | None) -> str | None:
        for system, code, _ in _codings(concept, ""):
            if system == self.codes.rxnorm and _RXNORM.match(code):
                return code
        return None

    def _medications(self, facts: _Facts) -> None:
        for found in self.bundle.of_type("MedicationStatement"):
            statement = found.resource
            assert isinstance(statement, MedicationStatement)
            if statement.status in _SKIPPED_STATEMENT:
                continue
            concept, source = self._medication_concept(statement, found.key)
            name = _concept_name(concept)
            if not name:
                self.warn(
                    f"{found.path}.medication", "a medication without a name or display; not read"
                )
                continue
            entry: dict[str, Any] = {"name": name}
            rxnorm = self._rxnorm(concept)
            if rxnorm:
                entry["rxnorm"] = rxnorm
            facts.add("medications", entry, source)

    def _allergies(self, facts: _Facts) -> None:
        for found in self.bundle.of_type("AllergyIntolerance"):
            allergy = found.resource
            assert isinstance(allergy, AllergyIntolerance)
            statuses = {code for _, code, _ in _codings(allergy.verificationStatus, "")}
            if statuses & _SKIPPED_CONDITION:
                continue
            name = _concept_name(allergy.code)
            if not name:
                self.warn(f"{found.path}.code", "an allergy without a name or display; not read")
                continue
            entry: dict[str, Any] = {"name": name}
            rxnorm = self._rxnorm(allergy.code)
            if rxnorm:
                entry["rxnorm"] = rxnorm
            severities = [
                r.severity for r in allergy.reaction or () if r.severity in _SEVERITY_RANK
            ]
            if severities:
                entry["severity"] = max(severities, key=lambda s: _SEVERITY_RANK[str(s)])
            facts.add("allergies", entry, f"{found.key}.code")

    # --- DTR attestations -------------------------------------------------------------------

    def _attestations(self, facts: _Facts) -> None:
        for info in self.claim.supportingInfo or ():
            if info.valueReference is None:
                continue
            found = self.bundle.resolve(info.valueReference.reference)
            if found is None or not isinstance(found.resource, QuestionnaireResponse):
                continue
            self._answers(facts, found.resource.item or (), found.key, "item")

    def _answers(
        self, facts: _Facts, items: Iterable[QuestionnaireResponseItem], key: str, path: str
    ) -> None:
        table = self.codes.attestations
        for index, item in enumerate(items):
            here = f"{path}[{index}]"
            field = table.get(item.linkId or "")
            for number, answer in enumerate(item.answer or ()):
                if field is not None and number == 0:
                    value: bool | None = None
                    where = f"{key}.{here}.answer[0]"
                    if answer.valueBoolean is not None:
                        value, where = bool(answer.valueBoolean), f"{where}.valueBoolean"
                    elif answer.valueCoding is not None and answer.valueCoding.code:
                        code = answer.valueCoding.code.lower()
                        value = True if code in _YES else False if code in _NO else None
                        where = f"{where}.valueCoding"
                    if value is not None:
                        facts.set(field, value, where)
                self._answers(facts, answer.item or (), key, f"{here}.answer[{number}].item")
            self._answers(facts, item.item or (), key, f"{here}.item")

    # --- mCODE staging -------------------------------------------------------------------

    def _staging(self, facts: _Facts) -> None:
        """Distant metastasis from an mCODE staging Observation (M1, stage IV). It fills
        `disease.metastatic` only when nothing was attested; against an attested "no" it
        leaves the fact unknown for a person to settle, as the engine does with codes."""
        for found in self.bundle.of_type("Observation"):
            observation = found.resource
            assert isinstance(observation, Observation)
            if observation.status in _SKIPPED_OBSERVATION:
                continue
            codes = {
                code
                for system, code, _ in _codings(observation.code, "")
                if system == self.codes.loinc
            }
            for staging in self.codes.staging:
                if not codes & staging.loinc or not self._positive(observation, staging.positive):
                    continue
                source = f"{found.key}.valueCodeableConcept"
                attested = facts.values.get("disease.metastatic")
                if attested is None:
                    facts.set("disease.metastatic", True, source)
                elif attested is False:
                    facts.drop("disease.metastatic")
                    self.warn(
                        f"{found.path}.valueCodeableConcept",
                        "staging shows distant metastasis but the attestation says not "
                        "metastatic; left unknown for a person to settle",
                    )
                return

    @staticmethod
    def _positive(observation: Observation, pattern: re.Pattern[str]) -> bool:
        value = observation.valueCodeableConcept
        if value is None:
            return False
        texts = [value.text or ""]
        for coding in value.coding or ():
            texts += [coding.code or "", coding.display or ""]
        return any(pattern.search(text) for text in texts if text)

    # --- the items --------------------------------------------------------------------------

    def _item(
        self, shared: _Facts, item: ClaimItem, index: int, provider: Located | None
    ) -> ItemRequest:
        facts = shared.copy()
        key_path = f"{self.claim_key}.item[{index}]"
        path = f"{self.claim_path}.item[{index}]"
        base = _ID_UNSAFE.sub("-", self._request_base())[:56].strip("-") or "claim"
        facts.set("request_id", f"{base}-{item.sequence}", f"{key_path}.sequence")
        order = self._requested_order(item, index)
        drug = self._drug_codes(facts, item, key_path, order)
        if not drug:
            return ItemRequest(
                item.sequence or 0,
                path,
                None,
                "the item names no code, and no drug that priorauth reads",
            )
        if item.servicedDate is not None:
            facts.set(
                "regimen.start_date", item.servicedDate.isoformat(), f"{key_path}.servicedDate"
            )
        elif item.servicedPeriod is not None and item.servicedPeriod.start is not None:
            start = _date(item.servicedPeriod.start)
            if start is not None:
                facts.set(
                    "regimen.start_date", start.isoformat(), f"{key_path}.servicedPeriod.start"
                )
        requester = provider
        if order is not None:
            self._regimen(facts, order)
            request = order.resource
            assert isinstance(request, MedicationRequest)
            if request.requester is not None:
                requester = self.bundle.resolve(request.requester.reference) or provider
        if requester is not None:
            self._prescriber(facts, requester)
        checked, parsed = self._validated(facts)
        return ItemRequest(item.sequence or 0, path, checked, parsed=parsed)

    def _requested_order(self, item: ClaimItem, index: int) -> Located | None:
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

    def _drug_codes(
        self, facts: _Facts, item: ClaimItem, key_path: str, order: Located | None
    ) -> bool:
        concepts: list[tuple[CodeableConcept | None, str]] = [
            (item.productOrService, f"{key_path}.productOrService")
        ]
        if order is not None:
            request = order.resource
            assert isinstance(request, MedicationRequest)
            concepts.append(self._medication_concept(request, order.key))
        for concept, source in concepts:
            for system, code, where in _codings(concept, source):
                if (
                    system in self.codes.hcpcs
                    and _HCPCS.match(code)
                    and "drug.hcpcs" not in facts.values
                ):
                    facts.set("drug.hcpcs", code.upper(), where)
                elif system == self.codes.ndc and "drug.ndc" not in facts.values:
                    try:
                        facts.set("drug.ndc", normalize_ndc(code), where)
                    except ValueError:
                        self.warn(where, "an NDC coding whose code is not an NDC; not read")
        if "drug.hcpcs" in facts.values or "drug.ndc" in facts.values:
            return True
        for concept, source in concepts:
            name = _concept_name(concept)
            if name and self._drug_by_name(facts, name, source):
                return True
        # Not a drug any policy could govern (a CPT visit, say): the item is still a request,
        # known by its own code, and is pended for intake like any drug no policy governs.
        for system, code, where in _codings(item.productOrService, concepts[0][1]):
            facts.set("drug.code", code, where)
            if system:
                facts.set("drug.system", system, where)
            return True
        return False

    def _drug_by_name(self, facts: _Facts, name: str, source: str) -> bool:
        words = set(re.findall(r"[a-z0-9]+", name.lower()))
        for compiled in self.policies.policies:
            for drug in compiled.policy.drugs:
                names = {drug.generic_name.lower(), drug.name.split()[0].lower()}
                if words & names:
                    facts.set("drug.name", name, source)
                    if drug.hcpcs:
                        facts.set("drug.hcpcs", drug.hcpcs[0], source)
                    else:
                        facts.set("drug.ndc", f"{drug.ndc_products[0]}-00", source)
                    return True
        return False

    def _regimen(self, facts: _Facts, order: Located) -> None:
        request = order.resource
        assert isinstance(request, MedicationRequest)
        if not request.dosageInstruction:
            self.warn(
                f"{order.path}.dosageInstruction",
                "no dosage instruction; the dose and schedule are unknown",
            )
            return
        dosage = request.dosageInstruction[0]
        base = f"{order.key}.dosageInstruction[0]"
        path = f"{order.path}.dosageInstruction[0]"
        quantity = dosage.doseAndRate[0].doseQuantity if dosage.doseAndRate else None
        if quantity is not None and quantity.value is not None:
            unit = self.codes.dose_units.get(quantity.code or quantity.unit or "")
            if unit is None:
                self.warn(
                    f"{path}.doseAndRate[0].doseQuantity",
                    "the dose unit is not mg or mg/m2 (UCUM); the dose is left unknown",
                )
            elif quantity.value > 0:
                where = f"{base}.doseAndRate[0].doseQuantity"
                facts.set("regimen.dose", _number(quantity.value), where)
                facts.set("regimen.dose_unit", unit, where)
        repeat = dosage.timing.repeat if dosage.timing is not None else None
        if repeat is not None:
            where = f"{base}.timing.repeat"
            days = self.codes.period_units.get(repeat.periodUnit or "")
            if repeat.period is not None and days is not None:
                length = float(repeat.period) * days
                if length.is_integer() and length >= 1:
                    facts.set("regimen.cycle_length_days", int(length), f"{where}.period")
                    facts.set(
                        "regimen.doses_per_cycle", repeat.frequency or 1, f"{where}.frequency"
                    )
            elif repeat.period is not None:
                self.warn(
                    f"{path}.timing.repeat.periodUnit",
                    "the period is not in days or weeks; the cycle is left unknown",
                )
            if "regimen.start_date" not in facts.values and repeat.boundsPeriod is not None:
                start = _date(repeat.boundsPeriod.start)
                if start is not None:
                    facts.set(
                        "regimen.start_date", start.isoformat(), f"{where}.boundsPeriod.start"
                    )
        if dosage.route is not None:
            for _, code, where in _codings(dosage.route, f"{base}.route"):
                if code in self.codes.routes:
                    facts.set("regimen.route", self.codes.routes[code], where)
                    break
            else:
                name = _concept_name(dosage.route)
                if name:
                    facts.set("regimen.route", name.lower(), f"{base}.route")
        if "regimen.start_date" not in facts.values and request.dispenseRequest is not None:
            validity = request.dispenseRequest.validityPeriod
            start = _date(validity.start) if validity is not None else None
            if start is not None:
                facts.set(
                    "regimen.start_date",
                    start.isoformat(),
                    f"{order.key}.dispenseRequest.validityPeriod.start",
                )

    def _prescriber(self, facts: _Facts, found: Located) -> None:
        resource = found.resource
        practitioner: Located | None = None
        if isinstance(resource, PractitionerRole):
            self._specialty(facts, resource, found.key)
            if resource.practitioner is not None:
                practitioner = self.bundle.resolve(resource.practitioner.reference)
        elif isinstance(resource, Practitioner):
            practitioner = found
            for role in self.bundle.of_type("PractitionerRole"):
                assert isinstance(role.resource, PractitionerRole)
                linked = role.resource.practitioner
                target = self.bundle.resolve(linked.reference) if linked is not None else None
                if target is not None and target.key == found.key:
                    self._specialty(facts, role.resource, role.key)
                    if "prescriber.specialty" in facts.values:
                        break
        if practitioner is None or not isinstance(practitioner.resource, Practitioner):
            return
        doctor = practitioner.resource
        if "prescriber.specialty" not in facts.values:
            for index, qualification in enumerate(doctor.qualification or ()):
                for system, code, where in _codings(
                    qualification.code, f"{practitioner.key}.qualification[{index}].code"
                ):
                    if system == self.codes.nucc:
                        facts.set("prescriber.specialty", code, where)
                        break
        for index, identifier in enumerate(doctor.identifier or ()):
            if identifier.system == self.codes.npi and identifier.value:
                if npi_is_valid(identifier.value):
                    facts.set(
                        "prescriber.npi",
                        identifier.value,
                        f"{practitioner.key}.identifier[{index}]",
                    )
                else:
                    self.warn(
                        f"{practitioner.path}.identifier[{index}].value",
                        "not a valid NPI (check digit); left out",
                    )
                break

    def _specialty(self, facts: _Facts, role: PractitionerRole, key: str) -> None:
        named: tuple[str, str] | None = None
        for index, specialty in enumerate(role.specialty or ()):
            for system, code, where in _codings(specialty, f"{key}.specialty[{index}]"):
                if system == self.codes.nucc:
                    facts.set("prescriber.specialty", code, where)
                    return
            name = _concept_name(specialty)
            if name and named is None:
                named = (name, f"{key}.specialty[{index}]")
        if named is not None:
            facts.set("prescriber.specialty", *named)

    def _bundle_path(self, source: str) -> str:
        """`Observation/o1.valueQuantity` as a FHIRPath from the Bundle."""
        key, dot, rest = source.partition(".")
        found = self.bundle.by_reference.get(key)
        return f"{found.path}{dot}{rest}" if found is not None else source

    def _validated(self, facts: _Facts) -> tuple[dict[str, Any] | None, Request | None]:
        """The request, checked against the contract, and as the contract read it; a value the
        contract refuses is left out (unknown) with a warning naming its FHIR element."""
        for _ in range(8):
            request = facts.request()
            try:
                parsed = parse_request(request)
            except InvalidRequest as exc:
                for problem in exc.problems:
                    source = facts.drop(problem.field)
                    self.warn(
                        self._bundle_path(source) if source else self.claim_path,
                        f"{problem.field}: {problem.message}; left out",
                    )
                continue
            return request, parsed
        return None, None
