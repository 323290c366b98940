"""The account lifecycle: display name, email verification, disabled accounts; reset and verify tokens.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

from authsvc.store.schema import UtcDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # batch_alter_table: SQLite adds columns with ALTER TABLE, PostgreSQL likewise; no table copy needed.
    with op.batch_alter_table("users") as users:
        users.add_column(sa.Column("display_name", sa.String(100), nullable=False, server_default=""))
        users.add_column(sa.Column("email_verified_at", UtcDateTime(), nullable=True))
        users.add_column(sa.Column("disabled_at", UtcDateTime(), nullable=True))
    op.create_table(
        "account_tokens",
        sa.Column("token_hash", sa.LargeBinary(32), primary_key=True),
        sa.Column("user_id", sa.String(36), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("expires_at", UtcDateTime(), nullable=False),
        sa.Column("used_at", UtcDateTime(), nullable=True),
    )
    op.create_index("ix_account_tokens_user_kind", "account_tokens", ["user_id", "kind"])


def downgrade() -> None:
    op.drop_table("account_tokens")
    with op.batch_alter_table("users") as users:
        users.drop_column("disabled_at")
        users.drop_column("email_verified_at")
        users.drop_column("display_name")
