"""A reviewer's decision on a pended case, and the reviewer's other moves: claim, assign,
release, notes, requests for information (with the clock stopped where the rules say), referral
to a medical director.

Every change of a case's status goes through the state machine (service.casestate). A denial
gives a reason code from the review rules' table (criterion not met, not a covered indication,
dose outside the policy, safety, information not received, no policy) and the reviewer's own
words; it is made by a medical director, or by a pharmacist where the rules allow.

A reviewer's approval authorizes what the engine's would: the policy's approval period for the
indication (initial or continued), the regimen, the number of doses and the billing units.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError
from sqlalchemy import select

from priorauth.adapters.store import (
    AppealRow,
    CaseRow,
    DeterminationRow,
    InformationRequestRow,
    NoteRow,
    ReviewRow,
    UserRow,
)
from priorauth.clinical.dates import period_end
from priorauth.engine.compiled import _doses_in
from priorauth.engine.determination import CriterionResult, Determination
from priorauth.engine.request import Schedule, parse_request
from priorauth.errors import FieldProblem, InvalidRequest
from priorauth.policy.model import Approval
from priorauth.service.audit import append_event
from priorauth.service.casestate import IllegalMove, ReviewRules, allowed, next_state, review_rules
from priorauth.service.errors import Conflict, Forbidden, Invalid, NotFound
from priorauth.service.people import Actor
from priorauth.service.uow import UnitOfWork

if TYPE_CHECKING:
    from priorauth.service.workflow import Decision, PriorAuthService

__all__ = [
    "ReviewedPeriod",
    "check_denial",
    "decide",
    "effective_due",
    "information_arrived",
    "latest_determination",
    "open_information_request",
    "reviewed_authorization",
]

# A reviewer approving a request no policy governs: the period, as the plan sets it.
_NO_POLICY_PERIOD = Approval(years=1)


def _canonical(data: Any) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def _criteria(node: CriterionResult | None) -> dict[str, CriterionResult]:
    found: dict[str, CriterionResult] = {}
    stack = [node] if node is not None else []
    while stack:
        item = stack.pop()
        found[item.id] = item
        stack.extend(item.children)
    return found


def latest_determination(uow: UnitOfWork, case: CaseRow) -> Determination:
    row = uow.session.scalar(
        select(DeterminationRow)
        .where(DeterminationRow.case_pk == case.id)
        .order_by(DeterminationRow.id.desc())
        .limit(1)
    )
    if row is None:  # every case has one; a hand-made row without one is not decidable
        raise Conflict("the request has no determination")
    return Determination.model_validate(json.loads(row.determination_json))


def open_information_request(uow: UnitOfWork, case: CaseRow) -> InformationRequestRow | None:
    """The latest request for information still waiting for its answer."""
    return uow.session.scalar(
        select(InformationRequestRow)
        .where(
            InformationRequestRow.case_pk == case.id,
            InformationRequestRow.answered_at.is_(None),
        )
        .order_by(InformationRequestRow.id.desc())
        .limit(1)
    )


def effective_due(
    due_at: dt.datetime,
    stopped_at: dt.datetime | None,
    information_due: dt.datetime | None,
    now: dt.datetime,
) -> tuple[dt.datetime, bool]:
    """(when the decision is due, whether the clock is stopped now). A stopped clock restarts
    when the information's due date passes, with the time that was left when it stopped."""
    if stopped_at is None or information_due is None:
        return due_at, False
    restart = max(information_due, stopped_at)
    return due_at + (restart - stopped_at), now < restart


def information_due_by_case(uow: UnitOfWork, case_pks: list[int]) -> dict[int, dt.datetime]:
    """The latest due date of each case's unanswered requests for information (cases with
    none are left out): what `effective_due` needs to tell a stopped clock."""
    waiting: dict[int, dt.datetime] = {}
    for info in uow.session.scalars(
        select(InformationRequestRow).where(
            InformationRequestRow.case_pk.in_(case_pks),
            InformationRequestRow.answered_at.is_(None),
        )
    ):
        waiting[info.case_pk] = max(waiting.get(info.case_pk, info.due_at), info.due_at)
    return waiting


