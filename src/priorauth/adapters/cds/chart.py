"""A patient's chart from a CDS Hooks call (context + prefetch), mapped to a priorauth request.

The EHR sends FHIR resources in pieces: the draft order in the hook's context, the patient, the
conditions, observations, medications and practitioners in prefetch (or fetched later from its
FHIR server). `Chart` keeps each resource once with the place it came from
(`prefetch.conditions.entry[2].resource`), and `chart_request` maps one medication order and the
chart with the same code as a PAS Claim item (`adapters.fhir.mapping`): the order is put in a
Claim of our own making, which the mapper reads exactly as it reads one from a provider. So a
field the chart lacks is unknown, an element that cannot be read is named, and every field
keeps the element it came from in `sources`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from fhir.resources.R4B.claim import Claim, ClaimItem
from fhir.resources.R4B.codeableconcept import CodeableConcept
from fhir.resources.R4B.medication import Medication
from fhir.resources.R4B.medicationrequest import MedicationRequest
from fhir.resources.R4B.reference import Reference
from pydantic import ValidationError

from priorauth.adapters.fhir.bundle import Located, PasBundle, Rejected, _model_class
from priorauth.adapters.fhir.codes import code_table
from priorauth.adapters.fhir.mapping import ItemRequest, Submission, map_pas_bundle
from priorauth.adapters.fhir.problems import Problem, problems_from_validation
from priorauth.catalog import PolicySet
from priorauth.engine.request import Request

__all__ = ["Chart", "ChartResult", "chart_request", "orders_of"]

_CLAIM_KEY = "Claim/crd-order"


@dataclass
class Chart:
    """The FHIR resources of one hook call, each once (the first copy seen is kept), and the
    problems met while reading them."""

    resources: list[Located] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    _keys: dict[str, Located] = field(default_factory=dict)

    def add(self, raw: object, path: str) -> Located | None:
        """Read one resource (JSON data) found at `path`; a Bundle adds each of its entries.
        Returns the resource read, or None (a problem is recorded when it cannot be read)."""
        if not isinstance(raw, dict):
            self.problems.append(Problem(path, "error", "expected a FHIR resource", "structure"))
            return None
        name = raw.get("resourceType")
        model = _model_class(name) if isinstance(name, str) else None
        if model is None:
            message = f"{name} is not a FHIR R4 resource type" if name else "no resourceType"
            self.problems.append(Problem(f"{path}.resourceType", "error", message, "value"))
            return None
        if name == "Bundle":
            for index, entry in enumerate(raw.get("entry") or ()):
                if isinstance(entry, dict) and "resource" in entry:
                    self.add(entry["resource"], f"{path}.entry[{index}].resource")
            return None
        if name == "OperationOutcome":
            return None  # a search's own messages, not part of the chart
        try:
            resource = model.model_validate(raw)
        except ValidationError as exc:
            self.problems.extend(problems_from_validation(path, exc))
            return None
        key = f"{name}/{resource.id}" if resource.id else f"{name}/#{len(self.resources)}"
        if key in self._keys:
            return self._keys[key]
        found = Located(resource, path, key, raw, None)
        self.resources.append(found)
        self._keys[key] = found
        return found

    def collect(self, bundle: object, path: str) -> list[Located]:
        """Read a Bundle's resources; each one read (or the copy read before), in order."""
        found: list[Located] = []
        entries = bundle.get("entry") if isinstance(bundle, dict) else None
        for index, entry in enumerate(entries if isinstance(entries, list) else ()):
            if isinstance(entry, dict) and "resource" in entry:
                located = self.add(entry["resource"], f"{path}.entry[{index}].resource")
                if located is not None:
                    found.append(located)
        return found

    def get(self, reference: str | None) -> Located | None:
        """The resource a `Type/id` reference (or an absolute one ending so) names."""
        if not reference:
            return None
        parts = reference.rstrip("/").split("/")
        if "_history" in parts:
            parts = parts[: parts.index("_history")]
        key = "/".join(parts[-2:]) if len(parts) >= 2 else reference
        return self._keys.get(key)

    def of_type(self, name: str) -> Iterator[Located]:
        return (r for r in self.resources if r.resource.get_resource_type() == name)

    def has_type(self, name: str) -> bool:
        return any(True for _ in self.of_type(name))


