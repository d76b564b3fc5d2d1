"""What the reviewer's workbench shows: the worklist, a case file, the live backlog, the
accounts behind web sessions. Read models over the store; the pages (entrypoints.web) render
them and never open a database session themselves."""

from __future__ import annotations

import difflib
import itertools
import json
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from priorauth.adapters.store import (
    CaseRow,
    DeterminationRow,
    FhirClaimRow,
    InformationRequestRow,
    NoteRow,
    NoticeRow,
    UserRow,
)
from priorauth.service.casestate import OPEN, allowed, review_rules
from priorauth.service.decisions import effective_due, information_due_by_case
from priorauth.service.errors import Forbidden, NotFound
from priorauth.service.notices import drug_label
from priorauth.service.people import Actor
from priorauth.service.uow import UnitOfWork

if TYPE_CHECKING:
    from priorauth.service.workflow import PriorAuthService

__all__ = [
    "Filters",
    "attachments",
    "backlog",
    "case_extras",
    "policy_page",
    "session_actor",
    "worklist",
]


def _staff(actor: Actor) -> None:
    if not (actor.is_reviewer or actor.role == "admin"):
        raise Forbidden("the review workbench is for pharmacists, medical directors and admins")


def session_actor(service: PriorAuthService, user_id: int, fingerprint: str) -> Actor | None:
    """The account a web session was opened for, if it is still active and its token has not
    been rotated since (`fingerprint`: the start of the token's hash)."""
    with UnitOfWork(service.database) as uow:
        user = uow.session.get(UserRow, user_id)
        if user is None or not user.active or not user.token_hash.startswith(fingerprint):
            return None
        return Actor(user.id, user.name, user.role, user.organization, user.npi, user.specialty)


@dataclass(frozen=True)
class Filters:
    drug: str | None = None
    reason: str | None = None
    queue: str | None = None
    mine: bool = False
    status: str | None = None
    # Every open case, not only those the caller's role decides (or holds).
    every: bool = False


def _drug_key(determination: dict[str, Any], request: dict[str, Any]) -> str:
    policy = determination.get("policy") or {}
    if policy.get("id"):
        return str(policy["id"])
    return drug_label(request)


def worklist(
    service: PriorAuthService, actor: Actor, filters: Filters | None = None
) -> list[dict[str, Any]]:
    """Open cases for the staff, overdue first then soonest due, each with its drug, member,
    summary, reasons, queue, urgency, the time left (a stopped clock says so), who holds it and
    what the caller may do with it. By default, a role's worklist: the cases in the queues its
    role decides (an appeal: medical directors) and those it holds; `every`: all of them."""
    _staff(actor)
    filters = filters or Filters()
    rules = review_rules()
    now = service.clock()
    with UnitOfWork(service.database) as uow:
        query = select(CaseRow).where(CaseRow.status.in_(sorted(OPEN)))
        if filters.status:
            query = query.where(CaseRow.status == filters.status)
        if filters.queue:
            query = query.where(CaseRow.queue == filters.queue)
        if filters.mine:
            query = query.where(CaseRow.assigned_to == actor.user_id)
        cases = list(uow.session.scalars(query.order_by(CaseRow.due_at, CaseRow.id).limit(1000)))
        ids = [c.id for c in cases]
        latest: dict[int, str] = {}
        for row in uow.session.execute(
            select(DeterminationRow.case_pk, DeterminationRow.determination_json)
            .where(DeterminationRow.case_pk.in_(ids))
            .order_by(DeterminationRow.id)
        ):
            latest[row.case_pk] = row.determination_json
        waiting = information_due_by_case(uow, ids)
        names = {u.id: u.name for u in uow.session.scalars(select(UserRow))}
    items = []
    for case in cases:
        determination = json.loads(latest.get(case.id, "{}"))
        request = json.loads(case.request_json)
        due, stopped = effective_due(case.due_at, case.clock_stopped_at, waiting.get(case.id), now)
        reasons = list(determination.get("reasons") or ())
        drug = _drug_key(determination, request)
        if filters.drug and filters.drug != drug:
            continue
        if filters.reason and filters.reason not in reasons:
            continue
        if not filters.every and actor.role != "admin" and case.assigned_to != actor.user_id:
            if case.status == "appealed":
                if actor.role != "medical-director":
                    continue
            elif actor.role not in rules.deciders(case.queue):
                continue
        items.append(
            {
                "case_id": case.case_id,
                "request_id": case.request_id,
                "member_id": case.member_id,
                "organization": case.organization,
                "drug": drug,
                "summary": determination.get("summary", ""),
                "reasons": reasons,
                "queue": case.queue,
                "status": case.status,
                "urgency": case.urgency,
                "received_at": case.received_at,
                "due_at": due,
                "seconds_left": int((due - now).total_seconds()),
                "overdue": due < now and not stopped,
                "clock_stopped": stopped,
                "information_due": waiting.get(case.id),
                "assigned_to": names.get(case.assigned_to) if case.assigned_to else None,
                "mine": case.assigned_to == actor.user_id,
                "moves": sorted(allowed(rules, case.status, actor.role, case.queue, case.appealed)),
            }
        )
    # Overdue first, then the soonest due; a stopped clock waits behind the running ones.
    items.sort(key=lambda i: (not i["overdue"], i["clock_stopped"], i["due_at"]))
    return items


