"""instance state and step logs are stored zlib-compressed

A completed meeting took 28 KB, most of it the serialised workflow (its task tree
repeats keys and ids) and the step log's variables and exchanges. Both are read
only by operators and by the engine itself, never queried into, so they are kept
as compressed bytes. Values written before this revision stay readable as they
are (the column types tell packed values from plain text by their first byte).

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-21 05:15:00
"""

import zlib
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
_COLUMNS = (
    ("instances", "workflow", sa.Text()),
    ("steps", "changed", _JSON),
    ("steps", "exchanges", _JSON),
)


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table, column, _ in _COLUMNS:
            text = column if table == "instances" else f"{column}::text"
            op.execute(
                f"ALTER TABLE {table} ALTER COLUMN {column} TYPE bytea "
                f"USING convert_to({text}, 'UTF8')"
            )
        return
    # SQLite keeps each value's own storage class: old values stay text, still readable.
    # ``instances`` keeps its declared TEXT (a BLOB is stored as a BLOB anyway):
    # rebuilding it would cascade-delete the steps and incidents that refer to it.
    with op.batch_alter_table("steps") as batch_op:
        for table, column, old_type in _COLUMNS:
            if table == "steps":
                batch_op.alter_column(column, type_=sa.LargeBinary(), existing_type=old_type)


def _plain(value: bytes | str | None) -> str | None:
    if value is None or isinstance(value, str):
        return value
    data = bytes(value)
    return (zlib.decompress(data) if data[:1] == b"x" else data).decode()


def downgrade() -> None:
    bind = op.get_bind()
    values = {
        (table, column): bind.execute(sa.text(f"SELECT id, {column} FROM {table}")).all()
        for table, column, _ in _COLUMNS
    }
    if bind.dialect.name == "postgresql":
        for table, column, _ in _COLUMNS:
            # Any text will do for now: the rows are rewritten below.
            op.execute(
                f"ALTER TABLE {table} ALTER COLUMN {column} TYPE text "
                f"USING encode({column}, 'escape')"
            )
    else:
        with op.batch_alter_table("steps") as batch_op:
            for table, column, old_type in _COLUMNS:
                if table == "steps":
                    batch_op.alter_column(column, type_=old_type, existing_type=sa.LargeBinary())
    for (table, column), rows in values.items():
        for row_id, value in rows:
            bind.execute(
                sa.text(f"UPDATE {table} SET {column} = :value WHERE id = :id"),
                {"value": _plain(value), "id": row_id},
            )
    if bind.dialect.name == "postgresql":
        for table, column, _ in _COLUMNS:
            if table == "steps":
                op.execute(
                    f"ALTER TABLE {table} ALTER COLUMN {column} TYPE jsonb USING {column}::jsonb"
                )
