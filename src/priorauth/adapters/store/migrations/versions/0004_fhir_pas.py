"""FHIR PAS: claims as received, subscriptions, and the notification outbox.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "fhir_claims",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("organization", sa.String(200), nullable=False),
        sa.Column("claim_identifier", sa.String(200), nullable=False),
        sa.Column("submission_hash", sa.String(80), nullable=False),
        sa.Column("bundle_json", sa.Text(), nullable=False),
        sa.Column("patient_keys", sa.Text(), nullable=False),
        sa.Column("provider_key", sa.String(400), nullable=False),
        sa.Column("insurer_key", sa.String(400), nullable=False),
        sa.Column("case_ids", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("replaces_id", sa.Integer(), sa.ForeignKey("fhir_claims.id"), nullable=True),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.UniqueConstraint("organization", "claim_identifier", name="uq_fhir_claims_org_claim"),
    )
    op.create_table(
        "fhir_subscriptions",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("subscription_id", sa.String(40), nullable=False, unique=True),
        sa.Column("organization", sa.String(200), nullable=False),
        sa.Column("endpoint", sa.String(2000), nullable=False),
        sa.Column("resource_json", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("events", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    op.create_index(
        op.f("ix_fhir_subscriptions_organization"),
        "fhir_subscriptions",
        ["organization"],
        unique=False,
    )
    op.create_table(
        "fhir_outbox",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "subscription_pk",
            sa.Integer(),
            sa.ForeignKey("fhir_subscriptions.id"),
            nullable=False,
        ),
        sa.Column("case_id", sa.String(40), nullable=False),
        sa.Column("payload_json", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(), nullable=False),
        sa.Column("delivered_at", sa.DateTime(), nullable=True),
        sa.Column("failed_at", sa.DateTime(), nullable=True),
        sa.Column("last_error", sa.String(200), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    op.create_index(
        op.f("ix_fhir_outbox_subscription_pk"), "fhir_outbox", ["subscription_pk"], unique=False
    )
    op.create_index(
        op.f("ix_fhir_outbox_next_attempt_at"), "fhir_outbox", ["next_attempt_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_fhir_outbox_next_attempt_at"), table_name="fhir_outbox")
    op.drop_index(op.f("ix_fhir_outbox_subscription_pk"), table_name="fhir_outbox")
    op.drop_table("fhir_outbox")
    op.drop_index(op.f("ix_fhir_subscriptions_organization"), table_name="fhir_subscriptions")
    op.drop_table("fhir_subscriptions")
    op.drop_table("fhir_claims")
