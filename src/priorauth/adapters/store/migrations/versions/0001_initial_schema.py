"""The initial schema: users, policy versions, cases, determinations, reviews, appeals,
authorizations and the audit chain.
Revision ID: 0001
Revises: none
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "audit_events",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=False,
            nullable=False,
        ),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("case_id", sa.String(length=40), nullable=True),
        sa.Column("detail_json", sa.Text(), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("hash"),
    )
    op.create_index(op.f("ix_audit_events_case_id"), "audit_events", ["case_id"], unique=False)
    op.create_table(
        "policy_versions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("policy_id", sa.String(length=100), nullable=False),
        sa.Column("version", sa.String(length=100), nullable=False),
        sa.Column("content_hash", sa.String(length=80), nullable=False),
        sa.Column("yaml_text", sa.Text(), nullable=False),
        sa.Column("loaded_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("content_hash", name="uq_policy_versions_hash"),
    )
    op.create_index(
        op.f("ix_policy_versions_policy_id"), "policy_versions", ["policy_id"], unique=False
    )
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("organization", sa.String(length=200), nullable=True),
        sa.Column("npi", sa.String(length=10), nullable=True),
        sa.Column("specialty", sa.String(length=100), nullable=True),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
        sa.UniqueConstraint("token_hash"),
    )
    op.create_table(
        "cases",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("case_id", sa.String(length=40), nullable=False),
        sa.Column("request_id", sa.String(length=64), nullable=False),
        sa.Column("organization", sa.String(length=200), nullable=False),
        sa.Column("submitted_by", sa.Integer(), nullable=False),
        sa.Column("submission_hash", sa.String(length=80), nullable=False),
        sa.Column("request_json", sa.Text(), nullable=False),
        sa.Column("member_id", sa.String(length=64), nullable=False),
        sa.Column("line_of_business", sa.String(length=64), nullable=False),
        sa.Column("urgency", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("queue", sa.String(length=32), nullable=True),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.Column("due_at", sa.DateTime(), nullable=False),
        sa.Column("extended", sa.Boolean(), nullable=False),
        sa.Column("extension_reason", sa.Text(), nullable=True),
        sa.Column("decided_at", sa.DateTime(), nullable=True),
        sa.Column("decided_by", sa.String(length=16), nullable=False),
        sa.Column("appealed", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["submitted_by"],
            ["users.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("case_id"),
        sa.UniqueConstraint("organization", "request_id", name="uq_cases_org_request"),
    )
    op.create_index(op.f("ix_cases_due_at"), "cases", ["due_at"], unique=False)
    op.create_index(op.f("ix_cases_member_id"), "cases", ["member_id"], unique=False)
    op.create_index(op.f("ix_cases_status"), "cases", ["status"], unique=False)
    op.create_table(
        "appeals",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("case_pk", sa.Integer(), nullable=False),
        sa.Column("filed_by", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("excluded_reviewer_id", sa.Integer(), nullable=True),
        sa.Column("outcome", sa.String(length=32), nullable=True),
        sa.Column("filed_at", sa.DateTime(), nullable=False),
        sa.Column("decided_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["case_pk"],
            ["cases.id"],
        ),
        sa.ForeignKeyConstraint(
            ["excluded_reviewer_id"],
            ["users.id"],
        ),
        sa.ForeignKeyConstraint(
            ["filed_by"],
            ["users.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_appeals_case_pk"), "appeals", ["case_pk"], unique=False)
    op.create_table(
        "authorizations",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("authorization_id", sa.String(length=40), nullable=False),
        sa.Column("case_pk", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.String(length=64), nullable=False),
        sa.Column("organization", sa.String(length=200), nullable=False),
        sa.Column("valid_from", sa.Date(), nullable=False),
        sa.Column("valid_through", sa.Date(), nullable=False),
        sa.Column("regimen_json", sa.Text(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("continues_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_pk"],
            ["cases.id"],
        ),
        sa.ForeignKeyConstraint(
            ["continues_id"],
            ["authorizations.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("authorization_id"),
    )
    op.create_index(op.f("ix_authorizations_case_pk"), "authorizations", ["case_pk"], unique=False)
    op.create_index(
        op.f("ix_authorizations_member_id"), "authorizations", ["member_id"], unique=False
    )
    op.create_table(
        "determinations",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("case_pk", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("reasons", sa.String(length=200), nullable=False),
        sa.Column("route", sa.String(length=32), nullable=True),
        sa.Column("policy_hash", sa.String(length=80), nullable=True),
        sa.Column("request_hash", sa.String(length=80), nullable=False),
        sa.Column("request_json", sa.Text(), nullable=False),
        sa.Column("determination_json", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_pk"],
            ["cases.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_determinations_case_pk"), "determinations", ["case_pk"], unique=False)
    op.create_table(
        "reviews",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("case_pk", sa.Integer(), nullable=False),
        sa.Column("reviewer_id", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("criterion", sa.String(length=100), nullable=True),
        sa.Column("dose_rule", sa.String(length=100), nullable=True),
        sa.Column("reviewer_npi", sa.String(length=10), nullable=True),
        sa.Column("reviewer_specialty", sa.String(length=100), nullable=True),
        sa.Column("regimen_json", sa.Text(), nullable=True),
        sa.Column("on_appeal", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_pk"],
            ["cases.id"],
        ),
        sa.ForeignKeyConstraint(
            ["reviewer_id"],
            ["users.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_reviews_case_pk"), "reviews", ["case_pk"], unique=False)


def downgrade() -> None:

    op.drop_index(op.f("ix_reviews_case_pk"), table_name="reviews")
    op.drop_table("reviews")
    op.drop_index(op.f("ix_determinations_case_pk"), table_name="determinations")
    op.drop_table("determinations")
    op.drop_index(op.f("ix_authorizations_member_id"), table_name="authorizations")
    op.drop_index(op.f("ix_authorizations_case_pk"), table_name="authorizations")
    op.drop_table("authorizations")
    op.drop_index(op.f("ix_appeals_case_pk"), table_name="appeals")
    op.drop_table("appeals")
    op.drop_index(op.f("ix_cases_status"), table_name="cases")
    op.drop_index(op.f("ix_cases_member_id"), table_name="cases")
    op.drop_index(op.f("ix_cases_due_at"), table_name="cases")
    op.drop_table("cases")
    op.drop_table("users")
    op.drop_index(op.f("ix_policy_versions_policy_id"), table_name="policy_versions")
    op.drop_table("policy_versions")
    op.drop_index(op.f("ix_audit_events_case_id"), table_name="audit_events")
    op.drop_table("audit_events")
