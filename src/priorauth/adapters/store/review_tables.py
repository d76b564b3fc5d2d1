"""The tables of the reviewer's workbench: notes on a case, requests for information (with the
questions and the date they are due), and the notices sent (HTML and PDF, kept with the case)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from priorauth.adapters.store.tables import Base, UtcDateTime

__all__ = ["InformationRequestRow", "NoteRow", "NoticeRow"]


class NoteRow(Base):
    """A reviewer's note on a case (kept; never changed)."""

    __tablename__ = "case_notes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_pk: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    author_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)


class InformationRequestRow(Base):
    """The questions a reviewer sent the provider, the date they are due, and when the answer
    came (null while outstanding). `clock_stopped`: the decision clock stopped for it."""

    __tablename__ = "information_requests"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_pk: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    requested_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    questions_json: Mapped[str] = mapped_column(Text)
    due_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    clock_stopped: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    answered_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)


class NoticeRow(Base):
    """A notice of a decision to the provider or the member, as HTML and PDF."""

    __tablename__ = "notices"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_pk: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    review_id: Mapped[int | None] = mapped_column(ForeignKey("reviews.id"))
    kind: Mapped[str] = mapped_column(String(32))
    audience: Mapped[str] = mapped_column(String(16))
    html: Mapped[str] = mapped_column(Text)
    # Rendered from `html` when first asked for, then kept.
    pdf: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
