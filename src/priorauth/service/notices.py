"""Notices of a reviewer's decision to the provider and the member: the specific reason in plain
language, the policy criterion, the right to appeal (standard and expedited) and the reviewer's
name and credentials. Written as HTML when the decision is made and kept with the case; the PDF
(WeasyPrint) is rendered from that HTML the first time it is asked for, then kept too."""

from __future__ import annotations

import datetime as dt
import json
from typing import TYPE_CHECKING, Any

from jinja2 import Environment, PackageLoader, select_autoescape
from sqlalchemy import select

from priorauth.adapters.store import CaseRow, NoticeRow, ReviewRow, UserRow
from priorauth.engine.determination import CriterionResult, Determination
from priorauth.service.audit import append_event
from priorauth.service.casestate import review_rules
from priorauth.service.errors import NotFound
from priorauth.service.people import Actor
from priorauth.service.uow import UnitOfWork

if TYPE_CHECKING:
    from priorauth.service.workflow import PriorAuthService

__all__ = [
    "CREDENTIALS",
    "case_notices",
    "notice_pdf",
    "notices",
    "read_notice",
    "render_pdf",
    "write_notices",
]

CREDENTIALS = {
    "medical-director": "Medical Director (physician)",
    "pharmacist": "Clinical Pharmacist",
}
_KINDS = {"approve": "approval", "approve-modified": "modified-approval", "deny": "denial"}
_TITLES = {
    "approval": "Notice of approval",
    "modified-approval": "Notice of approval with changes",
    "denial": "Notice of denial of coverage",
}
_env = Environment(
    loader=PackageLoader("priorauth.service", "notice_templates"),
    autoescape=select_autoescape(["html"]),
)


def _find(node: CriterionResult | None, wanted: str | None) -> CriterionResult | None:
    stack = [node] if node is not None else []
    while stack and wanted:
        item = stack.pop()
        if item.id == wanted:
            return item
        stack.extend(item.children)
    return None


def drug_label(request: dict[str, Any]) -> str:
    service = request.get("service") or {}
    codes = service.get("codes") or []
    code = service.get("code") or (codes[0].get("code") if codes else None)
    name = service.get("name")
    return " ".join(str(x) for x in (name, f"({code})" if code else None) if x) or "not named"


def write_notices(
    service: PriorAuthService,
    uow: UnitOfWork,
    case: CaseRow,
    review: ReviewRow,
    actor: Actor,
    determination: Determination,
    now: dt.datetime,
) -> list[NoticeRow]:
    """The provider's and the member's notice of a decision, stored with the case."""
    kind = _KINDS[review.action]
    request = json.loads(case.request_json)
    rule = review_rules().reasons.get(review.reason_code or "")
    criterion = _find(determination.criteria, review.criterion)
    criterion_words = f"{criterion.id}. {criterion.text}" if criterion else (review.criterion or "")
    dose_words = review.dose_rule or ""
    if determination.dosing is not None and review.dose_rule:
        for check in determination.dosing.checks:
            if check.id == review.dose_rule:
                dose_words = f"{check.text} ({check.detail})"
    plain = (rule.plain if rule else "").format(criterion=criterion_words, dose_rule=dose_words)
    authorization = None
    if kind != "denial":
        from priorauth.adapters.store import AuthorizationRow

        authorization = uow.session.scalar(
            select(AuthorizationRow)
            .where(AuthorizationRow.case_pk == case.id)
            .order_by(AuthorizationRow.id.desc())
            .limit(1)
        )
    regimen = json.loads(authorization.regimen_json) if authorization else {}
    policy = determination.policy
    context: dict[str, Any] = {
        "kind": kind,
        "title": _TITLES[kind],
        "date": now.date().isoformat(),
        "request_id": case.request_id,
        "member_id": case.member_id,
        "drug": drug_label(request),
        "policy": f"{policy.id} version {policy.version}" if policy else "none governs",
        "decision": {
            "approval": "Approved",
            "modified-approval": "Approved with changes",
            "denial": "Denied",
        }[kind],
        "plain": plain,
        "criterion_text": criterion_words if criterion else "",
        "reviewer_words": review.reason or "",
        "reviewer_name": actor.name,
        "reviewer_credentials": ", ".join(
            x for x in (CREDENTIALS.get(actor.role, actor.role), actor.specialty) if x
        ),
        "reviewer_npi": actor.npi,
        "valid_from": authorization.valid_from.isoformat() if authorization else "",
        "valid_through": authorization.valid_through.isoformat() if authorization else "",
        "regimen_text": _regimen_words(regimen),
        "units": regimen.get("units"),
        "billing_code": regimen.get("billing_code"),
        "modified": kind == "modified-approval",
    }
    rows = []
    for audience in ("provider", "member"):
        html = _env.get_template("notice.html").render(audience=audience, **context)
        row = NoticeRow(
            case_pk=case.id,
            review_id=review.id,
            kind=kind,
            audience=audience,
            html=html,
            pdf=None,
            created_at=now,
        )
        uow.session.add(row)
        rows.append(row)
    return rows