def information_arrived(uow: UnitOfWork, case: CaseRow, now: dt.datetime) -> None:
    """The provider answered: outstanding requests for information are answered, and a stopped
    clock restarts with the time that was left (stopped no longer than until the due date)."""
    waiting = list(
        uow.session.scalars(
            select(InformationRequestRow).where(
                InformationRequestRow.case_pk == case.id,
                InformationRequestRow.answered_at.is_(None),
            )
        )
    )
    for request in waiting:
        request.answered_at = now
    if case.clock_stopped_at is not None:
        latest_due = max((r.due_at for r in waiting), default=now)
        restart = max(min(now, latest_due), case.clock_stopped_at)
        case.due_at = case.due_at + (restart - case.clock_stopped_at)
        case.clock_stopped_at = None


# ------------------------------------------------------------------------ authorizations


@dataclass(frozen=True)
class ReviewedPeriod:
    valid_from: dt.date
    valid_through: dt.date
    regimen: dict[str, Any]


def _approval_for(service: PriorAuthService, determination: Determination) -> Approval:
    """The approval period the policy gives the indication the request was judged under."""
    compiled = service.policies.get(determination.policy.id) if determination.policy else None
    if compiled is None:
        return _NO_POLICY_PERIOD
    policy = compiled.policy
    indication = next(
        (
            i
            for i in policy.indications
            if determination.indication is not None and i.id == determination.indication.id
        ),
        policy.indications[0] if policy.indications else None,
    )
    if indication is None:
        return _NO_POLICY_PERIOD
    if determination.type == "continuation":
        if indication.continuation is not None:
            return indication.continuation.approval
        if policy.continuation is not None:
            return policy.continuation.approval
    return indication.approval


def _mg_per_dose(dose: Mapping[str, Any], determination: Determination) -> float | None:
    """A modified regimen's dose in mg, from the body measures the engine used."""
    value, unit = dose.get("value"), dose.get("unit")
    if not isinstance(value, int | float):
        return None
    dosing = determination.dosing
    if unit == "mg":
        return float(value)
    if unit == "mg/m2" and dosing is not None and dosing.bsa_m2 is not None:
        return round(float(value) * dosing.bsa_m2, 2)
    if unit == "mg/kg" and dosing is not None and dosing.weight_kg is not None:
        return round(float(value) * dosing.weight_kg, 2)
    return None


def reviewed_authorization(
    service: PriorAuthService,
    case: CaseRow,
    determination: Determination,
    modified: dict[str, Any] | None,
) -> ReviewedPeriod:
    """What a reviewer's approval authorizes: the policy's period from the service date, the
    regimen (as requested, or the modified one), the doses in the period and the billing units
    (the policy's billing code and rounding), like an automatic approval's."""
    start = determination.service_date
    approval = _approval_for(service, determination)
    through = period_end(start, approval.years, approval.months, approval.days)
    compiled = service.policies.get(determination.policy.id) if determination.policy else None
    stored = json.loads(case.request_json)
    service_part = stored.get("service") or {}
    regimen: dict[str, Any]
    schedule_data: Any
    if modified is not None:
        regimen = dict(modified)
        schedule_data = modified.get("schedule")
        mg = _mg_per_dose(modified.get("dose") or {}, determination)
    else:
        requested = {
            key: service_part[key]
            for key in ("dose", "schedule", "route", "start_date", "with")
            if key in service_part
        }
        regimen = {"as_requested": requested}
        schedule_data = service_part.get("schedule")
        mg = determination.dosing.mg_per_dose if determination.dosing else None
        if determination.dosing is not None and determination.dosing.regimen is not None:
            regimen["regimen"] = determination.dosing.regimen
    regimen["mg_per_dose"] = mg
    doses: int | None = None
    if isinstance(schedule_data, Mapping):
        try:
            doses = _doses_in(Schedule.model_validate(dict(schedule_data)), start, through)
        except (ValidationError, ValueError):
            doses = None
    limit = modified.get("doses") if modified else None
    if isinstance(limit, int):
        doses = limit if doses is None else min(doses, limit)
    regimen["doses"] = doses
    billing = None
    if compiled is not None:
        try:
            billing = compiled.billing(parse_request(stored))
        except InvalidRequest:
            billing = None
    units_per_dose = units = None
    if billing is not None and mg is not None and compiled is not None:
        units_per_dose = compiled.units_per_dose(mg, billing)
        units = units_per_dose * doses if doses is not None else None
    regimen["billing_code"] = billing.code if billing else None
    regimen["units_per_dose"] = units_per_dose
    regimen["units"] = units
    return ReviewedPeriod(start, through, regimen)


# ------------------------------------------------------------------------ checks