@dataclass(frozen=True, slots=True)
class ChartResult:
    """One order mapped: the request (None when the order names nothing priorauth reads, with
    `note` saying why), and the warnings about elements left unknown."""

    request: dict[str, Any] | None
    note: str | None
    problems: tuple[Problem, ...]
    # `request` as the contract read it (the mapping checked it), so it is not read again.
    parsed: Request | None = None


# The parts of the Claim that are the same for every order, validated once; each call adds
# only the order's own parts, themselves already validated with the order (Chart.add).
_CLAIM_TEMPLATE: dict[str, Any] = {
    "resourceType": "Claim",
    "id": "crd-order",
    "status": "active",
    "type": {"coding": [{"code": "pharmacy"}]},
    "use": "preauthorization",
    "patient": {"reference": "Patient/unknown"},
    "created": "2026-01-01T00:00:00+00:00",
    "provider": {"display": "the ordering practitioner"},
    "priority": {"coding": [{"code": "normal"}]},
    "insurance": [{"sequence": 1, "focal": True, "coverage": {"display": "the coverage"}}],
}


@cache
def _claim_template() -> Claim:
    return Claim.model_validate(_CLAIM_TEMPLATE)


@cache
def _unnamed_product() -> CodeableConcept:
    return CodeableConcept.model_validate({"text": "the ordered medication"})


def _claim(order: Located, chart: Chart, patient_id: str | None, created: dt.datetime) -> Claim:
    """A preauthorization Claim of one item, for the order, as a PAS request would carry it.

    Every part is validated by fhir.resources: the fixed envelope once (`_claim_template`),
    the order's medication, subject and requester with the order itself; only the two
    references made here (the patient when the order names none, and the order) and the
    creation time are validated per call."""
    medication = order.resource
    assert isinstance(medication, MedicationRequest)
    concept = medication.medicationCodeableConcept
    if concept is None and medication.medicationReference is not None:
        found = chart.get(medication.medicationReference.reference)
        if found is not None and isinstance(found.resource, Medication):
            concept = found.resource.code
    subject = medication.subject
    if subject is None or not subject.reference:
        subject = Reference.model_validate(
            {"reference": f"Patient/{patient_id}" if patient_id else "Patient/unknown"}
        )
    requester = medication.requester
    provider = requester if requester is not None and requester.reference else None
    codes = code_table()
    item = ClaimItem.model_validate(
        {
            "sequence": 1,
            "extension": [
                {
                    "url": codes.extensions["requested_service"],
                    "valueReference": {"reference": order.key},
                }
            ],
            "productOrService": concept if concept is not None else _unnamed_product(),
        }
    )
    update: dict[str, Any] = {
        "patient": subject,
        "created": created,
        "item": [item],
    }
    if provider is not None:
        update["provider"] = provider
    return _claim_template().model_copy(update=update)


def chart_request(
    order: Located,
    chart: Chart,
    policies: PolicySet,
    *,
    patient_id: str | None,
    created: dt.datetime,
) -> ChartResult | Rejected:
    """Map one MedicationRequest of the chart (with the chart's other resources) to a request.

    Returns Rejected when an element cannot be read (a code in a system priorauth does not
    know where the code is the fact, a unit that is not UCUM), naming it.
    """
    try:
        claim = _claim(order, chart, patient_id, created)
    except ValidationError as exc:
        return Rejected(tuple(problems_from_validation(order.path, exc)))
    claim_entry = Located(claim, "the order's Claim", _CLAIM_KEY, {}, None)
    by_reference: dict[str, Located] = {_CLAIM_KEY: claim_entry}
    for found in chart.resources:
        by_reference.setdefault(found.key, found)
    bundle = PasBundle(
        claim,
        claim_entry,
        (claim_entry, *chart.resources),
        by_reference,
        (),
        None,
    )
    mapped = map_pas_bundle(bundle, policies)
    if isinstance(mapped, Rejected):
        return mapped
    assert isinstance(mapped, Submission)
    item: ItemRequest = mapped.items[0]
    return ChartResult(item.request, item.note, mapped.problems, item.parsed)


def orders_of(chart: Chart, keys: Iterable[str] | None = None) -> list[Located]:
    """The chart's MedicationRequests (those named by `keys`, when given), in order."""
    wanted = set(keys) if keys is not None else None
    return [
        found
        for found in chart.of_type("MedicationRequest")
        if wanted is None or found.key in wanted
    ]
