"""One PAS `$submit` exchange as a library call: bundle in, response bundle or
OperationOutcome out. The HTTP endpoint (in the service layer) only wraps this."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from priorauth.adapters.fhir.bundle import Rejected
from priorauth.adapters.fhir.mapping import Submission, default_policies, map_bundle
from priorauth.adapters.fhir.problems import operation_outcome
from priorauth.adapters.fhir.response import authorization_number, build_response
from priorauth.catalog import PolicySet
from priorauth.engine.determination import Determination
from priorauth.errors import InvalidRequest

__all__ = ["PasAnswer", "decide", "submit"]


@dataclass(frozen=True, slots=True)
class PasAnswer:
    """The answer to a submission: an HTTP-like status (200 or 400) and the FHIR body.

    `determinations` holds one per Claim item (None for an item without a request) when the
    bundle could be used; `submission` is the mapped bundle.
    """

    status: int
    body: dict[str, Any]
    submission: Submission | None
    determinations: tuple[Determination | None, ...]


def decide(
    submission: Submission, policies: PolicySet | None = None
) -> tuple[Determination | None, ...]:
    """Evaluate each item's request under the policies (default: the shipped ones)."""
    policy_set = policies or default_policies()
    return tuple(_decide_one(policy_set, item.request) for item in submission.items)


def _decide_one(policies: PolicySet, request: dict[str, Any] | None) -> Determination | None:
    if request is None:
        return None
    try:
        return policies.evaluate(request)
    except InvalidRequest:
        # The mapper checks every request against the contract, so this is not expected;
        # if it happens the item is pended for a person rather than failing the exchange.
        return None


def submit(
    data: object,
    *,
    policies: PolicySet | None = None,
    created: dt.datetime | None = None,
    number: Callable[[Determination], str] = authorization_number,
) -> PasAnswer:
    """Read, map, decide and answer a PAS request bundle (JSON text, bytes or parsed JSON).

    A bundle that breaks a PAS rule, or holds an element that cannot be read (an unknown code
    system or unit, a value the request contract refuses), gets status 400 and an
    OperationOutcome naming each element at fault; anything else gets 200 and the PAS response
    bundle. Never raises for bad input.
    """
    mapped = map_bundle(data, policies)
    if isinstance(mapped, Rejected):
        return PasAnswer(400, operation_outcome(mapped.problems), None, ())
    determinations = decide(mapped, policies)
    body = build_response(mapped, determinations, created=created, number=number)
    return PasAnswer(200, body, mapped, determinations)