def check_denial(
    rules: ReviewRules,
    determination: Determination,
    decision: Decision,
    waiting: InformationRequestRow | None,
    decision_due: dt.datetime | None,
    now: dt.datetime,
) -> tuple[str | None, list[FieldProblem]]:
    """The denial's reason code, or the problems with it. `decision_due`: when the case's
    decision is due while its clock runs (None while the clock is stopped for information).

    Information not received: once the date it was due has passed, or at once when the clock
    runs and that date falls after the decision is due (the plan cannot wait for it)."""
    problems: list[FieldProblem] = []
    code = decision.reason_code
    if code is None:
        if decision.criterion and not decision.dose_rule:
            code = "criterion-not-met"
        elif decision.dose_rule and not decision.criterion:
            code = "dose-outside-policy"
        else:
            codes = ", ".join(rules.reasons)
            problems.append(
                FieldProblem(
                    "criterion",
                    "a denial gives its reason_code (one of "
                    f"{codes}), or names the unmet criterion or (as dose_rule) the dose rule",
                )
            )
            return None, problems
    rule = rules.reasons.get(code)
    if rule is None:
        problems.append(FieldProblem("reason_code", f"one of {', '.join(rules.reasons)}"))
        return None, problems
    if rule.needs == "unanswered-information-request":
        if waiting is None:
            problems.append(
                FieldProblem("reason_code", "no request for information is waiting for an answer")
            )
        elif now < waiting.due_at and (decision_due is None or waiting.due_at < decision_due):
            problems.append(
                FieldProblem(
                    "reason_code",
                    f"the information is due {waiting.due_at.isoformat()}; wait until then",
                )
            )
    elif not rule.fits & set(determination.reasons) and not (
        code == "safety" and determination.alerts
    ):
        pended = ", ".join(determination.reasons) or "none"
        problems.append(
            FieldProblem("reason_code", f"{code} does not fit this case (pended for: {pended})")
        )
    criteria = _criteria(determination.criteria)
    checks = {c.id: c for c in determination.dosing.checks} if determination.dosing else {}
    if rule.names == "criterion" and not decision.criterion:
        problems.append(FieldProblem("criterion", f"a {code} denial names the unmet criterion"))
    if rule.names == "dose_rule" and not decision.dose_rule:
        problems.append(FieldProblem("dose_rule", f"a {code} denial names the dose rule"))
    if decision.criterion:
        found = criteria.get(decision.criterion)
        if found is None:
            known = ", ".join(sorted(criteria)) or "none in this determination"
            problems.append(FieldProblem("criterion", f"not a criterion of the policy ({known})"))
        elif found.status == "met":
            problems.append(FieldProblem("criterion", "this criterion is met"))
    if decision.dose_rule:
        check = checks.get(decision.dose_rule)
        if check is None:
            known = ", ".join(sorted(checks)) or "none in this determination"
            problems.append(FieldProblem("dose_rule", f"not a dose rule checked ({known})"))
        elif check.status == "met":
            problems.append(FieldProblem("dose_rule", "this dose rule is met"))
    return code, problems


def _information_due(
    rules: ReviewRules, case: CaseRow, decision: Decision, now: dt.datetime
) -> tuple[dt.datetime | None, list[FieldProblem]]:
    due = decision.information_due
    if due is None:
        days = dt.timedelta(days=rules.information_due_days.get(case.urgency, 14))
        if rules.clock_stops_for(case.line_of_business) or case.due_at <= now:
            return now + days, []
        # The clock keeps running: half the time left, so the answer can still be weighed.
        return now + min(days, (case.due_at - now) / 2), []
    if due.tzinfo is None:
        due = due.replace(tzinfo=dt.UTC)
    if due <= now:
        return None, [FieldProblem("information_due", "must be in the future")]
    if due > now + dt.timedelta(days=rules.information_due_max_days):
        return None, [
            FieldProblem(
                "information_due",
                f"at most {rules.information_due_max_days} days from now",
            )
        ]
    return due, []


def _questions(decision: Decision) -> list[str]:
    asked = [q.strip() for q in decision.questions or () if q and q.strip()]
    if not asked and decision.reason and decision.reason.strip():
        asked = [decision.reason.strip()]
    return asked


# ------------------------------------------------------------------------ decide


