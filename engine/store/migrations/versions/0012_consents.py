"""OAuth consents under way, kept in the database

They were kept in the memory of the API process that sent the person to the
provider, so the provider's answer failed when it reached another process (a
stand-by behind the same address) or the same one restarted.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-21 14:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "consents",
        sa.Column("state_hash", sa.String(length=64), nullable=False),
        sa.Column("connection", sa.String(length=100), nullable=False),
        sa.Column("redirect_uri", sa.String(length=1000), nullable=False),
        sa.Column("started_by", sa.String(length=200), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("state_hash", name="pk_consents"),
    )
    op.create_index("ix_consents_expires_at", "consents", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_consents_expires_at", table_name="consents")
    op.drop_table("consents")
