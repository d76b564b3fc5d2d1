"""A policy prepared once for fast, pure evaluation: `CompiledPolicy.evaluate(request, as_of)`."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import orjson

from priorauth._version import __version__
from priorauth.clinical.dates import period_end
from priorauth.engine import explain
from priorauth.engine.criteria import CriterionEvaluator, compile_criteria, unknown_leaves
from priorauth.engine.determination import (
    REASON_ORDER,
    Authorization,
    Conflict,
    CriterionResult,
    Determination,
    DosingResult,
    EngineRef,
    FactResult,
    IndicationResult,
    Missing,
    PolicyRef,
    Reason,
    Status,
)
from priorauth.engine.dosing import DosingEvaluator, dose_key, round_half_up
from priorauth.engine.facts import FactDeriver, ServiceDate, compile_fact
from priorauth.engine.kept import LIMIT, remember
from priorauth.engine.request import Request
from priorauth.engine.safety import SafetyReviewer
from priorauth.policy.model import Approval, Indication, Policy
from priorauth.policy.safety_model import SafetyData

__all__ = [
    "ENGINE",
    "CompiledPolicy",
    "no_policy_determination",
    "policy_hash",
    "request_hash",
    "safety_hash",
]

ENGINE = EngineRef(name="priorauth", version=__version__)
_STATUS: dict[bool | None, Status] = {True: "met", False: "not-met", None: "unknown"}


def safety_hash(data: SafetyData) -> str:
    """A content hash of a policy's safety data, canonical JSON like policy_hash."""
    canonical = json.dumps(data.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


def policy_hash(policy: Policy) -> str:
    """A content hash of the policy's meaning: canonical JSON of the model, so comments and
    formatting in the YAML do not change it."""
    # A policy without safety data hashes as it did before the field existed.
    leave_out = {"safety"} if policy.safety is None else None
    canonical = json.dumps(
        policy.model_dump(mode="json", by_alias=True, exclude=leave_out),
        sort_keys=True,
        separators=(",", ":"),
    )
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


def request_hash(request: Mapping[str, Any] | Request) -> str:
    """A hash of the request as submitted: canonical JSON (keys sorted, no spaces), SHA-256.

    A Request object is hashed in its JSON form with the fields that were set.
    """
    data = (
        request.model_dump(mode="json", by_alias=True, exclude_unset=True)
        if isinstance(request, Request)
        else request
    )
    try:
        canonical = orjson.dumps(data, option=orjson.OPT_SORT_KEYS)
    except TypeError:
        # Values JSON has no type for (a date object in a dict): hash their text form.
        canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str).encode()
    return "sha256:" + hashlib.sha256(canonical).hexdigest()


def service_date(request: Request, as_of: dt.date) -> ServiceDate:
    """The date the policy is applied on: the regimen start, else the received date, else as_of."""
    start = request.regimen.start_date
    if start is not None:
        return _on(start, "regimen.start_date")
    if request.received_at is not None:
        return _on(request.received_at.date(), "received_at")
    return _on(as_of, "as_of")


@lru_cache(maxsize=LIMIT)
def _on(date: dt.date, field: str) -> ServiceDate:
    # Service dates recur (a regimen's start, a received day): one record for each.
    return ServiceDate(date, field)


