"""A person's decision laid over a PAS response bundle: A3 not certified (with the reason in
processNote), A6 modified, A1 certified, the authorization period and number, and the reviewer
extension (wasHumanReviewedFlag true, reviewer NPI and specialty). A cancelled request is
answered with ClaimResponse.status `cancelled`.

The engine's response (`build_response`) only ever says A1 or A4; this is the one place that
writes A3 and A6, and it writes them only from a reviewer's recorded decision.
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from priorauth.adapters.fhir.codes import code_table

__all__ = ["ItemReview", "apply_reviews"]

ReviewOutcome = Literal["approved", "modified", "denied", "pended", "cancelled"]


@dataclass(frozen=True, slots=True)
class ItemReview:
    """What a person decided on one Claim item (by its position in the Claim).

    `outcome` approved / modified / denied / pended (information requested, or appealed) /
    cancelled; `number` and `period` for an authorization; `reason` in words (required for a
    denial or a modification); the reviewer's NPI and specialty when a person decided.
    """

    outcome: ReviewOutcome
    reason: str | None = None
    number: str | None = None
    period: tuple[dt.date, dt.date] | None = None
    reviewer_npi: str | None = None
    reviewer_specialty: str | None = None


def _concept(system: str, code: str, display: str) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code, "display": display}]}


def apply_reviews(
    response: dict[str, Any], reviews: Sequence[ItemReview | None], *, issued: dt.date
) -> dict[str, Any]:
    """A copy of `response` with each reviewed item's answer replaced; `reviews[i]` answers
    the i-th ClaimResponse item (None: the engine's answer stands)."""
    if not any(reviews):
        return response
    codes = code_table()
    bundle = copy.deepcopy(response)
    claim_response: dict[str, Any] = bundle["entry"][0]["resource"]
    items: list[dict[str, Any]] = claim_response["item"]
    if len(reviews) != len(items):
        raise ValueError("one review (or None) per ClaimResponse item")
    notes: list[dict[str, Any]] = claim_response.setdefault("processNote", [])
    period_urls = {
        codes.extensions["item_preauth_period"],
        codes.extensions["item_preauth_issue_date"],
    }
    numbers: list[str] = []
    reviewer: ItemReview | None = None
    cancelled = 0
    for item, review in zip(items, reviews, strict=True):
        if review is None:
            continue
        if review.reviewer_npi:
            reviewer = review
        if review.outcome == "cancelled":
            cancelled += 1
        label = f"Item {item['itemSequence']}"
        outcome = {"cancelled": "pended"}.get(review.outcome, review.outcome)
        action = codes.review_actions["denied" if outcome == "denied" else outcome]
        review_extension: list[dict[str, Any]] = [
            {
                "url": "code",
                "valueCodeableConcept": _concept(
                    codes.x12_review_action, action.code, action.display
                ),
            }
        ]
        extensions = [e for e in item.get("extension", ()) if e.get("url") not in period_urls]
        if review.outcome in ("approved", "modified") and review.number and review.period:
            numbers.append(review.number)
            review_extension.insert(0, {"url": "number", "valueString": review.number})
            extensions.append(
                {
                    "url": codes.extensions["item_preauth_issue_date"],
                    "valueDate": issued.isoformat(),
                }
            )
            extensions.append(
                {
                    "url": codes.extensions["item_preauth_period"],
                    "valuePeriod": {
                        "start": review.period[0].isoformat(),
                        "end": review.period[1].isoformat(),
                    },
                }
            )
        if extensions:
            item["extension"] = extensions
        else:
            item.pop("extension", None)
        item["adjudication"][0]["extension"] = [
            {"url": codes.extensions["review_action"], "extension": review_extension}
        ]
        text = {
            "approved": f"{label}: certified after review.",
            "modified": f"{label}: certified as modified after review: {review.reason}.",
            "denied": f"{label}: not certified after review: {review.reason}.",
            "pended": f"{label}: still pended: {review.reason or 'under review'}.",
            "cancelled": f"{label}: cancelled at the submitter's request.",
        }[review.outcome]
        number = len(notes) + 1
        notes.append({"number": number, "type": "display", "text": text})
        item["noteNumber"] = [*item.get("noteNumber", ()), number]
    claim_response.pop("preAuthRef", None)
    if len(items) == 1 and len(numbers) == 1:
        claim_response["preAuthRef"] = numbers[0]
    if cancelled == len(items):
        claim_response["status"] = "cancelled"
    if reviewer is not None:
        reviewed: list[dict[str, Any]] = [{"url": "wasHumanReviewedFlag", "valueBoolean": True}]
        if reviewer.reviewer_npi:
            reviewed.append(
                {
                    "url": "reviewerNPI",
                    "valueIdentifier": {
                        "system": codes.npi,
                        "value": reviewer.reviewer_npi,
                    },
                }
            )
        if reviewer.reviewer_specialty:
            reviewed.append(
                {
                    "url": "reviewerSpecialty",
                    "valueCodeableConcept": {"text": reviewer.reviewer_specialty},
                }
            )
        claim_response["extension"] = [
            e
            for e in claim_response.get("extension", ())
            if e.get("url") != codes.extensions["reviewer"]
        ] + [{"url": codes.extensions["reviewer"], "extension": reviewed}]
    return bundle
