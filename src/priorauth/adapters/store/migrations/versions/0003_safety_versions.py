"""Safety data versions: the text of each policy's safety data, kept so a case can be replayed.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "safety_versions",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("policy_id", sa.String(length=100), nullable=False),
        sa.Column("safety_hash", sa.String(80), nullable=False),
        sa.Column("yaml_text", sa.Text(), nullable=False),
        sa.Column("loaded_at", sa.DateTime(), nullable=False),
        sa.UniqueConstraint("safety_hash", name="uq_safety_versions_hash"),
    )
    op.create_index(
        op.f("ix_safety_versions_policy_id"), "safety_versions", ["policy_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_safety_versions_policy_id"), table_name="safety_versions")
    op.drop_table("safety_versions")