def case_extras(service: PriorAuthService, actor: Actor, case_id: str) -> dict[str, Any]:
    """What the case page adds to the case read: notes, requests for information, notices,
    who holds the case, the moves the caller may make and the denial reasons that fit."""
    _staff(actor)
    rules = review_rules()
    now = service.clock()
    with UnitOfWork(service.database) as uow:
        case = uow.session.scalar(select(CaseRow).where(CaseRow.case_id == case_id))
        if case is None:
            raise NotFound("no such request")
        names = {u.id: u for u in uow.session.scalars(select(UserRow))}
        notes = [
            {"author": names[n.author_id].name, "text": n.text, "at": n.created_at}
            for n in uow.session.scalars(
                select(NoteRow).where(NoteRow.case_pk == case.id).order_by(NoteRow.id)
            )
        ]
        information = [
            {
                "questions": json.loads(r.questions_json),
                "due_at": r.due_at,
                "asked_by": names[r.requested_by].name,
                "asked_at": r.created_at,
                "answered_at": r.answered_at,
                "clock_stopped": r.clock_stopped,
            }
            for r in uow.session.scalars(
                select(InformationRequestRow)
                .where(InformationRequestRow.case_pk == case.id)
                .order_by(InformationRequestRow.id)
            )
        ]
        notices = [
            {"id": n.id, "kind": n.kind, "audience": n.audience, "at": n.created_at}
            for n in uow.session.scalars(
                select(NoticeRow).where(NoticeRow.case_pk == case.id).order_by(NoticeRow.id)
            )
        ]
        waiting = max((i["due_at"] for i in information if i["answered_at"] is None), default=None)
        due, stopped = effective_due(case.due_at, case.clock_stopped_at, waiting, now)
        holder = names.get(case.assigned_to) if case.assigned_to else None
        deciders = sorted(
            u.name
            for u in names.values()
            if u.active and u.role in rules.deciders(case.queue) and case.status in OPEN
        )
        determination = json.loads(
            uow.session.scalar(
                select(DeterminationRow.determination_json)
                .where(DeterminationRow.case_pk == case.id)
                .order_by(DeterminationRow.id.desc())
                .limit(1)
            )
            or "{}"
        )
        moves = sorted(allowed(rules, case.status, actor.role, case.queue, case.appealed))
    fitting = rules.reasons_for(determination.get("reasons") or [])
    if any(i["answered_at"] is None for i in information):
        fitting.append(rules.reasons["information-not-received"])
    return {
        "notes": notes,
        "information": information,
        "notices": notices,
        "assigned_to": holder.name if holder else None,
        "mine": case.assigned_to == actor.user_id,
        "deciders": deciders,
        "moves": moves,
        "due_at": due if case.status in OPEN else None,
        "seconds_left": int((due - now).total_seconds()) if case.status in OPEN else None,
        "clock_stopped": stopped,
        "reasons": fitting,
        "all_reasons": list(rules.reasons.values()),
    }


# What a reviewer reads as an attachment of a PAS bundle (the rest maps into the request).
_ATTACHED = ("DocumentReference", "Binary", "QuestionnaireResponse", "DiagnosticReport")


