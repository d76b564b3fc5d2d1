"""A determination as CRD's coverage answer for one order, and the cards a person acts on.

| determination                     | covered | pa-needed   | doc-needed | questionnaire |
|-----------------------------------|---------|-------------|------------|---------------|
| approved (chart meets the policy) | covered | satisfied   |            |               |
| no policy governs the drug        | covered | no-auth     |            |               |
| pended, questions the form asks   | covered | auth-needed | clinical   | yes           |
| pended, the prescriber unknown    | covered | conditional | clinical   | info: performer |
| pended, anything else             | covered | auth-needed | clinical   |               |
| no Coverage in force on the date  | not-covered |         |            |               |

`covered` is `not-covered` (reason `no-active-coverage`, no pa-needed, doc-needed nor
questionnaire: CRD's invariant crd-ci-q2) when the call's Coverages are all cancelled or lapsed
on the service date (`eligibility`); with no Coverage to read it stays `covered`, eligibility
unchecked.

The assertion id is derived from the policy version and the request's hash, so the same chart
asks the same; the audit event of the hook call records it, and a PAS request may cite it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from priorauth.adapters.cds.eligibility import Eligibility
from priorauth.adapters.cds.hooks import CoverageAnswer
from priorauth.engine.compiled import CompiledPolicy
from priorauth.engine.determination import Determination

__all__ = ["OrderAnswer", "assertion_id", "coverage_answer"]

HCPCS_URI = "https://bluebutton.cms.gov/resources/codesystem/hcpcs"


@dataclass(frozen=True, slots=True)
class OrderAnswer:
    """The coverage answer for one order, the questions the DTR form asks (fact names, in the
    policy's order), and what the chart lacks that no form question can settle."""

    coverage: CoverageAnswer
    questions: tuple[str, ...]
    not_askable: tuple[tuple[str, str], ...]
    policy_id: str | None


def assertion_id(determination: Determination) -> str:
    """A stable id for this answer: the policy version, the chart and the day."""
    policy = determination.policy
    basis = "|".join(
        [
            policy.content_hash if policy else "no-policy",
            determination.request_hash,
            determination.as_of.isoformat(),
        ]
    )
    return "crd-" + hashlib.sha256(basis.encode()).hexdigest()[:32]


def coverage_answer(
    determination: Determination,
    compiled: CompiledPolicy | None,
    answerable: dict[str, str],
    today: dt.date,
    coverage: str | None,
    questionnaire_url: Callable[[tuple[str, ...]], str],
    eligibility: Eligibility | None = None,
) -> OrderAnswer:
    """The coverage-information for one order decided under `compiled` (None: no policy).

    `answerable` is the policy's answerable questions (engine.answers.answerable);
    `questionnaire_url` turns the facts the form asks into the questionnaire's canonical;
    `eligibility` is the member's coverage on the service date (None: unknown, not checked)."""
    ident = assertion_id(determination)
    date = today.isoformat()
    policy_id = compiled.policy.id if compiled is not None else None
    if eligibility is not None:
        coverage = eligibility.coverage or coverage
        if not eligibility.in_force:
            # Not covered: no pa-needed (crd-ci-q2), so no doc-needed nor questionnaire either.
            return OrderAnswer(
                CoverageAnswer(
                    covered="not-covered",
                    pa_needed=None,
                    assertion_id=ident,
                    date=date,
                    reason=eligibility.reason,
                    reason_code="no-active-coverage",
                    coverage=coverage,
                ),
                (),
                (),
                policy_id,
            )
    if compiled is None or determination.policy is None:
        return OrderAnswer(
            CoverageAnswer(
                covered="covered",
                pa_needed="no-auth",
                assertion_id=ident,
                date=date,
                reason="No prior authorization policy of the plan governs this drug",
                coverage=coverage,
            ),
            (),
            (),
            None,
        )
    billing = _billing(determination)
    exemption = determination.exemption
    if exemption is not None:
        # A gold card: the prescriber needs no prior authorization for this service now.
        return OrderAnswer(
            CoverageAnswer(
                covered="covered",
                pa_needed="no-auth",
                assertion_id=ident,
                date=date,
                reason=(
                    f"Gold card: the prescriber (NPI {exemption.npi}) is exempt from prior "
                    f"authorization for {exemption.service} through "
                    f"{exemption.effective_through.isoformat()}"
                ),
                reason_code="gold-card",
                billing_code=billing,
                coverage=coverage,
            ),
            (),
            (),
            compiled.policy.id,
        )
    if determination.outcome == "approved":
        authorization = determination.authorization
        return OrderAnswer(
            CoverageAnswer(
                covered="covered",
                pa_needed="satisfied",
                assertion_id=ident,
                date=date,
                reason="The chart meets the policy's criteria and dosing",
                billing_code=billing,
                satisfied_pa_id=ident,
                expiry_date=authorization.valid_through.isoformat() if authorization else None,
                coverage=coverage,
            ),
            (),
            (),
            compiled.policy.id,
        )
    order = list(compiled.policy.facts)
    asked = sorted({m.fact for m in determination.missing if m.fact in answerable}, key=order.index)
    not_askable = tuple(
        (m.fact, m.question) for m in determination.missing if m.fact not in answerable
    )
    facts = compiled.policy.facts
    performer = any(fact in facts and facts[fact].kind == "specialty" for fact, _ in not_askable)
    return OrderAnswer(
        CoverageAnswer(
            covered="covered",
            pa_needed="conditional" if performer else "auth-needed",
            assertion_id=ident,
            date=date,
            doc_needed="clinical",
            info_needed="performer" if performer else None,
            questionnaire=questionnaire_url(tuple(asked)) if asked else None,
            reason=determination.summary[:500],
            billing_code=billing,
            coverage=coverage,
        ),
        tuple(asked),
        not_askable,
        compiled.policy.id,
    )


def _billing(determination: Determination) -> dict[str, Any] | None:
    authorization = determination.authorization
    if authorization is not None and authorization.billing_code:
        return {"system": HCPCS_URI, "code": authorization.billing_code}
    return None