def _regimen_words(regimen: dict[str, Any]) -> str:
    dose = regimen.get("dose") or (regimen.get("as_requested") or {}).get("dose")
    schedule = regimen.get("schedule") or (regimen.get("as_requested") or {}).get("schedule")
    parts = []
    if isinstance(dose, dict):
        parts.append(f"{dose.get('value')} {dose.get('unit')} each dose")
    elif dose is not None:
        parts.append(f"{dose} {regimen.get('dose_unit') or ''} each dose".replace("  ", " "))
    if isinstance(schedule, dict):
        parts.append(", ".join(f"{k.replace('_', ' ')} {v}" for k, v in schedule.items()))
    if regimen.get("doses"):
        parts.append(f"{regimen['doses']} doses")
    return "; ".join(parts)


def render_pdf(html: str) -> bytes:
    """The PDF of a notice's HTML (WeasyPrint)."""
    from weasyprint import HTML

    pdf: bytes = HTML(string=html).write_pdf()
    return pdf


def notices(service: PriorAuthService, case_id: str) -> list[dict[str, Any]]:
    """The notices of a case, oldest first (without their content)."""
    with UnitOfWork(service.database) as uow:
        case = uow.session.scalar(select(CaseRow).where(CaseRow.case_id == case_id))
        if case is None:
            raise NotFound("no such request")
        rows = uow.session.scalars(
            select(NoticeRow).where(NoticeRow.case_pk == case.id).order_by(NoticeRow.id)
        )
        return [
            {
                "id": r.id,
                "kind": r.kind,
                "audience": r.audience,
                "created_at": r.created_at.isoformat(),
            }
            for r in rows
        ]


def notice_pdf(service: PriorAuthService, notice_id: int, as_pdf: bool) -> tuple[str, bytes]:
    """A notice as (case id, HTML or PDF bytes); the PDF is rendered once and kept."""
    with UnitOfWork(service.database) as uow:
        row = uow.session.get(NoticeRow, notice_id)
        if row is None:
            raise NotFound("no such notice")
        case = uow.session.get_one(CaseRow, row.case_pk)
        if not as_pdf:
            return case.case_id, row.html.encode()
        if row.pdf is not None:
            return case.case_id, row.pdf
        html = row.html
    return case.case_id, _rendered(service, notice_id, html)


def _rendered(service: PriorAuthService, notice_id: int, html: str) -> bytes:
    """Render a notice's PDF (outside any transaction: it takes tens of milliseconds) and keep
    it, unless another call kept one first."""
    pdf = render_pdf(html)
    with UnitOfWork(service.database) as uow:
        uow.lock_writes()
        stored = uow.session.get_one(NoticeRow, notice_id)
        if stored.pdf is None:
            stored.pdf = pdf
        uow.commit()
    return pdf


def _shown_to(actor: Actor, audience: str) -> bool:
    """A submitter (the provider's organization) gets the provider's notices; the member's go
    to the member. Reviewers and admins see both."""
    return actor.role != "submitter" or audience == "provider"


def case_notices(uow: UnitOfWork, actor: Actor, case: CaseRow) -> list[dict[str, Any]]:
    """The notices of a case `actor` may read, oldest first, without their content."""
    rows = uow.session.execute(
        select(NoticeRow.id, NoticeRow.kind, NoticeRow.audience, NoticeRow.created_at)
        .where(NoticeRow.case_pk == case.id)
        .order_by(NoticeRow.id)
    )
    return [
        {
            "id": r.id,
            "kind": r.kind,
            "audience": r.audience,
            "created_at": r.created_at.isoformat(),
        }
        for r in rows
        if _shown_to(actor, r.audience)
    ]


def read_notice(
    service: PriorAuthService, actor: Actor, case_id: str, notice_id: int, as_pdf: bool
) -> bytes:
    """A notice of a case `actor` may read, as HTML or PDF: an audited read, like the case's.
    Another organization's case, another case's notice, or the member's notice asked for by a
    submitter: NotFound, as for one that does not exist."""
    with UnitOfWork(service.database) as uow:
        uow.lock_writes()
        case = service._visible_case(uow, actor, case_id)
        row = uow.session.get(NoticeRow, notice_id)
        if row is None or row.case_pk != case.id or not _shown_to(actor, row.audience):
            raise NotFound("no such notice for this request")
        html, pdf = row.html, row.pdf
        append_event(
            uow,
            actor.name,
            "request.notice-read",
            case.case_id,
            {"notice": notice_id, "format": "pdf" if as_pdf else "html", "role": actor.role},
            service.clock(),
        )
        uow.commit()
    if not as_pdf:
        return html.encode()
    return pdf if pdf is not None else _rendered(service, notice_id, html)


def reviewer_names(uow: UnitOfWork) -> dict[int, UserRow]:
    return {u.id: u for u in uow.session.scalars(select(UserRow))}