def _answers(items: list[dict[str, Any]]) -> list[str]:
    found = []
    for item in items:
        for answer in item.get("answer") or ():
            value = next((v for k, v in answer.items() if k.startswith("value")), None)
            if isinstance(value, dict):
                value = value.get("display") or value.get("code") or value.get("value")
            found.append(f"{item.get('text') or item.get('linkId')}: {value}")
        found.extend(_answers(item.get("item") or []))
    return found


def attachments(service: PriorAuthService, actor: Actor, case_id: str) -> list[dict[str, Any]]:
    """The documents of the PAS bundle a case came in (its documents, DTR questionnaire
    responses, reports), each with a title and what it holds; none for a case sent as JSON."""
    _staff(actor)
    with UnitOfWork(service.database) as uow:
        bundles = [
            row.bundle_json
            for row in uow.session.scalars(
                select(FhirClaimRow)
                .where(FhirClaimRow.case_ids.contains(case_id))
                .order_by(FhirClaimRow.id)
            )
            if case_id in json.loads(row.case_ids)
        ]
    found = []
    for text in bundles:
        for entry in json.loads(text).get("entry") or ():
            resource = entry.get("resource") or {}
            kind = resource.get("resourceType")
            if kind not in _ATTACHED:
                continue
            content = [
                c.get("attachment") or {}
                for c in resource.get("content") or ()
                if isinstance(c, dict)
            ]
            title = (
                resource.get("description")
                or next((c.get("title") for c in content if c.get("title")), None)
                or resource.get("questionnaire")
                or (resource.get("code") or {}).get("text")
                or resource.get("id")
            )
            found.append(
                {
                    "kind": kind,
                    "id": resource.get("id"),
                    "title": title,
                    "content_type": next(
                        (c.get("contentType") for c in content if c.get("contentType")),
                        resource.get("contentType"),
                    ),
                    "lines": _answers(resource.get("item") or []),
                }
            )
    return found


def backlog(service: PriorAuthService, actor: Actor) -> dict[str, Any]:
    """The live backlog: open cases by queue, reason, drug and urgency, and how many are
    overdue."""
    items = worklist(service, actor, Filters(every=True))
    return {
        "open": len(items),
        "overdue": sum(1 for i in items if i["overdue"]),
        "clock_stopped": sum(1 for i in items if i["clock_stopped"]),
        "by_queue": Counter(i["queue"] or "none" for i in items).most_common(),
        "by_reason": Counter(r for i in items for r in i["reasons"] or ["none"]).most_common(),
        "by_drug": Counter(i["drug"] for i in items).most_common(),
        "by_urgency": Counter(i["urgency"] for i in items).most_common(),
    }


def policy_page(service: PriorAuthService, actor: Actor, policy_id: str) -> dict[str, Any]:
    """One policy: its criteria in the policy's own words beside its data, every version with
    what changed from the one before (a unified diff of the YAML)."""
    _staff(actor)
    detail = service.policy_detail(policy_id)
    versions = detail["versions"]  # newest first
    for newer, older in itertools.pairwise(versions):
        newer["changes"] = "".join(
            difflib.unified_diff(
                older["yaml"].splitlines(keepends=True),
                newer["yaml"].splitlines(keepends=True),
                fromfile=f"version {older['version']}",
                tofile=f"version {newer['version']}",
            )
        )
    if versions:
        versions[-1]["changes"] = None
    compiled = service.policies.get(policy_id)
    criteria: list[dict[str, str]] = []
    title = policy_id
    if compiled is not None:
        policy = compiled.policy
        title = policy.title
        for indication in policy.indications:
            criteria.append({"id": indication.id, "text": indication.title, "level": "0"})
            stack = [(indication.criteria, 1)]
            while stack:
                node, level = stack.pop()
                criteria.append({"id": node.id, "text": node.text, "level": str(level)})
                children = [*(node.all or ()), *(node.any or ()), *(node.of or ())]
                if node.not_ is not None:
                    children.append(node.not_)
                stack.extend((child, level + 1) for child in reversed(children))
    return {"policy_id": policy_id, "title": title, "criteria": criteria, "versions": versions}
