"""A policy prepared once for pure evaluation: `CompiledPolicy.evaluate(request, as_of)`."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
from collections.abc import Mapping
from typing import Any

import orjson

from priorauth._version import __version__
from priorauth.clinical.dates import period_end
from priorauth.clinical.drugs import Vocabulary
from priorauth.clinical.schedules import dose_days, monthly
from priorauth.engine import explain
from priorauth.engine.answers import answerable, check_answers
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
from priorauth.engine.dosing import DosingEvaluator
from priorauth.engine.facts import CompiledFact, ServiceDate, compile_fact
from priorauth.engine.kleene import Truth
from priorauth.engine.plausibility import confirm_implausible
from priorauth.engine.products import coding_keys, drug_keys
from priorauth.engine.request import Request, Schedule
from priorauth.engine.safety import SafetyReviewer
from priorauth.engine.service_dates import DEFAULT_ROUTE, DEFAULT_RULE, service_date_problem
from priorauth.policy.model import Approval, Billing, Indication, Policy
from priorauth.policy.safety_model import SafetyData

__all__ = [
    "ENGINE",
    "CompiledPolicy",
    "no_policy_determination",
    "policy_hash",
    "request_hash",
    "safety_hash",
    "service_date",
]

ENGINE = EngineRef(name="priorauth", version=__version__)
_STATUS: dict[Truth, Status] = {True: "met", False: "not-met", None: "unknown"}
_PREFERENCE: dict[Truth, int] = {True: 0, None: 1, False: 2}


def _digest(data: Any) -> str:
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


def safety_hash(data: SafetyData) -> str:
    """A content hash of a policy's safety data, canonical JSON like policy_hash."""
    return _digest(data.model_dump(mode="json"))


def policy_hash(policy: Policy) -> str:
    """A content hash of the policy's meaning: canonical JSON of the model, so comments and
    formatting in the YAML do not change it."""
    return _digest(policy.model_dump(mode="json", by_alias=True, exclude_none=True))


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
    """The date the policy is applied on: the service's start, else the received date, else
    as_of."""
    if request.service.start_date is not None:
        return ServiceDate(request.service.start_date, "service.start_date")
    if request.received_at is not None:
        return ServiceDate(request.received_at.date(), "received_at")
    return ServiceDate(as_of, "as_of")


class _CompiledIndication:
    """An indication with its criteria (initial and continued) prepared."""

    def __init__(self, indication: Indication, policy: Policy) -> None:
        self.indication = indication
        self.initial = compile_criteria(indication.criteria)
        continuation = indication.continuation
        fallback = policy.continuation
        self.continued_criteria: CriterionEvaluator = self.initial
        self.continued_approval: Approval = indication.approval
        if continuation is not None:
            self.continued_approval = continuation.approval
            if continuation.criteria is not None:
                self.continued_criteria = compile_criteria(continuation.criteria)
        elif fallback is not None:
            self.continued_approval = fallback.approval
            if fallback.criteria is not None:
                self.continued_criteria = compile_criteria(fallback.criteria)

    def criteria(self, request: Request) -> CriterionEvaluator:
        return self.continued_criteria if request.type == "continuation" else self.initial

    def approval(self, request: Request) -> Approval:
        if request.type == "continuation":
            return self.continued_approval
        return self.indication.approval


