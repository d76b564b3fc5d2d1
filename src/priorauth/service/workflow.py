"""The use cases of the prior-authorization workflow, each in its own unit of work.

submit -> (approved at once | pended to a queue with a clock) -> a reviewer decides (approve,
approve with a modified regimen, deny with a specific reason, request information) -> the
submitter may add information (re-evaluated at once) or appeal a denial to another medical
director. Every state change and every read of a case by a person is an audit event.

The software approves or pends; only a pharmacist's or medical director's decision denies.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, cast

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlalchemy import Table, bindparam, func, insert, select
from sqlalchemy.exc import IntegrityError

from priorauth.adapters.store import (
    AppealRow,
    AuditEventRow,
    AuthorizationRow,
    CaseRow,
    Database,
    DeterminationRow,
    PolicyVersionRow,
    ReviewRow,
    SafetyVersionRow,
    UserRow,
    execute,
    insert_row,
)
from priorauth.catalog import PolicySet, default_policy_dir
from priorauth.engine.compiled import policy_hash, safety_hash
from priorauth.engine.determination import Authorization, Determination
from priorauth.engine.goldcard import ExemptionList, recorded_exemption
from priorauth.engine.request import Dose, Request, Schedule, parse_request
from priorauth.errors import FieldProblem, InvalidRequest, PolicyError, PolicyIssue
from priorauth.policy.loader import load_policy_text
from priorauth.policy.model import Policy
from priorauth.policy.safety_loader import load_safety_text
from priorauth.policy.safety_model import SafetyData
from priorauth.service import decisions, notices
from priorauth.service.audit import ChainBreak, append_event, verify_chain
from priorauth.service.casestate import IllegalMove, next_state
from priorauth.service.config import Settings
from priorauth.service.errors import Conflict, Forbidden, Invalid, NotFound, Unauthenticated
from priorauth.service.integrity import determination_digest
from priorauth.service.metrics import compute_metrics
from priorauth.service.overlay import overlay
from priorauth.service.people import ROLES, Actor, hash_token, new_token
from priorauth.service.refusals import account_field_problems, record_refusal
from priorauth.service.throttle import Throttle
from priorauth.service.uow import UnitOfWork, case_key, request_key, user_key

__all__ = [
    "OPEN_STATUSES",
    "Decision",
    "DecisionHook",
    "ModifiedRegimen",
    "PriorAuthService",
    "ReplayResult",
    "Submitted",
]

# A case waits for a person in these states; its clock runs.
OPEN_STATUSES = ("pended", "information-requested", "appealed")
# Built once and reused: every submission inserts a determination.
_INSERT_DETERMINATION = insert(cast(Table, DeterminationRow.__table__))
_USERS = cast(Table, UserRow.__table__)
# Every call authenticates: the columns an Actor needs, without loading the ORM row.
_USER = select(
    _USERS.c.id,
    _USERS.c.name,
    _USERS.c.role,
    _USERS.c.organization,
    _USERS.c.npi,
    _USERS.c.specialty,
    _USERS.c.active,
).where(_USERS.c.token_hash == bindparam("token_hash"))
_CASES = cast(Table, CaseRow.__table__)
_SUBMITTED = select(_CASES.c.id, _CASES.c.submission_hash).where(
    _CASES.c.organization == bindparam("organization"),
    _CASES.c.request_id == bindparam("request_id"),
)
Action = Literal["approve", "approve-modified", "deny", "request-info", "refer"]
DecisionHook = Callable[["PriorAuthService", UnitOfWork, CaseRow, dt.datetime], None]


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def canonical(data: Any) -> str:
    """JSON with sorted keys and no spaces: the same data gives the same text."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def submission_text(member_id: str, line_of_business: str, request_json: str) -> str:
    """`canonical({"member_id": ..., "line_of_business": ..., "request": request})` spelled
    from `request_json = canonical(request)`: the same text, with the request (stored as it
    is) serialized once."""
    return (
        f'{{"line_of_business":{canonical(line_of_business)},'
        f'"member_id":{canonical(member_id)},"request":{request_json}}}'
    )


