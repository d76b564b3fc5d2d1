"""The tables, as typed SQLAlchemy 2 classes kept in this adapter (the engine never sees them).

JSON documents are stored as canonical text, so what was hashed is what is kept. Times are UTC.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Dialect,
    ForeignKey,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from priorauth import sizes

__all__ = [
    "AppealRow",
    "AuditEventRow",
    "AuthorizationRow",
    "Base",
    "CaseRow",
    "DeterminationRow",
    "PolicyVersionRow",
    "ReviewRow",
    "SafetyVersionRow",
    "UserRow",
    "UtcDateTime",
]


class UtcDateTime(TypeDecorator[dt.datetime]):
    """An aware UTC datetime on every backend (SQLite keeps no zone, so it is stored naive UTC)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: give a UTC time")
        return value.astimezone(dt.UTC).replace(tzinfo=None)

    def process_result_value(
        self, value: dt.datetime | None, dialect: Dialect
    ) -> dt.datetime | None:
        return None if value is None else value.replace(tzinfo=dt.UTC)


class Base(DeclarativeBase):
    pass


class UserRow(Base):
    """A person or organization account; only the SHA-256 of its bearer token is kept."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(sizes.ACCOUNT_NAME), unique=True)
    role: Mapped[str] = mapped_column(String(32))
    organization: Mapped[str | None] = mapped_column(String(sizes.ORGANIZATION))
    npi: Mapped[str | None] = mapped_column(String(sizes.NPI))
    specialty: Mapped[str | None] = mapped_column(String(sizes.SPECIALTY))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)


class PolicyVersionRow(Base):
    """A policy version as it was loaded: its YAML text, kept so a case can be replayed."""

    __tablename__ = "policy_versions"
    __table_args__ = (UniqueConstraint("content_hash", name="uq_policy_versions_hash"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    policy_id: Mapped[str] = mapped_column(String(sizes.POLICY_ID), index=True)
    version: Mapped[str] = mapped_column(String(100))
    content_hash: Mapped[str] = mapped_column(String(80))
    yaml_text: Mapped[str] = mapped_column(Text)
    loaded_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)


class SafetyVersionRow(Base):
    """A policy's safety data as it was loaded (by its hash), kept so a case can be replayed."""

    __tablename__ = "safety_versions"
    __table_args__ = (UniqueConstraint("safety_hash", name="uq_safety_versions_hash"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    policy_id: Mapped[str] = mapped_column(String(100), index=True)
    safety_hash: Mapped[str] = mapped_column(String(80))
    yaml_text: Mapped[str] = mapped_column(Text)
    loaded_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)


class CaseRow(Base):
    """One prior-authorization request as a case in the workflow, unique per submitter."""

    __tablename__ = "cases"
    __table_args__ = (UniqueConstraint("organization", "request_id", name="uq_cases_org_request"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[str] = mapped_column(String(40), unique=True)
    request_id: Mapped[str] = mapped_column(String(sizes.REQUEST_ID), index=True)
    organization: Mapped[str] = mapped_column(String(sizes.ORGANIZATION))
    submitted_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    submission_hash: Mapped[str] = mapped_column(String(80))
    request_json: Mapped[str] = mapped_column(Text)
    member_id: Mapped[str] = mapped_column(String(sizes.MEMBER_ID), index=True)
    line_of_business: Mapped[str] = mapped_column(String(sizes.LINE_OF_BUSINESS))
    urgency: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(32), index=True)
    queue: Mapped[str | None] = mapped_column(String(sizes.QUEUE))
    received_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    due_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, index=True)
    extended: Mapped[bool] = mapped_column(Boolean, default=False)
    extension_reason: Mapped[str | None] = mapped_column(Text)
    decided_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    decided_by: Mapped[str] = mapped_column(String(16), default="")
    appealed: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    # The reviewer working the case (claimed or assigned), if any: a users.id (no foreign key,
    # see migration 0007).
    assigned_to: Mapped[int | None] = mapped_column(Integer)
    # When the decision clock stopped for a request for information (null: running).
    clock_stopped_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)


class DeterminationRow(Base):
    """An engine determination: immutable, with the request it was made on and its policy."""

    __tablename__ = "determinations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_pk: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    outcome: Mapped[str] = mapped_column(String(16))
    reasons: Mapped[str] = mapped_column(String(200))
    route: Mapped[str | None] = mapped_column(String(32))
    policy_hash: Mapped[str | None] = mapped_column(String(80))
    request_hash: Mapped[str] = mapped_column(String(80))
    request_json: Mapped[str] = mapped_column(Text)
    determination_json: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)


class ReviewRow(Base):
    """A reviewer's decision on a case, with who made it and the specific reason."""

    __tablename__ = "reviews"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_pk: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    reviewer_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    action: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str | None] = mapped_column(Text)
    criterion: Mapped[str | None] = mapped_column(String(sizes.CRITERION))
    dose_rule: Mapped[str | None] = mapped_column(String(sizes.DOSE_RULE))
    # A denial's specific reason, from the review rules' table (service.casestate).
    reason_code: Mapped[str | None] = mapped_column(String(sizes.REASON_CODE))
    reviewer_npi: Mapped[str | None] = mapped_column(String(sizes.NPI))
    reviewer_specialty: Mapped[str | None] = mapped_column(String(sizes.SPECIALTY))
    regimen_json: Mapped[str | None] = mapped_column(Text)
    on_appeal: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)


class AppealRow(Base):
    """An appeal of an adverse decision, to be decided by a different medical director."""

    __tablename__ = "appeals"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_pk: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    filed_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    reason: Mapped[str] = mapped_column(Text)
    excluded_reviewer_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    outcome: Mapped[str | None] = mapped_column(String(32))
    filed_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    decided_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)


class AuthorizationRow(Base):
    """An authorization granted to a member; a continuation links the earlier one."""

    __tablename__ = "authorizations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    authorization_id: Mapped[str] = mapped_column(String(40), unique=True)
    case_pk: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    member_id: Mapped[str] = mapped_column(String(sizes.MEMBER_ID), index=True)
    organization: Mapped[str] = mapped_column(String(sizes.ORGANIZATION))
    valid_from: Mapped[dt.date] = mapped_column(Date)
    valid_through: Mapped[dt.date] = mapped_column(Date)
    regimen_json: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(16))
    continues_id: Mapped[int | None] = mapped_column(ForeignKey("authorizations.id"))
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)


class AuditEventRow(Base):
    """One append-only audit event; `hash` covers the event and the previous event's hash."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=False
    )
    at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(64))
    case_id: Mapped[str | None] = mapped_column(String(40), index=True)
    detail_json: Mapped[str] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)
