"""CDS Hooks calls made from PAS bundles about invented patients: the order goes into the
hook's draftOrders, every other resource of the chart into the prefetch key that would carry
it. The charts are those the PAS tests decide (one per shipped policy), so each hook answer
can be held to the same engine's decision."""

from __future__ import annotations

import copy
import datetime as dt
import json
import uuid
from pathlib import Path
from typing import Any

from tests.unit.test_fhir_policies import eribulin_liposarcoma, infliximab_induction

ROOT = Path(__file__).resolve().parents[1]
HCPCS = "https://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets"

# Which prefetch key carries each resource type (the service's discovery names these keys).
PREFETCH_KEY = {
    "Patient": "patient",
    "Coverage": "coverage",
    "Condition": "conditions",
    "Observation": "observations",
    "MedicationStatement": "medicationStatements",
    "PractitionerRole": "practitionerRoles",
    "Practitioner": "practitionerRoles",
    "QuestionnaireResponse": "questionnaireResponses",
}
SEARCHSET = (
    "coverage",
    "conditions",
    "observations",
    "medicationStatements",
    "medicationRequests",
    "practitionerRoles",
    "userRole",
    "questionnaireResponses",
)


def ixempra_chart() -> dict[str, Any]:
    """Ixempra for metastatic breast cancer at 40 mg/m2 every 21 days, an oncologist."""
    data: dict[str, Any] = json.loads((ROOT / "examples/fhir/pas-approvable.json").read_text())
    return data