class CompiledPolicy:
    """One policy, checked and prepared. Evaluation is pure: same request, same answer.

    `safety` is the data file the policy names under `safety:` (catalog.py reads it); without it
    no label screen runs, but the drug vocabulary (the shipped one unless given) still lists the
    medications it does not know and holds a regimen whose partner it cannot identify.
    """

    def __init__(
        self,
        policy: Policy,
        safety: SafetyData | None = None,
        vocabulary: Vocabulary | None = None,
    ) -> None:
        self.policy = policy
        self.safety = safety
        if vocabulary is None:
            from priorauth.catalog import default_vocabulary

            vocabulary = default_vocabulary()
        self.ref = PolicyRef(
            id=policy.id,
            version=policy.version,
            content_hash=policy_hash(policy),
            safety_hash=safety_hash(safety) if safety is not None else None,
            vocabulary=vocabulary.version,
        )
        self._safety = SafetyReviewer(safety, vocabulary)
        self._service_dates = policy.service_dates or DEFAULT_RULE
        self._answerable = answerable(policy)
        self.facts: dict[str, CompiledFact] = {
            name: compile_fact(name, spec, policy, vocabulary)
            for name, spec in policy.facts.items()
        }
        self._questions = {
            name: Missing(name, fact.question, fact.fields, ()) for name, fact in self.facts.items()
        }
        self._indications = [_CompiledIndication(ind, policy) for ind in policy.indications]
        self._dosing = DosingEvaluator(policy.dosing)
        self._regimens = {r.id: r for r in policy.dosing.regimens}
        # The billed products, each by the keys it is known by (engine.products).
        self._billed = [(drug_keys(d), d.billing) for d in policy.drugs if d.billing is not None]

    def evaluate(
        self, request: Request, as_of: dt.date, submitted: Mapping[str, Any] | None = None
    ) -> Determination:
        """Decide one request under this policy, as of a date (used when the request has none).

        `submitted` is the request as it came in (a dict), hashed for the record; without it the
        Request itself is hashed. Raises InvalidRequest when the request answers a question the
        policy does not ask, or answers one with the wrong kind of value.
        """
        check_answers(self.policy, request, self._answerable)
        service = service_date(request, as_of)
        facts: dict[str, FactResult] = {}
        conflicts: list[Conflict] = []
        for name, fact in self.facts.items():
            result, conflict = fact.derive(request, service)
            facts[name] = result
            if conflict is not None:
                conflicts.append(conflict)
        missing: list[Missing] = []
        reasons: set[Reason] = set()

        chosen, gate, truth, evaluated = self._pick_indication(request, facts)
        indication = chosen.indication
        # The criteria of an indication that does not apply are not shown: met or not, they
        # decide nothing, and "met" beside "not covered" would mislead.
        criteria = None if gate is False else evaluated
        dosing: DosingResult | None = None
        authorization: Authorization | None = None
        if gate is False:
            reasons.add("not-covered-indication")
        else:
            if gate is None:
                missing.append(self._question(indication.when, ("indication",)))
            if truth is False:
                reasons.add("criteria-not-met")
            elif truth is None:
                for question in self._criteria_questions(evaluated):
                    _ask(missing, question)
            dosing, dose_questions = self._dosing.evaluate(
                request, service.date, facts, self._questions, indication.regimens or None
            )
            for question in dose_questions:
                _ask(missing, question)
            if dosing.status == "outside":
                reasons.add("dose-exception")
            if missing:
                reasons.add("missing-information")
                missing = confirm_implausible(missing, request, service.date, facts)
        # Safety screens: a contraindication, a dose limit or a review holds an otherwise
        # approvable request for a pharmacist; on a request pended for another reason they ride
        # along.
        review = self._safety.review(
            request, dosing, dosing.bsa_m2 if dosing else None, service_date=service.date
        )
        if review.holds and not reasons:
            reasons.add("safety-review")
        # A lab a screen would read whose value is implausible (an ANC of 1.8 /mm3): not a fact,
        # a question to the requester, as for the policy's own facts.
        asked = {field for question in missing for field in question.fields}
        for field, why in review.doubted:
            if f"{field}.value" not in asked:
                words = f"{field}.value: {why}; confirm the value and its unit."
                missing.append(Missing("safety", words, (f"{field}.value", f"{field}.unit"), ()))
                reasons.add("missing-information")
        # A retro request, one too far ahead, or one whose period would be past: a person
        # decides, whatever else is found.
        dates = service_date_problem(
            self._service_dates, request, service, as_of, chosen.approval(request)
        )
        if dates is not None:
            reasons.add("service-date")
        ordered = tuple(r for r in REASON_ORDER if r in reasons)
        route = None
        if not ordered and dosing is not None:
            authorization = self._approve(request, chosen.approval(request), service.date, dosing)
            summary = explain.summary((), None, authorization, None, [])
        else:
            route = self._route(ordered[0]) if ordered else None
            summary = explain.summary(
                ordered, route, None, criteria, missing, tuple(conflicts), review.alerts, dates
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
            indication=IndicationResult(
                indication.id, indication.title, _STATUS[gate], indication.when
            ),
            criteria=criteria,
            facts=facts,
            conflicts=tuple(conflicts),
            missing=tuple(missing),
            dosing=dosing,
            authorization=authorization,
            alerts=review.alerts,
            policy=self.ref,
            engine=ENGINE,
            request_hash=request_hash(submitted if submitted is not None else request),
            sources=dict(request.sources),
            screens_not_run=review.not_run,
            label_indication=review.label_indication,
            guideline=review.guideline,
            unrecognized=review.unrecognized,
        )

    def _route(self, reason: Reason) -> str:
        """The queue a request pended for `reason` goes to: the policy's routing, else intake
        for a service-date question, else a clinician."""
        default = DEFAULT_ROUTE if reason == "service-date" else "clinician"
        return self.policy.routing.get(reason, default)

    def _pick_indication(
        self, request: Request, facts: Mapping[str, FactResult]
    ) -> tuple[_CompiledIndication, Truth, Truth, CriterionResult]:
        """The indication to judge the request under: of those that apply, the one whose
        criteria are met, else unknown, else not met; else the first that may apply; else the
        first (not covered)."""
        best: tuple[tuple[int, int, int], _CompiledIndication, Truth, Truth, CriterionResult]
        best = None  # type: ignore[assignment]
        for order, compiled in enumerate(self._indications):
            value = facts[compiled.indication.when].value
            gate: Truth = value if isinstance(value, bool) else None
            truth, node = compiled.criteria(request)(facts)
            # Among indications that apply, the criteria's outcome decides; otherwise the order.
            rank = (_PREFERENCE[gate], _PREFERENCE[truth] if gate is True else 0, order)
            if best is None or rank < best[0]:
                best = (rank, compiled, gate, truth, node)
        return best[1], best[2], best[3], best[4]

    def _question(self, fact: str, criteria: tuple[str, ...]) -> Missing:
        found = self._questions[fact]
        return Missing(found.fact, found.question, found.fields, criteria)

    def _criteria_questions(self, criteria: CriterionResult) -> list[Missing]:
        """The questions for an unknown criteria tree, one per fact, naming its criteria."""
        by_fact: dict[str, list[str]] = {}
        for criterion_id, fact in unknown_leaves(criteria):
            by_fact.setdefault(fact, []).append(criterion_id)
        return [self._question(fact, tuple(ids)) for fact, ids in by_fact.items()]

    def units_per_dose(self, mg: float, billing: Billing) -> int:
        """The billing units of one dose of `mg`, rounded as the policy says."""
        exact = mg / billing.mg_per_unit
        rounding = self.policy.dosing.billing_rounding
        # 1e-9 absorbs float noise (0.7 / 0.1 is 6.999...).
        if rounding == "up":
            return math.ceil(exact - 1e-9)
        if rounding == "down":
            return math.floor(exact + 1e-9)
        return math.floor(exact + 0.5 + 1e-9)

    def billing(self, request: Request) -> Billing | None:
        """How the requested product is billed: the policy drug its codes name (else the
        first drug billed), when the policy says."""
        for coding in request.service.codes:
            keys = coding_keys(coding)
            for drug, billing in self._billed:
                if keys & drug:
                    return billing
        return self._billed[0][1] if self._billed else None

    def _approve(
        self, request: Request, approval: Approval, start: dt.date, dosing: DosingResult
    ) -> Authorization:
        """What an approval authorizes: the period, the regimen, the dose and billing units."""
        through = period_end(start, approval.years, approval.months, approval.days)
        regimen = self._regimens[dosing.regimen or ""]
        check = next(c for c in dosing.checks if c.id == regimen.id)
        schedule = request.service.schedule
        doses = _doses_in(schedule, start, through) if schedule else None
        billing = self.billing(request)
        units_per_dose = units = None
        mg = dosing.mg_per_dose
        if mg is not None and billing is not None:
            units_per_dose = self.units_per_dose(mg, billing)
            units = units_per_dose * doses if doses is not None else None
        return Authorization(
            valid_from=start,
            valid_through=through,
            regimen=regimen.id,
            regimen_text=regimen.text,
            dose=check.dose,
            dose_unit=check.dose_unit,
            doses=doses,
            mg_per_dose=mg,
            billing_code=billing.code if billing else None,
            units_per_dose=units_per_dose,
            units=units,
            continues=request.prior_authorization_id if request.type == "continuation" else None,
        )


