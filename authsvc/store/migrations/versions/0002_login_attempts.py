"""Login attempt counters for throttling.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

from authsvc.store.schema import UtcDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "login_attempts",
        sa.Column("subject", sa.String(400), primary_key=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("window_ends_at", UtcDateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("login_attempts")
