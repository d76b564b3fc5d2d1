"""The shapes of the REST API's answers, published in the OpenAPI document (typed responses).

The routes answer with the service's plain data written by orjson; these models describe that
data for clients and for the fuzz tests, which check every answer against them. They are never
used to build an answer, so they cost nothing per request.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from priorauth.engine.determination import Determination

__all__ = [
    "AuthorizationView",
    "CaseDetail",
    "CaseSummary",
    "FoundCase",
    "PolicyDetail",
    "PolicyVersionView",
    "QueueItem",
]


class _View(BaseModel):
    model_config = ConfigDict(extra="allow")


class AuthorizationView(_View):
    """An authorization granted on a case; `continues` names the one it continues."""

    authorization_id: str
    member_id: str
    valid_from: str
    valid_through: str
    regimen: dict[str, Any]
    source: str
    continues: str | None = None


class CaseSummary(_View):
    """A case as the submission and the decision calls answer it."""

    case_id: str
    request_id: str
    member_id: str
    line_of_business: str
    urgency: str
    status: str
    queue: str | None
    received_at: str
    due_at: str | None
    time_left_seconds: int | None
    overdue: bool
    extended: bool
    decided_at: str | None
    decided_by: str | None
    determination: Determination | None
    authorizations: list[AuthorizationView]


class DeterminationEntry(_View):
    id: int
    outcome: str
    reasons: list[str]
    route: str | None
    policy_hash: str | None
    request_hash: str
    created_at: str


class ReviewEntry(_View):
    action: str
    reason: str | None
    criterion: str | None
    dose_rule: str | None
    reviewer: str | None
    reviewer_npi: str | None
    reviewer_specialty: str | None
    regimen: dict[str, Any] | None
    on_appeal: bool
    at: str


class AppealEntry(_View):
    reason: str
    outcome: str | None
    filed_at: str
    decided_at: str | None


class HistoryEntry(_View):
    """One audit event of the case, numbered within the case."""

    at: str
    actor: str
    action: str
    number: int


class NoticeEntry(_View):
    """A notice of a reviewer's decision; `GET /v1/requests/{case_id}/notices/{id}` gives it as
    PDF (or `?format=html`). A submitter sees the provider's notices; the member's go to the
    member."""

    id: int
    kind: Literal["approval", "modified-approval", "denial"]
    audience: Literal["provider", "member"]
    created_at: str


class CaseDetail(CaseSummary):
    """A case in full: the request, every determination, reviews, appeals, notices and
    history."""

    extension_reason: str | None
    request: dict[str, Any]
    determinations: list[DeterminationEntry]
    reviews: list[ReviewEntry]
    appeals: list[AppealEntry]
    notices: list[NoticeEntry]
    history: list[HistoryEntry]


class FoundCase(_View):
    case_id: str
    request_id: str
    organization: str
    status: str
    queue: str | None
    received_at: str


class QueueItem(_View):
    case_id: str
    request_id: str
    status: str
    queue: str | None
    urgency: str
    reasons: list[str]
    received_at: str
    due_at: str
    time_left_seconds: int
    overdue: bool
    extended: bool
    # Stopped while the provider is asked for information (the clock restarts at the answer's
    # due date, or when the answer comes, with the time that was left).
    clock_stopped: bool
    # The account holding the case (claimed, or assigned by an admin), if any.
    assigned_to: str | None


class PolicyVersionView(_View):
    policy_id: str
    version: str
    content_hash: str
    loaded_at: str
    active: bool


class PolicyVersionText(_View):
    version: str
    content_hash: str
    loaded_at: str
    active: bool
    yaml: str


class PolicyDetail(_View):
    policy_id: str
    versions: list[PolicyVersionText]