def _ask(missing: list[Missing], question: Missing) -> None:
    """Add a question, or, when its fact is asked already, the criteria it is asked for."""
    for i, asked in enumerate(missing):
        if asked.fact == question.fact:
            criteria = asked.criteria + tuple(
                c for c in question.criteria if c not in asked.criteria
            )
            missing[i] = Missing(asked.fact, asked.question, asked.fields, criteria)
            return
    missing.append(question)


def _doses_in(schedule: Schedule, start: dt.date, through: dt.date) -> int | None:
    """How many doses a schedule gives from the first dose on `start` through `through`."""
    days = (through - start).days + 1
    if schedule.interval_months is not None:
        # Calendar months from the last induction dose (or the first dose).
        induction = schedule.induction_days or (0,)
        last = start + dt.timedelta(days=induction[-1] - induction[0])
        earlier = sum(1 for d in induction[:-1] if d - induction[0] < days)
        return earlier + len(monthly(last, schedule.interval_months, through))
    if schedule.cycle_length_days is not None and schedule.doses_in_cycle is not None:
        if schedule.cycle_days is not None:
            return len(
                dose_days(
                    cycle_length=schedule.cycle_length_days,
                    cycle_days=schedule.cycle_days,
                    horizon=days,
                )
            )
        cycles = (days - 1) // schedule.cycle_length_days + 1
        return schedule.doses_in_cycle * cycles
    if schedule.interval_days is not None or schedule.induction_days is not None:
        return len(
            dose_days(
                induction_days=schedule.induction_days,
                interval=schedule.interval_days,
                horizon=days,
            )
        )
    return None


def no_policy_determination(
    request: Request, as_of: dt.date, submitted: Mapping[str, Any] | None = None
) -> Determination:
    """The answer for a service no loaded policy governs: pended for intake, never an error."""
    service = service_date(request, as_of)
    return Determination(
        request_id=request.request_id,
        type=request.type,
        outcome="pended",
        reasons=("no-policy",),
        route="intake",
        summary=f"Pended for intake: no loaded policy governs {request.service.label()}",
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
        sources=dict(request.sources),
    )