class CompiledPolicy:
    """One policy, checked and prepared. Evaluation is pure: same request, same answer.

    `safety` is the data file the policy names under `safety:` (catalog.py reads it); without it
    no safety screen runs.
    """

    def __init__(self, policy: Policy, safety: SafetyData | None = None) -> None:
        self.policy = policy
        self.safety = safety
        self.ref = PolicyRef(
            id=policy.id,
            version=policy.version,
            content_hash=policy_hash(policy),
            safety_hash=safety_hash(safety) if safety is not None else None,
        )
        self._safety = SafetyReviewer(safety)
        compiled_facts = {name: compile_fact(name, spec) for name, spec in policy.facts.items()}
        self._facts: list[tuple[str, FactDeriver]] = [
            (name, derive) for name, (derive, _) in compiled_facts.items()
        ]
        self._fields = {name: fields for name, (_, fields) in compiled_facts.items()}
        self._questions = {name: spec.question for name, spec in policy.facts.items()}
        self._questions_by_node: dict[int, tuple[CriterionResult, tuple[Missing, ...]]] = {}
        self._approvals: dict[tuple[object, ...], tuple[Authorization, str]] = {}
        self._indications = [
            (indication, compile_criteria(indication.criteria)) for indication in policy.indications
        ]
        self._indication_results = {
            ind.id: {
                truth: IndicationResult(ind.id, ind.title, status, ind.when)
                for truth, status in _STATUS.items()
            }
            for ind in policy.indications
        }
        self._dosing = DosingEvaluator(policy.dosing)
        self._regimens = {r.id: r for r in policy.dosing.regimens}
        billing = next((d.billing for d in policy.drugs if d.billing is not None), None)
        self._billing = billing

    def evaluate(
        self, request: Request, as_of: dt.date, submitted: Mapping[str, Any] | None = None
    ) -> Determination:
        """Decide one request under this policy, as of a date (used when the request has none).

        `submitted` is the request as it came in (a dict), hashed for the record; without it the
        Request itself is hashed.
        """
        service = service_date(request, as_of)
        facts: dict[str, FactResult] = {}
        found: list[Conflict] = []
        for name, derive in self._facts:
            fact, conflict = derive(request, service)
            facts[name] = fact
            if conflict is not None:
                found.append(conflict)
        conflicts = tuple(found) if found else ()
        missing: list[Missing] = []
        reasons: set[Reason] = set()

        indication, evaluate_criteria = self._pick_indication(facts)
        gate = facts[indication.when].value
        assert gate is None or isinstance(gate, bool), "an indication's fact is true/false"
        criteria: CriterionResult | None = None
        dosing: DosingResult | None = None
        authorization: Authorization | None = None
        bsa_m2: float | None = None
        if gate is False:
            reasons.add("not-covered-indication")
        else:
            if gate is None:
                missing.append(self._question(indication.when, ("indication",)))
            truth, criteria = evaluate_criteria(facts)
            if truth is False:
                reasons.add("criteria-not-met")
            elif truth is None:
                missing.extend(self._criteria_questions(criteria))
            dosing, dose_questions, bsa = self._dosing.evaluate(request)
            bsa_m2 = bsa.value
            missing.extend(dose_questions)
            if dosing.status == "outside":
                reasons.add("dose-exception")
            if missing:
                reasons.add("missing-information")
        # Safety screens: a contraindication or a dose limit holds an otherwise approvable
        # request for a pharmacist; on a request pended for another reason they ride along.
        review = self._safety.review(request, dosing, bsa_m2)
        if review.holds and not reasons:
            reasons.add("safety-review")
        if not reasons and dosing is not None:
            authorization, summary = self._approve(
                request, indication.approval, service.date, dosing, bsa_m2
            )
            ordered: tuple[Reason, ...] = ()
            route = None
        else:
            ordered = tuple(r for r in REASON_ORDER if r in reasons)
            route = self.policy.routing.get(ordered[0], "clinician") if ordered else None
            summary = explain.summary(
                ordered, route, None, criteria, missing, conflicts, review.alerts
            )
        return Determination(
            request_id=request.request_id,
            type=request.type,
            outcome="pended" if ordered else "approved",
            reasons=ordered,
            route=route,
            summary=summary,
            service_date=service.date,
            as_of=as_of,
            indication=self._indication_results[indication.id][gate],
            criteria=criteria,
            facts=facts,
            conflicts=conflicts,
            missing=tuple(missing),
            dosing=dosing,
            authorization=authorization,
            alerts=review.alerts,
            policy=self.ref,
            engine=ENGINE,
            request_hash=request_hash(submitted if submitted is not None else request),
            sources=request.sources,
            screens_not_run=review.not_run,
            label_indication=review.label_indication,
            guideline=review.guideline,
        )

    def _pick_indication(
        self, facts: dict[str, FactResult]
    ) -> tuple[Indication, CriterionEvaluator]:
        """The first indication that applies, else the first that may apply, else the first."""
        for wanted in (True, None):
            for indication, evaluate in self._indications:
                if facts[indication.when].value is wanted:
                    return indication, evaluate
        return self._indications[0]

    def _question(self, fact: str, criteria: tuple[str, ...]) -> Missing:
        return Missing(fact, self._questions[fact], self._fields[fact], criteria)

    def _criteria_questions(self, criteria: CriterionResult) -> tuple[Missing, ...]:
        """The questions for an unknown criteria tree. Tree nodes are shared and recur, so the
        questions are kept by node (the entry holds the node, so its id is not reused)."""
        kept = self._questions_by_node.get(id(criteria))
        if kept is not None:
            return kept[1]
        by_fact: dict[str, list[str]] = {}
        for criterion_id, fact in unknown_leaves(criteria):
            by_fact.setdefault(fact, []).append(criterion_id)
        questions = tuple(self._question(fact, tuple(ids)) for fact, ids in by_fact.items())
        return remember(self._questions_by_node, id(criteria), (criteria, questions))[1]

    def _approve(
        self,
        request: Request,
        approval: Approval,
        start: dt.date,
        dosing: DosingResult,
        bsa: float | None,
    ) -> tuple[Authorization, str]:
        """The authorization and the summary of an approval. Both follow from the request type,
        the service date and the regimen's values (as dosing keeps them), and approvals of a
        standard regimen recur: they are kept by those."""
        key: tuple[object, ...] = (request.type, request.prior_authorization_id, start)
        key += (id(approval), *dose_key(request.regimen, bsa))
        found = self._approvals.get(key)
        if found is not None:
            return found
        continuation = self.policy.continuation
        if request.type == "continuation" and continuation is not None:
            approval = continuation.approval
        through = period_end(start, approval.years, approval.months)
        regimen = request.regimen
        doses = regimen.doses_per_cycle or 0
        days = regimen.cycle_length_days or 1
        cycles = (through - start).days // days + 1
        mg_per_dose: float | None = None
        if regimen.dose_unit == "mg" and regimen.dose is not None:
            mg_per_dose = regimen.dose
        elif regimen.dose is not None and bsa is not None:
            mg_per_dose = round_half_up(regimen.dose * bsa, 1)
        units_per_dose = units = None
        billing = self._billing
        if mg_per_dose is not None and billing is not None:
            # Billing units are whole; a part unit is billed as one (1e-9 absorbs float noise).
            units_per_dose = math.ceil(mg_per_dose / billing.mg_per_unit - 1e-9)
            units = units_per_dose * doses * cycles
        policy_regimen = self._regimens[dosing.regimen or ""]
        authorization = Authorization(
            valid_from=start,
            valid_through=through,
            regimen=policy_regimen.id,
            regimen_text=policy_regimen.text,
            dose_mg_per_m2=dosing.dose_mg_per_m2,
            doses_per_cycle=doses,
            cycle_length_days=days,
            cycles=cycles,
            mg_per_dose=mg_per_dose,
            billing_code=billing.code if billing else None,
            units_per_dose=units_per_dose,
            units=units,
            continues=request.prior_authorization_id if request.type == "continuation" else None,
        )
        summary = explain.summary((), None, authorization, None, [])
        return remember(self._approvals, key, (authorization, summary))


def no_policy_determination(
    request: Request, as_of: dt.date, submitted: Mapping[str, Any] | None = None
) -> Determination:
    """The answer for a drug no loaded policy governs: pended for intake, never an error."""
    service = service_date(request, as_of)
    drug = request.drug.label()
    return Determination(
        request_id=request.request_id,
        type=request.type,
        outcome="pended",
        reasons=("no-policy",),
        route="intake",
        summary=f"Pended for intake: no loaded policy governs drug {drug}",
        service_date=service.date,
        as_of=as_of,
        indication=None,
        criteria=None,
        facts={},
        conflicts=(),
        missing=(),
        dosing=None,
        authorization=None,
        alerts=(),
        policy=None,
        engine=ENGINE,
        request_hash=request_hash(submitted if submitted is not None else request),
        sources=request.sources,
    )