def decide(
    service: PriorAuthService, actor: Actor, case_id: str, decision: Decision
) -> dict[str, Any]:
    """A pharmacist's or medical director's decision on an open case: approve, approve with a
    modified regimen, deny (with a reason code), request information, refer to a medical
    director."""
    from priorauth.service.notices import write_notices
    from priorauth.service.workflow import _modified_regimen

    if not actor.is_reviewer:
        raise Forbidden("only a pharmacist or a medical director decides")
    rules = review_rules()
    with UnitOfWork(service.database) as uow:
        uow.lock_writes()
        case = service._visible_case(uow, actor, case_id)
        try:
            after = next_state(case.status, decision.action)
        except IllegalMove as exc:
            raise Conflict(f"the request is {case.status}; there is nothing to decide") from exc
        determination = latest_determination(uow, case)
        appeal = None
        if case.status == "appealed":
            appeal = uow.session.scalar(
                select(AppealRow)
                .where(AppealRow.case_pk == case.id, AppealRow.outcome.is_(None))
                .order_by(AppealRow.id.desc())
                .limit(1)
            )
            if actor.role != "medical-director":
                raise Forbidden("an appeal is decided by a medical director")
            if appeal is not None and appeal.excluded_reviewer_id == actor.user_id:
                raise Forbidden(
                    "an appeal goes to a medical director other than the one who decided"
                )
            if decision.action in ("request-info", "refer"):
                raise Invalid([FieldProblem("action", "an appeal is approved or denied")])
        may = allowed(rules, case.status, actor.role, case.queue, case.appealed)
        if decision.action not in may:
            if decision.action == "deny":
                raise Forbidden(f"a case in the {case.queue} queue is denied by a medical director")
            if decision.action == "refer":
                raise Conflict("the request is with a medical director already")
            raise Forbidden(f"a case in the {case.queue} queue is decided by a medical director")
        now = service.clock()
        waiting = open_information_request(uow, case)
        problems: list[FieldProblem] = []
        worded = bool(decision.reason and decision.reason.strip())
        if decision.action == "request-info":
            worded = worded or bool(_questions(decision))
        if decision.action != "approve" and not worded:
            problems.append(FieldProblem("reason", f"a {decision.action} decision needs a reason"))
        reason_code = None
        if decision.action == "deny":
            running = None if case.clock_stopped_at is not None else case.due_at
            reason_code, wrong = check_denial(rules, determination, decision, waiting, running, now)
            problems.extend(wrong)
        elif decision.reason_code is not None:
            problems.append(FieldProblem("reason_code", "only a denial gives a reason code"))
        regimen = None
        if decision.action == "approve-modified":
            regimen, wrong = _modified_regimen(decision.regimen)
            problems.extend(wrong)
        elif decision.regimen is not None:
            problems.append(
                FieldProblem("regimen", "only a modified approval (approve-modified) gives one")
            )
        questions: list[str] = []
        information_due = None
        if decision.action == "request-info":
            questions = _questions(decision)
            if not questions:
                problems.append(FieldProblem("questions", "ask at least one question"))
            information_due, wrong = _information_due(rules, case, decision, now)
            problems.extend(wrong)
        if problems:
            raise Invalid(problems)
        review = ReviewRow(
            case_pk=case.id,
            reviewer_id=actor.user_id,
            action=decision.action,
            # A request for information given as questions only: they are its words.
            reason=decision.reason or ("; ".join(questions) if questions else None),
            criterion=decision.criterion,
            dose_rule=decision.dose_rule,
            reason_code=reason_code,
            reviewer_npi=actor.npi,
            reviewer_specialty=actor.specialty,
            regimen_json=_canonical(regimen) if regimen is not None else None,
            on_appeal=appeal is not None or case.status == "appealed",
            created_at=now,
        )
        uow.session.add(review)
        detail: dict[str, Any] = {
            "action": decision.action,
            "criterion": decision.criterion,
            "dose_rule": decision.dose_rule,
            "reason_code": reason_code,
            "on_appeal": appeal is not None,
            "reviewer_npi": actor.npi,
        }
        if decision.action in ("approve", "approve-modified"):
            period = reviewed_authorization(service, case, determination, regimen)
            source = "appeal" if case.status == "appealed" else "reviewer"
            service._authorize(
                uow, case, period.valid_from, period.valid_through, period.regimen, source, now
            )
        if decision.action == "request-info":
            assert information_due is not None
            stops = rules.clock_stops_for(case.line_of_business)
            if stops and case.clock_stopped_at is None:
                case.clock_stopped_at = now
            uow.session.add(
                InformationRequestRow(
                    case_pk=case.id,
                    requested_by=actor.user_id,
                    questions_json=_canonical(questions),
                    due_at=information_due,
                    clock_stopped=case.clock_stopped_at is not None,
                    created_at=now,
                )
            )
            detail["questions"] = len(questions)
            detail["information_due"] = information_due.isoformat()
            detail["clock_stopped"] = case.clock_stopped_at is not None
        if decision.action == "refer":
            case.queue = "medical-director"
            case.assigned_to = None
            detail["queue"] = "medical-director"
        if after not in ("pended", "information-requested"):
            # Decided: the clock stops for good.
            if case.clock_stopped_at is not None:
                due, _ = effective_due(
                    case.due_at, case.clock_stopped_at, waiting.due_at if waiting else None, now
                )
                case.due_at = due
                case.clock_stopped_at = None
            case.queue = None
            if case.decided_at is None:
                case.decided_at = now
                case.decided_by = "reviewer"
        if appeal is not None:
            appeal.outcome = after
            appeal.decided_at = now
        case.status = after
        case.updated_at = now
        append_event(uow, actor.name, "request.decided", case.case_id, detail, now)
        if decision.action in ("approve", "approve-modified", "deny"):
            uow.session.flush()
            write_notices(service, uow, case, review, actor, determination, now)
        for hook in service.decision_hooks:
            hook(service, uow, case, now)
        view = service._case_view(uow, case, full=False)
        uow.commit()
    return view


