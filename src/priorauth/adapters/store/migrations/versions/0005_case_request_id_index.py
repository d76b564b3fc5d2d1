"""An index on cases.request_id: a request is looked up by the id its submitter gave it.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(op.f("ix_cases_request_id"), "cases", ["request_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_cases_request_id"), table_name="cases")
