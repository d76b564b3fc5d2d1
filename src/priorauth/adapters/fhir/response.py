"""Build the PAS response Bundle from the engine's determinations.

The first entry is the ClaimResponse: one item per Claim item (echoing its sequence), the X12
306 review action on item.adjudication, itemPreAuthPeriod and an authorization number when
approved, the reviewer extension (wasHumanReviewedFlag false: the engine decided), and process
notes that say in words what is missing or why the item was pended. The resources the
ClaimResponse refers to (patient, insurer, requestor) follow it, copied from the request.

The bundle is built by this module's own code from the code table, the determinations and
resources of the request that fhir.resources has already validated, so it is not validated
again on every answer (that cost about 2 ms of each `$submit`): `validate_response` checks a
bundle with fhir.resources, and the tests run it on every shape of response.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from fhir.resources.R4B.bundle import Bundle
from pydantic import ValidationError

from priorauth.adapters.fhir.bundle import Located
from priorauth.adapters.fhir.codes import code_table
from priorauth.adapters.fhir.mapping import ItemRequest, Submission
from priorauth.adapters.fhir.problems import problems_from_validation
from priorauth.engine.determination import Authorization, Determination

__all__ = [
    "InvalidResponse",
    "authorization_number",
    "authorization_words",
    "build_response",
    "item_notes",
    "validate_response",
]


class InvalidResponse(Exception):
    """The response built does not validate: a defect in priorauth, never the caller's input."""


def authorization_number(determination: Determination) -> str:
    """A stable authorization number for an approved determination, from its request hash.

    The service layer may hand its own numbering to build_response instead.
    """
    digest = determination.request_hash.removeprefix("sha256:")
    return f"PA-{digest[:12].upper()}"


def item_notes(item: ItemRequest, determination: Determination | None) -> list[str]:
    """The process notes for one item, in words: the outcome, then each open question."""
    label = f"Item {item.sequence}"
    if determination is None:
        return [f"{label}: pended for intake: {item.note or 'the item could not be read'}."]
    notes = [f"{label}: {determination.summary}."]
    if determination.outcome == "approved" and determination.authorization is not None:
        notes.append(f"{label}: authorized: {authorization_words(determination.authorization)}.")
    if determination.outcome == "pended":
        reasons = ", ".join(determination.reasons)
        notes[0] = f"{label}: pended ({reasons}): {determination.summary}."
        notes.extend(f"{label}: missing: {m.question}" for m in determination.missing)
        notes.extend(f"{label}: conflict: {c.message}." for c in determination.conflicts)
        if determination.dosing is not None and determination.dosing.status == "outside":
            notes.extend(
                f"{label}: dose: {check.detail}."
                for check in determination.dosing.checks
                if check.status == "not-met"
            )
    return notes


def _number(value: float) -> str:
    return f"{value:g}"


def authorization_words(authorization: Authorization) -> str:
    """What an approval authorizes, in words: the regimen, the doses and the billing units
    (the period is the itemPreAuthPeriod's, and the summary's).

    >>> import datetime as dt
    >>> for part in authorization_words(Authorization(dt.date(2026, 12, 1),
    ...     dt.date(2027, 11, 30), "A", "every 21 days", 40, "mg/m2", 18, 68.0, "X0001", 68,
    ...     1224, None)).split(", "):
    ...     print(part)
    regimen A (every 21 days): 18 doses of up to 40 mg/m2 (68 mg)
    billed as X0001: 68 units a dose
    1224 in all
    """
    words = f"regimen {authorization.regimen} ({authorization.regimen_text})"
    dose = ""
    if authorization.doses is not None:
        dose = f"{authorization.doses} doses"
    if authorization.dose is not None and authorization.dose_unit is not None:
        each = f"up to {_number(authorization.dose)} {authorization.dose_unit}"
        dose = f"{dose} of {each}" if dose else f"doses of {each}"
    if dose and authorization.mg_per_dose is not None and authorization.dose_unit != "mg":
        dose += f" ({_number(authorization.mg_per_dose)} mg)"
    if dose:
        words += f": {dose}"
    if authorization.billing_code is not None and authorization.units_per_dose is not None:
        words += (
            f", billed as {authorization.billing_code}: {authorization.units_per_dose} units a dose"
        )
        if authorization.units is not None:
            words += f", {authorization.units} in all"
    return words


def _authorized_detail(authorization: Authorization) -> dict[str, Any] | None:
    """PAS itemAuthorizedDetail: the billing code and the units authorized for the period."""
    if authorization.billing_code is None or authorization.units is None:
        return None
    codes = code_table()
    return {
        "url": codes.extensions["item_authorized_detail"],
        "extension": [
            {
                "url": "productOrServiceCode",
                "valueCodeableConcept": {
                    "coding": [{"system": codes.hcpcs, "code": authorization.billing_code}]
                },
            },
            {"url": "quantity", "valueQuantity": {"value": authorization.units, "unit": "units"}},
        ],
    }


def _raw_item(raw_claim: dict[str, Any], sequence: int) -> dict[str, Any]:
    # The raw JSON as sent: a null list is as good as none (the models read it so too).
    for item in raw_claim.get("item") or ():
        if isinstance(item, dict) and item.get("sequence") == sequence:
            return item
    return {}


def _concept(system: str, code: str, display: str) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code, "display": display}]}