# ------------------------------------------------------------------------ claim, notes


def _reviewer(actor: Actor) -> None:
    if not (actor.is_reviewer or actor.role == "admin"):
        raise Forbidden("the review workbench is for pharmacists, medical directors and admins")


def claim(service: PriorAuthService, actor: Actor, case_id: str) -> None:
    """Take an open case to work on (a case someone else holds is a Conflict)."""
    _move(service, actor, case_id, "claim", actor.name)


def release(service: PriorAuthService, actor: Actor, case_id: str) -> None:
    """Give a case back to its queue."""
    _move(service, actor, case_id, "release", None)


def assign(service: PriorAuthService, actor: Actor, case_id: str, to: str) -> None:
    """An admin gives a case to a reviewer who may decide it."""
    _move(service, actor, case_id, "assign", to)


def _move(service: PriorAuthService, actor: Actor, case_id: str, move: str, to: str | None) -> None:
    _reviewer(actor)
    rules = review_rules()
    with UnitOfWork(service.database) as uow:
        uow.lock_writes()
        case = service._visible_case(uow, actor, case_id)
        try:
            next_state(case.status, move)
        except IllegalMove as exc:
            raise Conflict(str(exc)) from exc
        if move not in allowed(rules, case.status, actor.role, case.queue, case.appealed):
            raise Forbidden(f"a {actor.role} may not {move} this case")
        target: int | None = None
        if to is not None:
            user = uow.session.scalar(select(UserRow).where(UserRow.name == to))
            if user is None or not user.active:
                raise NotFound(f"no active account named {to!r}")
            if user.role not in rules.deciders(case.queue) and case.status != "appealed":
                raise Invalid([FieldProblem("to", f"a {user.role} does not decide this queue")])
            if case.status == "appealed" and user.role != "medical-director":
                raise Invalid([FieldProblem("to", "an appeal goes to a medical director")])
            target = user.id
        if move == "claim" and case.assigned_to not in (None, actor.user_id):
            raise Conflict("another reviewer holds this case; ask them or an admin")
        if move == "release" and actor.role != "admin" and case.assigned_to != actor.user_id:
            raise Conflict("you do not hold this case")
        now = service.clock()
        case.assigned_to = target
        case.updated_at = now
        action = {"claim": "request.claimed", "release": "request.released"}.get(
            move, "request.assigned"
        )
        append_event(uow, actor.name, action, case.case_id, {"to": to}, now)
        uow.commit()


def add_note(service: PriorAuthService, actor: Actor, case_id: str, text: str) -> None:
    _reviewer(actor)
    text = text.strip()
    if not text:
        raise Invalid([FieldProblem("text", "a note needs words")])
    if len(text) > 4000:
        raise Invalid([FieldProblem("text", "at most 4000 characters")])
    with UnitOfWork(service.database) as uow:
        uow.lock_writes()
        case = service._visible_case(uow, actor, case_id)
        now = service.clock()
        uow.session.add(
            NoteRow(case_pk=case.id, author_id=actor.user_id, text=text, created_at=now)
        )
        append_event(uow, actor.name, "request.noted", case.case_id, {}, now)
        uow.commit()