def _moved(value: Any, days: int, key: str = "") -> Any:
    """Every date and date-time in a bundle moved by `days` (birth dates stay)."""
    if isinstance(value, dict):
        return {k: _moved(v, days, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_moved(v, days, key) for v in value]
    if isinstance(value, str) and key != "birthDate" and len(value) >= 10:
        try:
            day = dt.date.fromisoformat(value[:10])
        except ValueError:
            return value
        return (day + dt.timedelta(days=days)).isoformat() + value[10:]
    return value


def infliximab_chart() -> dict[str, Any]:
    """The PAS tests' infliximab induction (first dose 2026-03-09), moved so that the order
    starts on 2026-11-30, within the service-date window of the hook's day (2026-11-25)."""
    days = (dt.date(2026, 11, 30) - dt.date(2026, 3, 9)).days
    moved: dict[str, Any] = _moved(infliximab_induction(), days)
    return moved


CHARTS = {
    "ixempra": ixempra_chart,
    "eribulin": eribulin_liposarcoma,
    "infliximab": infliximab_chart,
}


def resources(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    return [copy.deepcopy(e["resource"]) for e in bundle["entry"]]


def searchset(found: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(found),
        "entry": [{"resource": r} for r in found],
    }


def hook_call(
    bundle: dict[str, Any],
    hook: str = "order-sign",
    *,
    leave_out: tuple[str, ...] = (),
    answers: bool = True,
) -> dict[str, Any]:
    """A CDS Hooks request for the bundle's MedicationRequest, its chart in prefetch (keys in
    `leave_out` not sent). With `answers`, a completed QuestionnaireResponse in the chart (the
    EHR keeps the forms answered before) rides along under `questionnaireResponses`."""
    everything = resources(bundle)
    orders = [r for r in everything if r["resourceType"] == "MedicationRequest"]
    patient = next(r for r in everything if r["resourceType"] == "Patient")
    prefetch: dict[str, Any] = {}
    grouped: dict[str, list[dict[str, Any]]] = {}
    for resource in everything:
        key = PREFETCH_KEY.get(resource["resourceType"])
        if key is None or (key == "questionnaireResponses" and not answers):
            continue
        grouped.setdefault(key, []).append(resource)
    for key, found in grouped.items():
        prefetch[key] = found[0] if key == "patient" else searchset(found)
    for key in SEARCHSET:
        prefetch.setdefault(key, searchset([]))
    for key in leave_out:
        prefetch.pop(key, None)
    context: dict[str, Any] = {
        "userId": "PractitionerRole/role-1",
        "patientId": patient["id"],
        "encounterId": "enc-1",
    }
    if hook in ("order-sign", "order-select"):
        context["draftOrders"] = searchset(orders) | {"type": "collection"}
    if hook == "order-select":
        context["selections"] = [f"MedicationRequest/{o['id']}" for o in orders]
    if hook == "order-dispatch":
        context["dispatchedOrders"] = [f"MedicationRequest/{o['id']}" for o in orders]
        context["performer"] = "Organization/infusion-center"
        prefetch["dispatchedOrders"] = searchset(orders)
    return {
        "hook": hook,
        "hookInstance": str(uuid.uuid4()),
        "context": context,
        "prefetch": prefetch,
    }


def remove_condition(bundle: dict[str, Any], prefix: str) -> dict[str, Any]:
    """The bundle without the Conditions coded under `prefix` (nor the Claim's pointers)."""
    changed = copy.deepcopy(bundle)
    gone = set()
    kept = []
    for entry in changed["entry"]:
        resource = entry["resource"]
        codes = [c.get("code", "") for c in resource.get("code", {}).get("coding", [])]
        if resource["resourceType"] == "Condition" and any(c.startswith(prefix) for c in codes):
            gone.add(f"Condition/{resource['id']}")
            continue
        kept.append(entry)
    changed["entry"] = kept
    claim = changed["entry"][0]["resource"]
    claim["diagnosis"] = [
        d
        for d in claim.get("diagnosis", [])
        if d.get("diagnosisReference", {}).get("reference") not in gone
    ]
    for index, diagnosis in enumerate(claim["diagnosis"]):
        diagnosis["sequence"] = index + 1
    return changed


def without_answers(bundle: dict[str, Any], *link_ids: str) -> dict[str, Any]:
    """The bundle with its QuestionnaireResponse's answers to `link_ids` (all: none given)
    taken out."""
    changed = copy.deepcopy(bundle)

    def keep(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        kept = []
        for item in items:
            if (link_ids and item["linkId"] not in link_ids) or "item" in item:
                if "item" in item:
                    item["item"] = keep(item["item"])
                kept.append(item)
            elif not link_ids:
                continue
        return kept

    for entry in changed["entry"]:
        resource = entry["resource"]
        if resource["resourceType"] == "QuestionnaireResponse":
            resource["item"] = keep(resource.get("item", []))
    return changed


def with_coverage(bundle: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """The bundle with its Coverage changed (`status`, `period`...; None removes an element),
    or without any Coverage when `changes` is empty."""
    changed = copy.deepcopy(bundle)
    entries = changed["entry"]
    if not changes:
        changed["entry"] = [e for e in entries if e["resource"]["resourceType"] != "Coverage"]
        return changed
    for entry in entries:
        resource = entry["resource"]
        if resource["resourceType"] == "Coverage":
            for key, value in changes.items():
                if value is None:
                    resource.pop(key, None)
                else:
                    resource[key] = value
    return changed


def other_drug(bundle: dict[str, Any], code: str = "J9267") -> dict[str, Any]:
    """The same chart ordering a drug no policy governs (paclitaxel's HCPCS code)."""
    changed = copy.deepcopy(bundle)
    for entry in changed["entry"]:
        resource = entry["resource"]
        if resource["resourceType"] == "MedicationRequest":
            resource["medicationCodeableConcept"] = {"coding": [{"system": HCPCS, "code": code}]}
        if resource["resourceType"] == "Claim":
            for item in resource["item"]:
                item["productOrService"] = {"coding": [{"system": HCPCS, "code": code}]}
    return changed


def denosumab_chart() -> dict[str, Any]:
    """The PAS tests' denosumab every six months (first dose 2026-05-04), moved so that the
    order starts on 2026-11-30, within the service-date window of the tests' day."""
    from tests.unit.test_fhir_policies import denosumab_every_six_months

    days = (dt.date(2026, 11, 30) - dt.date(2026, 5, 4)).days
    moved: dict[str, Any] = _moved(denosumab_every_six_months(), days)
    return moved
