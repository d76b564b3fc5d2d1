"""Helpers shared by the FHIR adapter tests (no tests here): example bundles, the fixtures."""

from __future__ import annotations

import copy
import datetime as dt
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tests.conftest import ROOT

FHIR_EXAMPLES = ROOT / "examples" / "fhir"
CREATED = dt.datetime(2026, 11, 25, 9, 0, tzinfo=dt.UTC)


def fixtures_dir() -> Path:
    """The HL7 Da Vinci reference implementation's fixtures, kept under tests/fixtures."""
    return ROOT / "tests" / "fixtures" / "davinci-prior-auth"


def reference_fixture(name: str) -> dict[str, Any]:
    """A fresh copy of one of the reference implementation's fixtures."""
    data: dict[str, Any] = json.loads((fixtures_dir() / name).read_text())
    return data


def fhir_example(name: str) -> dict[str, Any]:
    """A fresh copy of an example bundle from examples/fhir/."""
    data: dict[str, Any] = json.loads((FHIR_EXAMPLES / name).read_text())
    return copy.deepcopy(data)


def resource(bundle: dict[str, Any], key: str) -> dict[str, Any]:
    """The resource `Type/id` of a bundle (JSON), for a test to change."""
    for entry in bundle["entry"]:
        found: dict[str, Any] = entry["resource"]
        if f"{found['resourceType']}/{found.get('id')}" == key:
            return found
    raise KeyError(key)


def remove(bundle: dict[str, Any], key: str) -> None:
    """Take the resource `Type/id` out of a bundle (JSON)."""
    bundle["entry"] = [
        e
        for e in bundle["entry"]
        if f"{e['resource']['resourceType']}/{e['resource'].get('id')}" != key
    ]


UCUM = "http://unitsofmeasure.org"
LOINC = "http://loinc.org"
ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"
HCPCS = "https://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets"
REQUESTED_SERVICE = (
    "http://hl7.org/fhir/us/davinci-pas/StructureDefinition/extension-requestedService"
)


def quantity(value: float, code: str | None) -> dict[str, Any]:
    """A FHIR Quantity in a UCUM unit (or none)."""
    found: dict[str, Any] = {"value": value}
    if code is not None:
        found.update(system=UCUM, code=code, unit=code)
    return found


def lab(key: str, loinc: str, when: str, **value: Any) -> dict[str, Any]:
    """An Observation of the patient (`valueQuantity=quantity(...)`, `valueCodeableConcept=`)."""
    return {
        "resourceType": "Observation",
        "id": key,
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": loinc}]},
        "subject": {"reference": "Patient/pat-1"},
        "effectiveDateTime": when,
        **value,
    }


def statement(key: str, name: str, status: str, start: str, end: str | None) -> dict[str, Any]:
    """A MedicationStatement of the patient, by name."""
    period = {"start": start, **({"end": end} if end else {})}
    return {
        "resourceType": "MedicationStatement",
        "id": key,
        "status": status,
        "medicationCodeableConcept": {"text": name},
        "subject": {"reference": "Patient/pat-1"},
        "effectivePeriod": period,
    }


def pas_bundle(
    *,
    claim_id: str,
    created: str,
    hcpcs: str,
    birth_date: str,
    gender: str,
    specialty: str,
    conditions: list[dict[str, Any]],
    dosage: list[dict[str, Any]],
    resources: Sequence[dict[str, Any]] = (),
    answers: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A PAS request bundle about an invented patient: one Claim item (a HCPCS code) and its
    MedicationRequest with `dosage`, the prescriber's role with a NUCC `specialty`, each
    Condition (`{"code": ..., **more}`, ICD-10-CM) on the Claim, the `resources` given, and a
    QuestionnaireResponse of `answers` ({linkId: answer}) when any."""
    entries: list[dict[str, Any]] = []
    diagnoses = []
    for index, condition in enumerate(conditions):
        key = f"cond-{index + 1}"
        found = {
            "resourceType": "Condition",
            "id": key,
            "code": {"coding": [{"system": ICD10, "code": condition["code"]}]},
            "subject": {"reference": "Patient/pat-1"},
            **{k: v for k, v in condition.items() if k != "code"},
        }
        entries.append(found)
        diagnoses.append(
            {"sequence": index + 1, "diagnosisReference": {"reference": f"Condition/{key}"}}
        )
    claim: dict[str, Any] = {
        "resourceType": "Claim",
        "id": "claim-1",
        "identifier": [{"system": "https://provider.example.org/pa-requests", "value": claim_id}],
        "status": "active",
        "type": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/claim-type",
                    "code": "professional",
                }
            ]
        },
        "use": "preauthorization",
        "patient": {"reference": "Patient/pat-1"},
        "created": created,
        "insurer": {"reference": "Organization/payer-1"},
        "provider": {"reference": "PractitionerRole/role-1"},
        "priority": {"coding": [{"code": "normal"}]},
        "diagnosis": diagnoses,
        "insurance": [
            {"sequence": 1, "focal": True, "coverage": {"display": "Example Health Plan"}}
        ],
        "item": [
            {
                "sequence": 1,
                "extension": [
                    {
                        "url": REQUESTED_SERVICE,
                        "valueReference": {"reference": "MedicationRequest/order-1"},
                    }
                ],
                "productOrService": {"coding": [{"system": HCPCS, "code": hcpcs}]},
            }
        ],
    }
    shared: list[dict[str, Any]] = [
        {
            "resourceType": "Patient",
            "id": "pat-1",
            "identifier": [{"system": "https://payer.example.org/members", "value": "M-000-0100"}],
            "gender": gender,
            "birthDate": birth_date,
        },
        {"resourceType": "Organization", "id": "payer-1", "name": "Example Health Plan"},
        {
            "resourceType": "Practitioner",
            "id": "prac-1",
            "identifier": [{"system": "http://hl7.org/fhir/sid/us-npi", "value": "1234567893"}],
        },
        {
            "resourceType": "PractitionerRole",
            "id": "role-1",
            "practitioner": {"reference": "Practitioner/prac-1"},
            "specialty": [
                {"coding": [{"system": "http://nucc.org/provider-taxonomy", "code": specialty}]}
            ],
        },
        {
            "resourceType": "MedicationRequest",
            "id": "order-1",
            "status": "active",
            "intent": "order",
            "medicationCodeableConcept": {"coding": [{"system": HCPCS, "code": hcpcs}]},
            "subject": {"reference": "Patient/pat-1"},
            "requester": {"reference": "PractitionerRole/role-1"},
            "dosageInstruction": dosage,
        },
    ]
    if answers:
        shared.append(
            {
                "resourceType": "QuestionnaireResponse",
                "id": "dtr-1",
                "status": "completed",
                "subject": {"reference": "Patient/pat-1"},
                "authored": created[:10],
                "author": {"reference": "Practitioner/prac-1"},
                "item": [{"linkId": k, "answer": [v]} for k, v in answers.items()],
            }
        )
    everything = [claim, *shared, *entries, *resources]
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {
                "fullUrl": f"https://provider.example.org/fhir/{r['resourceType']}/{r['id']}",
                "resource": r,
            }
            for r in everything
        ],
    }
