"""The reviewer's workbench (issue #13): who works a case, a stopped clock, a denial's reason
code, notes, requests for information and notices.

Revision ID: 0007
Revises: 0006

Only additions: new nullable columns and new tables, so a service of the previous revision
keeps working on the upgraded database.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from priorauth.adapters.store.tables import UtcDateTime

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN, without a foreign key: SQLite cannot add one to a table in place, and a
    # batch rebuild of `cases` would trip the foreign keys that point at it. The service writes
    # only user ids there.
    op.add_column("cases", sa.Column("assigned_to", sa.Integer(), nullable=True))
    op.add_column("cases", sa.Column("clock_stopped_at", UtcDateTime(), nullable=True))
    op.add_column("reviews", sa.Column("reason_code", sa.String(length=40), nullable=True))
    op.create_table(
        "case_notes",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("case_pk", sa.Integer(), sa.ForeignKey("cases.id"), nullable=False),
        sa.Column("author_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
    )
    op.create_index(op.f("ix_case_notes_case_pk"), "case_notes", ["case_pk"])
    op.create_table(
        "information_requests",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("case_pk", sa.Integer(), sa.ForeignKey("cases.id"), nullable=False),
        sa.Column("requested_by", sa.Integer(), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("questions_json", sa.Text(), nullable=False),
        sa.Column("due_at", UtcDateTime(), nullable=False),
        sa.Column("clock_stopped", sa.Boolean(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("answered_at", UtcDateTime(), nullable=True),
    )
    op.create_index(op.f("ix_information_requests_case_pk"), "information_requests", ["case_pk"])
    op.create_table(
        "notices",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("case_pk", sa.Integer(), sa.ForeignKey("cases.id"), nullable=False),
        sa.Column("review_id", sa.Integer(), sa.ForeignKey("reviews.id"), nullable=True),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("audience", sa.String(length=16), nullable=False),
        sa.Column("html", sa.Text(), nullable=False),
        sa.Column("pdf", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
    )
    op.create_index(op.f("ix_notices_case_pk"), "notices", ["case_pk"])


def downgrade() -> None:
    op.drop_table("notices")
    op.drop_table("information_requests")
    op.drop_table("case_notes")
    op.drop_column("reviews", "reason_code")
    op.drop_column("cases", "clock_stopped_at")
    op.drop_column("cases", "assigned_to")