def build_response(
    submission: Submission,
    determinations: Sequence[Determination | None],
    *,
    created: dt.datetime | None = None,
    number: Callable[[Determination], str] = authorization_number,
    insurer: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The PAS response Bundle (JSON data) for a submission and one determination per item.

    `determinations[i]` answers `submission.items[i]` (None for an item that had no request).
    `created` defaults to now (UTC); `number` assigns authorization numbers; `insurer` is the
    reference used when the Claim names none. The bundle is not validated here (see
    `validate_response`).
    """
    if len(determinations) != len(submission.items):
        raise ValueError("one determination (or None) per submission item")
    codes = code_table()
    created = created or dt.datetime.now(dt.UTC)
    issued = created.date().isoformat()
    bundle = submission.bundle
    claim = bundle.claim
    raw_claim = bundle.claim_entry.raw

    items: list[dict[str, Any]] = []
    notes: list[dict[str, Any]] = []
    approved_numbers: list[str] = []
    for item, determination in zip(submission.items, determinations, strict=True):
        approved = determination is not None and determination.outcome == "approved"
        action = codes.review_actions["approved" if approved else "pended"]
        review: list[dict[str, Any]] = [
            {
                "url": "code",
                "valueCodeableConcept": _concept(
                    codes.x12_review_action, action.code, action.display
                ),
            }
        ]
        # PAS: the item trace numbers the submitter gave come back on the response item.
        extensions: list[dict[str, Any]] = [
            extension
            for extension in _raw_item(raw_claim, item.sequence).get("extension") or ()
            if isinstance(extension, dict)
            and extension.get("url") == codes.extensions["item_trace_number"]
        ]
        if approved and determination is not None and determination.authorization is not None:
            authorization = determination.authorization
            reference = number(determination)
            approved_numbers.append(reference)
            review.insert(0, {"url": "number", "valueString": reference})
            extensions.append(
                {"url": codes.extensions["item_preauth_issue_date"], "valueDate": issued}
            )
            extensions.append(
                {
                    "url": codes.extensions["item_preauth_period"],
                    "valuePeriod": {
                        "start": authorization.valid_from.isoformat(),
                        "end": authorization.valid_through.isoformat(),
                    },
                }
            )
            detail = _authorized_detail(authorization)
            if detail is not None:
                extensions.append(detail)
        numbers: list[int] = []
        for text in item_notes(item, determination):
            number_ = len(notes) + 1
            notes.append({"number": number_, "type": "display", "text": text})
            numbers.append(number_)
        entry: dict[str, Any] = {
            "itemSequence": item.sequence,
            "noteNumber": numbers,
            "adjudication": [
                {
                    "category": _concept(codes.adjudication, "submitted", "Submitted Amount"),
                    "extension": [{"url": codes.extensions["review_action"], "extension": review}],
                }
            ],
        }
        if extensions:
            entry["extension"] = extensions
        items.append(entry)

    claim_response: dict[str, Any] = {
        "resourceType": "ClaimResponse",
        "id": f"{claim.id or 'claim'}-response",
        "extension": [
            {
                "url": codes.extensions["reviewer"],
                "extension": [{"url": "wasHumanReviewedFlag", "valueBoolean": False}],
            }
        ],
        "status": "active",
        "type": raw_claim.get("type")
        or _concept(
            "http://terminology.hl7.org/CodeSystem/claim-type", "professional", "Professional"
        ),
        "use": "preauthorization",
        "patient": raw_claim["patient"],
        "created": created.isoformat(),
        "insurer": raw_claim.get("insurer") or insurer or {"display": "priorauth"},
        "request": {"reference": bundle.claim_entry.key},
        "outcome": "complete",
        "item": items,
    }
    if raw_claim.get("identifier"):
        claim_response["identifier"] = raw_claim["identifier"]
    if raw_claim.get("provider"):
        claim_response["requestor"] = raw_claim["provider"]
    if len(approved_numbers) == 1 and len(items) == 1:
        claim_response["preAuthRef"] = approved_numbers[0]
    if notes:
        claim_response["processNote"] = notes

    entries: list[dict[str, Any]] = [
        {
            "fullUrl": f"urn:priorauth:ClaimResponse/{claim_response['id']}",
            "resource": claim_response,
        }
    ]
    # The request's resources the ClaimResponse points at, so its references resolve here too.
    copied_resources: list[Located] = []
    for field in ("patient", "insurer", "requestor"):
        found = bundle.resolve((claim_response.get(field) or {}).get("reference"))
        if found is None or any(c.key == found.key for c in copied_resources):
            continue
        copied_resources.append(found)
        entries.append({"fullUrl": found.full_url or found.key, "resource": found.raw})

    response: dict[str, Any] = {
        "resourceType": "Bundle",
        "type": "collection",
        "timestamp": created.isoformat(),
        "entry": entries,
    }
    if bundle.identifier is not None:
        response["identifier"] = bundle.identifier
    return response


def validate_response(bundle: Mapping[str, Any]) -> None:
    """Check a response Bundle (or a notification Bundle holding one) with fhir.resources,
    every resource in it included. Raises InvalidResponse naming each element at fault: a
    defect in priorauth, never the caller's input.

    >>> validate_response({"resourceType": "Bundle", "type": "collection"})
    """
    try:
        Bundle.model_validate(bundle)
    except ValidationError as exc:
        problems = problems_from_validation("Bundle", exc)
        raise InvalidResponse("; ".join(str(p) for p in problems)) from exc
