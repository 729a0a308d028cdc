"""record ids are never reused on SQLite (AUTOINCREMENT)

Processes derive outside ids from record ids (a Calendar event id); a new record must
not get the id of a deleted one. PostgreSQL's sequences never go back; SQLite reuses
the largest id after a delete unless the table has AUTOINCREMENT, which only a
rebuilt table can get.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-21 03:40:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    with op.batch_alter_table(
        "records", recreate="always", table_kwargs={"sqlite_autoincrement": True}
    ):
        pass


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    with op.batch_alter_table(
        "records", recreate="always", table_kwargs={"sqlite_autoincrement": False}
    ):
        pass