def _sha256(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class Submitted:
    """The answer to a submission: the case, and whether this call created it."""

    case: dict[str, Any]
    created: bool
    # The engine's determination, when this call made it (a repeat answers from the store).
    determination: Determination | None = None


@dataclass(frozen=True)
class Decision:
    """A reviewer's decision as the entry point received it."""

    action: Action
    reason: str | None = None
    criterion: str | None = None
    dose_rule: str | None = None
    # approve-modified only: {"dose": {"value", "unit"}, "schedule": {...}, "route"?, "doses"?}
    # (ModifiedRegimen: the request contract's Dose and Schedule).
    regimen: Mapping[str, Any] | None = None
    # deny: the specific reason, a code of the review rules (service.casestate); without it a
    # named criterion means criterion-not-met and a dose rule dose-outside-policy.
    reason_code: str | None = None
    # request-info: the questions (else `reason` is the question) and when the answers are due.
    questions: tuple[str, ...] = ()
    information_due: dt.datetime | None = None


@dataclass(frozen=True)
class ReplayResult:
    """One stored determination re-evaluated under its recorded policy version: the top-level
    fields that differ, or why it could not be re-evaluated (`problem`)."""

    determination_id: int
    policy: str | None
    same: bool
    differences: tuple[str, ...]
    problem: str | None = None


@dataclass(frozen=True)
class _LoadedPolicy:
    policy: Policy
    text: str
    content_hash: str
    # The safety data file the policy names, if any: its text, parsed data and hash.
    safety_text: str | None = None
    safety: SafetyData | None = None
    safety_hash: str | None = None


class PriorAuthService:
    """The workflow over one database and one set of policies. Build it, then `start()`."""

    def __init__(
        self,
        database: Database,
        settings: Settings,
        clock: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        self.database = database
        self.settings = settings
        self.clock = clock
        loaded, self.skipped_policies = _load_policies(
            settings.policy_dir or default_policy_dir(), settings.skip_bad_policies
        )
        self._loaded = loaded
        self.policies = PolicySet(
            (p.policy for p in loaded),
            safety={p.policy.id: p.safety for p in loaded if p.safety is not None},
            exemptions=_exemptions(settings.goldcard_exemptions),
        )
        # Called inside a decision's unit of work, before it commits (the FHIR notifications
        # outbox is written this way, in the same transaction as the decision).
        self.decision_hooks: list[DecisionHook] = []
        self._throttle = Throttle(settings.rate_limit) if settings.rate_limit else None

    # ---------------------------------------------------------------- start and accounts

    def close(self) -> None:
        """Close the database connections."""
        self.database.dispose()

    def start(self) -> None:
        """Record the loaded policy versions (with their YAML text) if they are new."""
        with UnitOfWork(self.database) as uow:
            uow.lock_writes()
            # Several server processes start at once: one registers each version.
            uow.lock("policies")
            known = set(uow.session.scalars(select(PolicyVersionRow.content_hash)))
            known_safety = set(uow.session.scalars(select(SafetyVersionRow.safety_hash)))
            now = self.clock()
            for item in self._loaded:
                if item.safety_hash is not None and item.safety_hash not in known_safety:
                    uow.session.add(
                        SafetyVersionRow(
                            policy_id=item.policy.id,
                            safety_hash=item.safety_hash,
                            yaml_text=item.safety_text,
                            loaded_at=now,
                        )
                    )
                    known_safety.add(item.safety_hash)
                if item.content_hash in known:
                    continue
                uow.session.add(
                    PolicyVersionRow(
                        policy_id=item.policy.id,
                        version=item.policy.version,
                        content_hash=item.content_hash,
                        yaml_text=item.text,
                        loaded_at=now,
                    )
                )
                append_event(
                    uow,
                    "system",
                    "policy.registered",
                    None,
                    {"policy": item.policy.id, "version": item.policy.version},
                    now,
                )
            uow.commit()

    def add_user(
        self,
        name: str,
        role: str,
        organization: str | None = None,
        npi: str | None = None,
        specialty: str | None = None,
        token: str | None = None,
    ) -> str:
        """Create an account and return its bearer token (shown once; only its hash is kept)."""
        problems = []
        if role not in ROLES:
            problems.append(FieldProblem("role", f"one of {', '.join(ROLES)}"))
        if role == "submitter" and not organization:
            problems.append(FieldProblem("organization", "a submitter acts for an organization"))
        if role in ("pharmacist", "medical-director") and not (npi and specialty):
            problems.append(FieldProblem("npi", "a reviewer needs an NPI and a specialty"))
        problems += account_field_problems(
            name=name, organization=organization, npi=npi, specialty=specialty
        )
        if problems:
            raise Invalid(problems)
        token = token or new_token()
        with UnitOfWork(self.database) as uow:
            uow.lock_writes()
            uow.lock(user_key(name))
            if uow.session.scalar(select(UserRow.id).where(UserRow.name == name)) is not None:
                raise Conflict(f"a user named {name!r} exists")
            now = self.clock()
            uow.session.add(
                UserRow(
                    name=name,
                    role=role,
                    organization=organization,
                    npi=npi,
                    specialty=specialty,
                    token_hash=hash_token(token),
                    active=True,
                    created_at=now,
                )
            )
            append_event(uow, "system", "user.added", None, {"name": name, "role": role}, now)
            uow.commit()
        return token

    def authenticate(self, token: str | None) -> Actor:
        """The account a bearer token belongs to; Unauthenticated otherwise, and Throttled
        when the account is over its rate limit (settings.rate_limit)."""
        if not token:
            raise Unauthenticated("a bearer token is required")
        user = self.database.first(_USER, {"token_hash": hash_token(token)})
        if user is None or not user.active:
            raise Unauthenticated("unknown token")
        if self._throttle is not None:
            self._throttle.admit(user.name)
        return Actor(user.id, user.name, user.role, user.organization, user.npi, user.specialty)

    # ---------------------------------------------------------------- submit

    def submit(
        self,
        actor: Actor,
        request: Mapping[str, Any],
        member_id: str,
        line_of_business: str = "medicare-advantage",
    ) -> Submitted:
        """Decide a new request, or answer a repeat of the same one with its first answer.

        The same `request_id` from the same organization with the same body returns the stored
        case; with a different body it is a Conflict. Acknowledged only once committed.
        """
        if actor.role != "submitter" or actor.organization is None:
            raise Forbidden("only a submitter may submit requests")
        # Evaluated before the write lock is taken, so writers wait for no engine work.
        evaluated = self._evaluate(request)
        with UnitOfWork(self.database) as uow:
            uow.lock_writes()
            submitted = self.submit_in(uow, actor, request, member_id, line_of_business, evaluated)
            if submitted.created:
                uow.commit()
        return submitted

    def submit_in(
        self,
        uow: UnitOfWork,
        actor: Actor,
        request: Mapping[str, Any],
        member_id: str,
        line_of_business: str = "medicare-advantage",
        evaluated: tuple[Determination, dt.date, str] | None = None,
        parsed: Request | None = None,
    ) -> Submitted:
        """The submit use case inside the caller's unit of work (which holds the write lock and
        commits): several submissions, or a submission and what goes with it, commit as one.
        `evaluated` is what `_evaluate(request)` returned, if the caller has it already, and
        `parsed` the request as `parse_request` read it."""
        if actor.role != "submitter" or actor.organization is None:
            raise Forbidden("only a submitter may submit requests")
        determination, as_of, urgency = evaluated or self._evaluate(request, parsed)
        request_json = canonical(request)
        submission_hash = _sha256(submission_text(member_id, line_of_business, request_json))
        request_id = determination.request_id
        # A twin sent at the same moment waits here, then finds this one.
        uow.lock(request_key(actor.organization, request_id))
        # The key and hash alone (a new request, the usual case, loads no row).
        existing = execute(
            uow.session, _SUBMITTED, {"organization": actor.organization, "request_id": request_id}
        ).first()
        if existing is not None:
            if existing.submission_hash != submission_hash:
                raise Conflict(
                    f"request_id {request_id} was already submitted with a different body"
                )
            earlier = uow.session.get_one(CaseRow, existing.id)
            return Submitted(self._case_view(uow, earlier, full=False), created=False)
        now = self.clock()
        approved = determination.outcome == "approved"
        case = CaseRow(
            case_id=uuid.uuid4().hex,
            request_id=request_id,
            organization=actor.organization,
            submitted_by=actor.user_id,
            submission_hash=submission_hash,
            request_json=request_json,
            member_id=member_id,
            line_of_business=line_of_business,
            urgency=urgency,
            # Set as the determination leaves them, so the row is written once.
            status=next_state("submitted", "engine-approves" if approved else "engine-pends"),
            queue=None if approved else determination.route or "clinician",
            received_at=now,
            due_at=now + self.settings.clock(line_of_business, urgency),
            extended=False,
            decided_at=now if approved else None,
            decided_by="automatic" if approved else "",
            appealed=False,
            updated_at=now,
        )
        try:
            insert_row(uow.session, case)
        except IntegrityError as exc:  # a concurrent twin won (should the lock be bypassed)
            raise Conflict(f"request_id {request_id} is being submitted already") from exc
        latest, authorization = self._apply_determination(uow, case, determination, request, now)
        view = self._summary(uow, case, latest, [authorization] if authorization else [])
        # Last: from its first audit event to its commit, a writer holds the chain.
        append_event(
            uow,
            actor.name,
            "request.submitted",
            case.case_id,
            {
                "request_id": request_id,
                "outcome": determination.outcome,
                "reasons": list(determination.reasons),
                "policy": determination.policy.content_hash if determination.policy else None,
                "as_of": as_of.isoformat(),
                # What `audit verify` checks the stored determination against.
                "determination": determination_digest(latest),
            },
            now,
        )
        return Submitted(view, created=True, determination=determination)

    def _evaluate(
        self, request: Mapping[str, Any], parsed: Request | None = None
    ) -> tuple[Determination, dt.date, str]:
        """Decide a request as of its received date: (determination, as_of, urgency).
        `parsed` is the request as `parse_request` read it, if the caller has it already."""
        try:
            parsed = parsed or parse_request(dict(request))
            as_of = parsed.received_at.date() if parsed.received_at else self.clock().date()
            # The request contract bounds its dates (1900-2199), so the engine's date arithmetic
            # cannot leave the calendar here. Decided from the request parsed above, not parsed
            # again. The policy refuses answers to questions it does not ask (InvalidRequest).
            determination = self.policies.decide(parsed, as_of, dict(request))
        except InvalidRequest as exc:
            raise Invalid(
                [
                    FieldProblem(f"request.{p.field}" if p.field else "request", p.message)
                    for p in exc.problems
                ]
            ) from exc
        return determination, as_of, parsed.urgency

    def _apply_determination(
        self,
        uow: UnitOfWork,
        case: CaseRow,
        determination: Determination,
        request: Mapping[str, Any],
        now: dt.datetime,
    ) -> tuple[str, AuthorizationRow | None]:
        """Store a determination and move the case on; returns its JSON and any authorization."""
        determination_json = determination.model_dump_json()
        # A plain INSERT: determinations are written once and never changed.
        execute(
            uow.session,
            _INSERT_DETERMINATION,
            {
                "case_pk": case.id,
                "outcome": determination.outcome,
                "reasons": ",".join(determination.reasons),
                "route": determination.route,
                "policy_hash": determination.policy.content_hash if determination.policy else None,
                "request_hash": determination.request_hash,
                # The request the case holds now (its callers have just stored it there).
                "request_json": case.request_json,
                "determination_json": determination_json,
                "created_at": now,
            },
        )
        authorization = None
        if case.status == "pended":  # decided again after information (submit sets it at once)
            move = "engine-approves" if determination.outcome == "approved" else "engine-pends"
            case.status = next_state(case.status, move)
        if determination.outcome == "approved":
            case.queue = None
            case.decided_at = now
            case.decided_by = "automatic"
            auth = determination.authorization
            if auth is not None:
                authorization = self._authorize(
                    uow,
                    case,
                    auth.valid_from,
                    auth.valid_through,
                    _authorized_regimen(auth, determination),
                    "automatic",
                    now,
                )
        elif case.queue != "medical-director":  # a referral to a medical director stays
            case.queue = determination.route or "clinician"
        case.updated_at = now
        return determination_json, authorization

    def _authorize(
        self,
        uow: UnitOfWork,
        case: CaseRow,
        valid_from: dt.date,
        valid_through: dt.date,
        regimen: Mapping[str, Any],
        source: str,
        now: dt.datetime,
    ) -> AuthorizationRow:
        request = json.loads(case.request_json)
        continues_id = None
        prior = request.get("prior_authorization_id")
        if request.get("type") == "continuation" and prior:
            continues_id = uow.session.scalar(
                select(AuthorizationRow.id)
                .join(CaseRow, CaseRow.id == AuthorizationRow.case_pk)
                .where(
                    # Only the organization's own authorizations: another's is not ours to
                    # continue, nor to reveal through a link.
                    AuthorizationRow.organization == case.organization,
                    AuthorizationRow.member_id == case.member_id,
                    (AuthorizationRow.authorization_id == prior) | (CaseRow.request_id == prior),
                )
                .order_by(AuthorizationRow.id.desc())
                .limit(1)
            )
        authorization = AuthorizationRow(
            authorization_id="AUTH-" + uuid.uuid4().hex[:16].upper(),
            case_pk=case.id,
            member_id=case.member_id,
            organization=case.organization,
            valid_from=valid_from,
            valid_through=valid_through,
            regimen_json=canonical(regimen),
            source=source,
            continues_id=continues_id,
            created_at=now,
        )
        insert_row(uow.session, authorization)
        return authorization

    # ---------------------------------------------------------------- read

    def _visible_case(self, uow: UnitOfWork, actor: Actor, case_id: str) -> CaseRow:
        """The case `actor` may see, NotFound otherwise. In a writer, the case stays locked
        (its key) until the writer ends: what it reads of the case is what it changes."""
        if uow.locked:
            uow.lock(case_key(case_id))
        case = uow.session.scalar(select(CaseRow).where(CaseRow.case_id == case_id))
        # Another organization's case answers exactly like a case that does not exist, and the
        # attempt is on the record (service.refusals).
        if (
            case is not None
            and actor.role == "submitter"
            and case.organization != actor.organization
        ):
            record_refusal(uow, actor, case.case_id, self.clock())
            case = None
        if case is None:
            raise NotFound("no such request")
        return case

    def read(self, actor: Actor, case_id: str) -> dict[str, Any]:
        """A case with its determinations, reviews, appeals and history (an audited read)."""
        with UnitOfWork(self.database) as uow:
            uow.lock_writes()
            case = self._visible_case(uow, actor, case_id)
            # Read first, then appended: a writer holds the audit chain only from its first
            # event to its commit. The case's key keeps its history as read until then, so the
            # history shown ends with this read, as the chain will.
            view = self._case_view(uow, case, full=True)
            view["notices"] = notices.case_notices(uow, actor, case)
            now = self.clock()
            append_event(uow, actor.name, "request.read", case.case_id, {"role": actor.role}, now)
            view["history"].append(
                {
                    "at": now.astimezone(dt.UTC).isoformat(),
                    "actor": actor.name,
                    "action": "request.read",
                    "number": len(view["history"]) + 1,
                }
            )
            uow.commit()
        return view

    def notice(self, actor: Actor, case_id: str, notice_id: int, as_pdf: bool) -> bytes:
        """A decision notice of a case, as HTML or PDF (an audited read; service.notices)."""
        return notices.read_notice(self, actor, case_id, notice_id, as_pdf)

    def find(self, actor: Actor, request_id: str) -> list[dict[str, Any]]:
        """The cases with a submitter's request id (an audited lookup): a submitter finds its
        own organization's (one at most); reviewers and admins find every organization's. Each
        is a case id with its status; `read` gives the rest."""
        if actor.role == "submitter" and actor.organization is None:
            raise Forbidden("a submitter account belongs to an organization")
        query = select(CaseRow).where(CaseRow.request_id == request_id)
        if actor.role == "submitter":
            query = query.where(CaseRow.organization == actor.organization)
        with UnitOfWork(self.database) as uow:
            uow.lock_writes()
            cases = list(uow.session.scalars(query.order_by(CaseRow.id)))
            append_event(
                uow,
                actor.name,
                "request.looked-up",
                None,
                {"role": actor.role, "request_id": request_id, "found": len(cases)},
                self.clock(),
            )
            uow.commit()
        return [
            {
                "case_id": case.case_id,
                "request_id": case.request_id,
                "organization": case.organization,
                "status": case.status,
                "queue": case.queue,
                "received_at": case.received_at.isoformat(),
            }
            for case in cases
        ]

    def _case_view(self, uow: UnitOfWork, case: CaseRow, full: bool) -> dict[str, Any]:
        rows = list(
            uow.session.scalars(
                select(DeterminationRow)
                .where(DeterminationRow.case_pk == case.id)
                .order_by(DeterminationRow.id)
            )
        )
        authorizations = list(
            uow.session.scalars(
                select(AuthorizationRow)
                .where(AuthorizationRow.case_pk == case.id)
                .order_by(AuthorizationRow.id)
            )
        )
        view = self._summary(
            uow, case, rows[-1].determination_json if rows else None, authorizations
        )
        if not full:
            return view
        view.update(self._details(uow, case, rows))
        return view

    def _summary(
        self,
        uow: UnitOfWork,
        case: CaseRow,
        determination_json: str | None,
        authorizations: list[AuthorizationRow],
    ) -> dict[str, Any]:
        """The case as the submit and decision calls answer it."""
        links = [a.continues_id for a in authorizations if a.continues_id is not None]
        continued: dict[int, str] = {}
        if links:
            continued = {
                row.id: row.authorization_id
                for row in uow.session.execute(
                    select(AuthorizationRow.id, AuthorizationRow.authorization_id).where(
                        AuthorizationRow.id.in_(links),
                        AuthorizationRow.organization == case.organization,
                    )
                )
            }
        now = self.clock()
        open_ = case.status in OPEN_STATUSES
        return {
            "case_id": case.case_id,
            "request_id": case.request_id,
            "member_id": case.member_id,
            "line_of_business": case.line_of_business,
            "urgency": case.urgency,
            "status": case.status,
            "queue": case.queue,
            "received_at": case.received_at.isoformat(),
            "due_at": case.due_at.isoformat() if open_ else None,
            "time_left_seconds": int((case.due_at - now).total_seconds()) if open_ else None,
            "overdue": open_ and case.due_at < now,
            "extended": case.extended,
            # Stopped while the plan waits for information it asked for (service.decisions):
            # due_at then moves on by the time it stays stopped.
            "clock_stopped": open_ and case.clock_stopped_at is not None,
            "decided_at": case.decided_at.isoformat() if case.decided_at else None,
            "decided_by": case.decided_by or None,
            "determination": json.loads(determination_json) if determination_json else None,
            "authorizations": [
                self._authorization_view(a, continued.get(a.continues_id or 0))
                for a in authorizations
            ],
        }

    def _details(
        self, uow: UnitOfWork, case: CaseRow, rows: list[DeterminationRow]
    ) -> dict[str, Any]:
        """What a full read adds: the request, every determination, reviews, appeals, history."""
        view: dict[str, Any] = {}
        view["extension_reason"] = case.extension_reason
        view["request"] = json.loads(case.request_json)
        view["determinations"] = [
            {
                "id": r.id,
                "outcome": r.outcome,
                "reasons": [x for x in r.reasons.split(",") if x],
                "route": r.route,
                "policy_hash": r.policy_hash,
                "request_hash": r.request_hash,
                "created_at": r.created_at.isoformat(),
            }
            for r in rows
        ]
        reviewers = {u.id: u.name for u in uow.session.scalars(select(UserRow))}
        view["reviews"] = [
            {
                "action": r.action,
                "reason": r.reason,
                "reason_code": r.reason_code,
                "criterion": r.criterion,
                "dose_rule": r.dose_rule,
                "reviewer": reviewers.get(r.reviewer_id),
                "reviewer_npi": r.reviewer_npi,
                "reviewer_specialty": r.reviewer_specialty,
                "regimen": json.loads(r.regimen_json) if r.regimen_json else None,
                "on_appeal": r.on_appeal,
                "at": r.created_at.isoformat(),
            }
            for r in uow.session.scalars(
                select(ReviewRow).where(ReviewRow.case_pk == case.id).order_by(ReviewRow.id)
            )
        ]
        view["appeals"] = [
            {
                "reason": a.reason,
                "outcome": a.outcome,
                "filed_at": a.filed_at.isoformat(),
                "decided_at": a.decided_at.isoformat() if a.decided_at else None,
            }
            for a in uow.session.scalars(
                select(AppealRow).where(AppealRow.case_pk == case.id).order_by(AppealRow.id)
            )
        ]
        view["history"] = [
            # Numbered within the case: the global event ids would tell a submitter how much
            # the service does for everyone else.
            {"at": e.at.isoformat(), "actor": e.actor, "action": e.action, "number": number}
            for number, e in enumerate(
                uow.session.scalars(
                    select(AuditEventRow)
                    .where(AuditEventRow.case_id == case.case_id)
                    .order_by(AuditEventRow.id)
                ),
                start=1,
            )
        ]
        return view

    @staticmethod
    def _authorization_view(a: AuthorizationRow, continues: str | None) -> dict[str, Any]:
        return {
            "authorization_id": a.authorization_id,
            "member_id": a.member_id,
            "valid_from": a.valid_from.isoformat(),
            "valid_through": a.valid_through.isoformat(),
            "regimen": json.loads(a.regimen_json),
            "source": a.source,
            # The authorization number it continues (never the row's id, a global count).
            "continues": continues,
        }

    # ---------------------------------------------------------------- add information

    def add_information(
        self, actor: Actor, case_id: str, patch: Mapping[str, Any], replace: bool = False
    ) -> dict[str, Any]:
        """Lay new facts over the stored request and decide it again at once (service.overlay:
        objects merge, the record's lists merge entry by entry).

        With `replace`, `patch` is the whole request as now known (a resubmitted FHIR claim) and
        takes the stored request's place: what it leaves out is no longer part of the request.
        """
        if actor.role != "submitter":
            raise Forbidden("only the submitting organization adds information")
        with UnitOfWork(self.database) as uow:
            case = self._visible_case(uow, actor, case_id)
            stored = case.request_json
            if replace:
                merged = {**patch, "request_id": case.request_id}
            else:
                merged = overlay(json.loads(stored), patch)
            if merged.get("request_id") != case.request_id:
                raise Invalid([FieldProblem("request.request_id", "cannot be changed")])
        # Evaluated outside the write lock; the lock then checks nothing changed meanwhile.
        determination, _, _ = self._evaluate(merged)
        with UnitOfWork(self.database) as uow:
            uow.lock_writes()
            case = self._visible_case(uow, actor, case_id)
            try:
                after = next_state(case.status, "add-information")
            except IllegalMove as exc:
                raise Conflict(
                    f"the request is {case.status}; information is not being sought"
                ) from exc
            if case.request_json != stored:
                raise Conflict("the request changed while this information was added; send again")
            now = self.clock()
            decisions.information_arrived(uow, case, now)
            case.status = after
            case.request_json = canonical(merged)
            latest, authorization = self._apply_determination(uow, case, determination, merged, now)
            append_event(
                uow,
                actor.name,
                "request.replaced" if replace else "request.information-added",
                case.case_id,
                {
                    "fields": sorted(patch),
                    "outcome": determination.outcome,
                    "reasons": list(determination.reasons),
                    "determination": determination_digest(latest),
                },
                now,
            )
            view = self._summary(uow, case, latest, [authorization] if authorization else [])
            uow.commit()
        return view

    # ---------------------------------------------------------------- queue and decisions

    def queue(
        self,
        actor: Actor,
        queue: str | None = None,
        status: str | None = None,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        """Open cases, soonest due first (so overdue cases lead), with the time left."""
        if not (actor.is_reviewer or actor.role == "admin"):
            raise Forbidden("the review queue is for pharmacists and medical directors")
        statuses = (status,) if status else OPEN_STATUSES
        now = self.clock()
        with UnitOfWork(self.database) as uow:
            query = select(CaseRow).where(CaseRow.status.in_(statuses))
            if queue:
                query = query.where(CaseRow.queue == queue)
            cases = list(
                uow.session.scalars(query.order_by(CaseRow.due_at, CaseRow.id).limit(limit))
            )
            reasons: dict[int, str] = {
                row.case_pk: row.reasons
                for row in uow.session.execute(
                    select(DeterminationRow.case_pk, DeterminationRow.reasons)
                    .where(DeterminationRow.case_pk.in_([c.id for c in cases]))
                    .order_by(DeterminationRow.id)
                )
            }
            waiting = decisions.information_due_by_case(uow, [c.id for c in cases])
            holders = {c.assigned_to for c in cases if c.assigned_to is not None}
            names = {
                row.id: row.name
                for row in uow.session.execute(
                    select(UserRow.id, UserRow.name).where(UserRow.id.in_(holders))
                )
            }
        items: list[tuple[dt.datetime, dict[str, Any]]] = []
        for c in cases:
            # A clock stopped for information counts as the worklist counts it.
            due, stopped = decisions.effective_due(
                c.due_at, c.clock_stopped_at, waiting.get(c.id), now
            )
            items.append(
                (
                    due,
                    {
                        "case_id": c.case_id,
                        "request_id": c.request_id,
                        "status": c.status,
                        "queue": c.queue,
                        "urgency": c.urgency,
                        "reasons": [x for x in reasons.get(c.id, "").split(",") if x],
                        "received_at": c.received_at.isoformat(),
                        "due_at": due.isoformat(),
                        "time_left_seconds": int((due - now).total_seconds()),
                        "overdue": due < now,
                        "extended": c.extended,
                        "clock_stopped": stopped,
                        # Who holds it (claimed or assigned), if anyone.
                        "assigned_to": names.get(c.assigned_to or 0),
                    },
                )
            )
        # Soonest due first as the clocks stand (a stopped clock only ever moves a case later).
        items.sort(key=lambda item: item[0])
        return [item for _, item in items]

    def decide(self, actor: Actor, case_id: str, decision: Decision) -> dict[str, Any]:
        """A pharmacist's or medical director's decision on an open case (service.decisions)."""
        return decisions.decide(self, actor, case_id, decision)

    def extend(self, actor: Actor, case_id: str, reason: str) -> dict[str, Any]:
        """Extend an open case's clock once, with a reason."""
        if not actor.is_reviewer:
            raise Forbidden("only a pharmacist or a medical director extends a clock")
        if not reason.strip():
            raise Invalid([FieldProblem("reason", "an extension needs a reason")])
        with UnitOfWork(self.database) as uow:
            uow.lock_writes()
            case = self._visible_case(uow, actor, case_id)
            if case.status not in OPEN_STATUSES:
                raise Conflict(f"the request is {case.status}; its clock has stopped")
            if case.extended:
                raise Conflict("the clock was extended already (once only)")
            now = self.clock()
            case.due_at = case.due_at + dt.timedelta(hours=self.settings.extension_hours)
            case.extended = True
            case.extension_reason = reason
            case.updated_at = now
            append_event(
                uow,
                actor.name,
                "request.extended",
                case.case_id,
                {"due_at": case.due_at.isoformat()},
                now,
            )
            view = self._case_view(uow, case, full=False)
            uow.commit()
        return view

    def appeal(self, actor: Actor, case_id: str, reason: str) -> dict[str, Any]:
        """Appeal a denial or a modified approval; a different medical director decides it."""
        if actor.role != "submitter":
            raise Forbidden("the submitting organization files an appeal")
        if not reason.strip():
            raise Invalid([FieldProblem("reason", "an appeal needs a reason")])
        with UnitOfWork(self.database) as uow:
            uow.lock_writes()
            case = self._visible_case(uow, actor, case_id)
            if case.status not in ("denied", "approved-modified"):
                raise Conflict(
                    f"the request is {case.status}; only an adverse decision is appealed"
                )
            if case.appealed:
                raise Conflict("the request was appealed already")
            decider = uow.session.scalar(
                select(ReviewRow.reviewer_id)
                .where(ReviewRow.case_pk == case.id)
                .order_by(ReviewRow.id.desc())
                .limit(1)
            )
            now = self.clock()
            uow.session.add(
                AppealRow(
                    case_pk=case.id,
                    filed_by=actor.user_id,
                    reason=reason,
                    excluded_reviewer_id=decider,
                    filed_at=now,
                )
            )
            case.status = next_state(case.status, "appeal")
            case.appealed = True
            case.queue = "medical-director"
            case.due_at = now + self.settings.clock(case.line_of_business, case.urgency)
            case.extended = False
            case.updated_at = now
            append_event(uow, actor.name, "request.appealed", case.case_id, {}, now)
            view = self._case_view(uow, case, full=False)
            uow.commit()
        return view

    # ---------------------------------------------------------------- inquiries

    def authorizations(self, actor: Actor, member_id: str) -> list[dict[str, Any]]:
        """A member's authorizations (a submitter sees its own organization's only); the
        look-up is audited like a read of a case."""
        with UnitOfWork(self.database) as uow:
            uow.lock_writes()
            query = select(AuthorizationRow).where(AuthorizationRow.member_id == member_id)
            if actor.role == "submitter":
                query = query.where(AuthorizationRow.organization == actor.organization)
            rows = list(uow.session.scalars(query.order_by(AuthorizationRow.id)))
            ids = {r.id: r.authorization_id for r in rows}
            views = [self._authorization_view(r, None) for r in rows]
            for view, row in zip(views, rows, strict=True):
                view["continues"] = ids.get(row.continues_id) if row.continues_id else None
                if row.continues_id and view["continues"] is None:
                    view["continues"] = uow.session.scalar(
                        select(AuthorizationRow.authorization_id).where(
                            AuthorizationRow.id == row.continues_id,
                            AuthorizationRow.organization == row.organization,
                        )
                    )
            append_event(
                uow,
                actor.name,
                "authorizations.read",
                None,
                {"member_id": member_id, "role": actor.role, "found": len(views)},
                self.clock(),
            )
            uow.commit()
        return views

    def policy_versions(self) -> list[dict[str, Any]]:
        """Every policy version the service has loaded, marking the ones in force."""
        active = {p.content_hash for p in self._loaded}
        with UnitOfWork(self.database) as uow:
            rows = list(uow.session.scalars(select(PolicyVersionRow).order_by(PolicyVersionRow.id)))
        return [
            {
                "policy_id": r.policy_id,
                "version": r.version,
                "content_hash": r.content_hash,
                "loaded_at": r.loaded_at.isoformat(),
                "active": r.content_hash in active,
            }
            for r in rows
        ]

    def policy_detail(self, policy_id: str) -> dict[str, Any]:
        """One policy's versions, newest first, each with the YAML text it was loaded from."""
        active = {p.content_hash for p in self._loaded}
        with UnitOfWork(self.database) as uow:
            rows = list(
                uow.session.scalars(
                    select(PolicyVersionRow)
                    .where(PolicyVersionRow.policy_id == policy_id)
                    .order_by(PolicyVersionRow.id.desc())
                )
            )
        if not rows:
            raise NotFound(f"no policy {policy_id}")
        return {
            "policy_id": policy_id,
            "versions": [
                {
                    "version": r.version,
                    "content_hash": r.content_hash,
                    "loaded_at": r.loaded_at.isoformat(),
                    "active": r.content_hash in active,
                    "yaml": r.yaml_text,
                }
                for r in rows
            ],
        }

    def ready(self) -> dict[str, Any]:
        """Whether the database answers and the policies are loaded."""
        self.database.ping()
        with UnitOfWork(self.database) as uow:
            revision = uow.session.execute(
                select(func.count()).select_from(PolicyVersionRow)
            ).scalar_one()
        return {"database": "ok", "policies": len(self._loaded), "policy_versions": revision}

    # ---------------------------------------------------------------- audit and replay

    def verify_audit(self) -> tuple[int, ChainBreak | None]:
        """Check the whole audit chain: (events checked, the first break or None)."""
        with UnitOfWork(self.database) as uow:
            events = uow.session.scalars(
                select(AuditEventRow).order_by(AuditEventRow.id).execution_options(yield_per=1000)
            )
            try:
                return verify_chain(events)
            finally:
                # A break stops the check early: close the (server-side) cursor before the session.
                events.close()

    # ---------------------------------------------------------------- accounts

    def users(self) -> list[dict[str, Any]]:
        """Every account: name, role, organization, whether it is active (never a token)."""
        with UnitOfWork(self.database) as uow:
            rows = list(uow.session.scalars(select(UserRow).order_by(UserRow.id)))
            return [
                {
                    "name": row.name,
                    "role": row.role,
                    "organization": row.organization,
                    "active": row.active,
                    "created_at": row.created_at.isoformat(),
                }
                for row in rows
            ]

    def deactivate_user(self, name: str) -> None:
        """Stop an account: its token is refused from now on. Its history stays as it was."""
        with UnitOfWork(self.database) as uow:
            uow.lock_writes()
            uow.lock(user_key(name))
            user = self._user(uow, name)
            if not user.active:
                return
            user.active = False
            append_event(uow, "system", "user.deactivated", None, {"name": name}, self.clock())
            uow.commit()

    def rotate_token(self, name: str) -> str:
        """Give an account a new bearer token (shown once) and refuse the old one; an inactive
        account becomes active again with it."""
        token = new_token()
        with UnitOfWork(self.database) as uow:
            uow.lock_writes()
            uow.lock(user_key(name))
            user = self._user(uow, name)
            user.token_hash = hash_token(token)
            user.active = True
            append_event(uow, "system", "user.token-rotated", None, {"name": name}, self.clock())
            uow.commit()
        return token

    @staticmethod
    def _user(uow: UnitOfWork, name: str) -> UserRow:
        user = uow.session.scalar(select(UserRow).where(UserRow.name == name))
        if user is None:
            raise NotFound(f"no user named {name!r}")
        return user

    def replay(self, ref: str) -> list[ReplayResult]:
        """Re-evaluate each stored determination of a case (by case id or request_id) under the
        policy version it recorded, and compare with what was stored."""
        with UnitOfWork(self.database) as uow:
            cases = list(
                uow.session.scalars(
                    select(CaseRow).where((CaseRow.case_id == ref) | (CaseRow.request_id == ref))
                )
            )
            if not cases:
                raise NotFound(f"no request {ref}")
            if len(cases) > 1:
                raise Conflict(f"{ref} names {len(cases)} cases; give the case id")
            rows = list(
                uow.session.scalars(
                    select(DeterminationRow)
                    .where(DeterminationRow.case_pk == cases[0].id)
                    .order_by(DeterminationRow.id)
                )
            )
            texts = {
                r.content_hash: r.yaml_text
                for r in uow.session.scalars(
                    select(PolicyVersionRow).where(
                        PolicyVersionRow.content_hash.in_([r.policy_hash for r in rows])
                    )
                )
            }
            safety_texts = {
                r.safety_hash: r.yaml_text for r in uow.session.scalars(select(SafetyVersionRow))
            }
        results = []
        for row in rows:
            stored = json.loads(row.determination_json)
            if row.policy_hash is not None and row.policy_hash not in texts:
                results.append(
                    ReplayResult(row.id, row.policy_hash, False, (), "policy text not stored")
                )
                continue
            recorded_safety = (stored.get("policy") or {}).get("safety_hash")
            if recorded_safety is not None and recorded_safety not in safety_texts:
                results.append(
                    ReplayResult(row.id, row.policy_hash, False, (), "safety data not stored")
                )
                continue
            try:
                policy_list = [load_policy_text(texts[row.policy_hash])] if row.policy_hash else []
                safety = (
                    {policy_list[0].id: load_safety_text(safety_texts[recorded_safety])}
                    if recorded_safety is not None and policy_list
                    else {}
                )
            except PolicyError as exc:
                # A version recorded before the policy model changed (issue #11) is kept as it
                # was; this engine cannot apply it.
                problem = f"the recorded policy version no longer loads ({exc})"
                results.append(ReplayResult(row.id, row.policy_hash, False, (), problem))
                continue
            # A request approved as exempt is replayed with the exemption it was approved under.
            policies = PolicySet(policy_list, safety=safety, exemptions=recorded_exemption(stored))
            as_of = dt.date.fromisoformat(stored["as_of"])
            try:
                decided = policies.evaluate(json.loads(row.request_json), as_of=as_of)
            except InvalidRequest as exc:
                problem = f"the stored request no longer reads ({exc})"
                results.append(ReplayResult(row.id, row.policy_hash, False, (), problem))
                continue
            again = json.loads(decided.model_dump_json())
            differences = tuple(
                sorted(k for k in stored.keys() | again.keys() if stored.get(k) != again.get(k))
            )
            results.append(ReplayResult(row.id, row.policy_hash, not differences, differences))
        return results

    # ---------------------------------------------------------------- metrics

    def metrics(self, actor: Actor, start: dt.datetime, end: dt.datetime) -> dict[str, Any]:
        """CMS-0057-F style figures for requests decided in [start, end)."""
        if actor.role == "submitter":
            raise Forbidden("metrics are for the plan's staff")
        with UnitOfWork(self.database) as uow:
            cases = list(
                uow.session.scalars(
                    select(CaseRow).where(
                        CaseRow.decided_at.is_not(None),
                        CaseRow.decided_at >= start,
                        CaseRow.decided_at < end,
                    )
                )
            )
            appeals = {
                a.case_pk: a.outcome
                for a in uow.session.scalars(
                    select(AppealRow).where(AppealRow.case_pk.in_([c.id for c in cases]))
                )
            }
            first_reviews: dict[int, str] = {}
            for review in uow.session.scalars(
                select(ReviewRow)
                .where(ReviewRow.case_pk.in_([c.id for c in cases]), ReviewRow.on_appeal.is_(False))
                .order_by(ReviewRow.id)
            ):
                if review.action != "request-info":
                    first_reviews.setdefault(review.case_pk, review.action)
            # A missed clock counts as an adverse decision: cases received in the period that
            # were still undecided after their due time (by the end of the period).
            missed = uow.session.execute(
                select(func.count())
                .select_from(CaseRow)
                .where(
                    CaseRow.received_at >= start,
                    CaseRow.received_at < end,
                    CaseRow.due_at < min(end, self.clock()),
                    (CaseRow.decided_at.is_(None)) | (CaseRow.decided_at > CaseRow.due_at),
                )
            ).scalar_one()
        report = compute_metrics(cases, appeals, first_reviews, start, end)
        report["clocks"] = {"missed_due_time": missed}
        return report


class ModifiedRegimen(BaseModel):
    """The regimen a reviewer approves instead of the one requested (`approve-modified`): each
    dose and the schedule, in the request contract's own terms (`service.dose`,
    `service.schedule`), with the route and the number of doses if the reviewer limits them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    dose: Dose
    schedule: Schedule
    route: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    doses: Annotated[int, Field(ge=1, le=1000)] | None = None

    @field_validator("schedule")
    @classmethod
    def _when(cls, schedule: Schedule) -> Schedule:
        if (
            schedule.cycle_length_days is None
            and schedule.interval_days is None
            and schedule.induction_days is None
        ):
            raise ValueError(
                "say when the doses are given: cycle_length_days, interval_days or induction_days"
            )
        return schedule


def _modified_regimen(
    regimen: Mapping[str, Any] | None,
) -> tuple[dict[str, Any] | None, list[FieldProblem]]:
    """A modified approval's regimen read through ModifiedRegimen (as plain JSON data), or the
    problems with it, each with its field (`regimen.dose.unit`)."""
    if regimen is None:
        return None, [
            FieldProblem(
                "regimen", "a modified approval gives the regimen approved (dose, schedule)"
            )
        ]
    try:
        read = ModifiedRegimen.model_validate(dict(regimen))
    except ValidationError as exc:
        return None, [
            FieldProblem(
                ".".join(["regimen", *(str(part) for part in e["loc"])]),
                e["msg"].removeprefix("Value error, "),
            )
            for e in exc.errors(include_url=False)
        ]
    return read.model_dump(mode="json", exclude_none=True), []


def _authorized_regimen(auth: Authorization, determination: Determination) -> dict[str, Any]:
    """What an automatic approval authorizes, as its authorization keeps it: the policy's
    regimen, each dose (in the regimen's unit and in mg), the schedule requested, the number of
    doses and the billing units."""
    regimen: dict[str, Any] = {
        "regimen": auth.regimen,
        "text": auth.regimen_text,
        "dose": auth.dose,
        "dose_unit": auth.dose_unit,
        "doses": auth.doses,
        "mg_per_dose": auth.mg_per_dose,
        "billing_code": auth.billing_code,
        "units_per_dose": auth.units_per_dose,
        "units": auth.units,
    }
    if determination.dosing is not None:
        requested = determination.dosing.requested
        schedule = {
            "cycle_length_days": requested.cycle_length_days,
            "doses_per_cycle": requested.doses_per_cycle,
            "cycle_days": requested.cycle_days,
            "induction_days": requested.induction_days,
            "interval_days": requested.interval_days,
        }
        regimen["schedule"] = {k: v for k, v in schedule.items() if v is not None}
    return regimen


def _exemptions(path: Path | None) -> ExemptionList | None:
    """The gold-card exemption list the settings name, if any (ValueError when unusable)."""
    if path is None:
        return None
    from priorauth.batch.goldcard import load_exemptions

    return load_exemptions(path)


def _load_policies(folder: Path, skip_bad: bool) -> tuple[list[_LoadedPolicy], list[PolicyError]]:
    """The policies of a folder. A file that does not load raises its PolicyError, or, with
    `skip_bad`, is left out and returned among the problems."""
    files = sorted(p for p in folder.glob("*.yaml") if not p.name.endswith(".data.yaml"))
    loaded = []
    skipped = []
    for path in files:
        try:
            loaded.append(_load_policy_file(folder, path))
        except PolicyError as exc:
            if not skip_bad:
                raise
            skipped.append(exc)
    return loaded, skipped


def _load_policy_file(folder: Path, path: Path) -> _LoadedPolicy:
    try:
        text = path.read_text(encoding="utf-8")
        policy = load_policy_text(text, str(path))
        if policy.safety is None:
            return _LoadedPolicy(policy, text, policy_hash(policy))
        safety_path = folder / policy.safety
        safety_text = safety_path.read_text(encoding="utf-8")
        data = load_safety_text(safety_text, str(safety_path))
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not UTF-8 text"
        issue = PolicyIssue("unreadable", "read", "", None, "error", reason)
        raise PolicyError(str(path), [issue]) from exc
    return _LoadedPolicy(policy, text, policy_hash(policy), safety_text, data, safety_hash(data))
