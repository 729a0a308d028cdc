"""an outbox event's record values get a table of their own, deleted once dispatched

They were columns of the event, cleared once it was dispatched; a cleared value
left a hole in the event's page that SQLite does not fill again, about 600 bytes
per meeting. Rows deleted from a table of their own free whole pages for the next.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-21 08:15:00
"""

import base64
import json
import zlib
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def _from_event_column(value: Any) -> Any:
    """A value as revision 0008 stored it in the event: JSON, or a packed JSON string."""
    if isinstance(value, str):
        return json.loads(zlib.decompress(base64.b64decode(value)))
    return value


def _packed(value: Any) -> bytes | None:
    """As the PackedJSON column type stores it: compact JSON, zlib from 160 bytes."""
    if value is None:
        return None
    raw = json.dumps(value, separators=(",", ":"), default=str).encode()
    return zlib.compress(raw, 6) if len(raw) >= 160 else raw


def _unpacked(value: Any) -> Any:
    if value is None:
        return None
    data = bytes(value)
    return json.loads(zlib.decompress(data) if data[:1] == b"x" else data)


def upgrade() -> None:
    op.create_table(
        "outbox_values",
        sa.Column("event_id", _ID, nullable=False),
        sa.Column("old", sa.LargeBinary(), nullable=True),
        sa.Column("new", sa.LargeBinary(), nullable=True),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["outbox_events.id"],
            name=op.f("fk_outbox_values_event_id_outbox_events"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_outbox_values")),
    )
    bind = op.get_bind()
    pending = bind.execute(
        sa.text(
            "SELECT id, old, new FROM outbox_events "
            "WHERE dispatched_at IS NULL AND (old IS NOT NULL OR new IS NOT NULL)"
        )
    ).all()
    for event_id, old, new in pending:
        bind.execute(
            sa.text("INSERT INTO outbox_values (event_id, old, new) VALUES (:id, :old, :new)"),
            {
                "id": event_id,
                "old": _packed(_from_event_column(_json(old, bind))),
                "new": _packed(_from_event_column(_json(new, bind))),
            },
        )
    # Plain columns: SQLite (3.35+) and PostgreSQL drop them in place, with no rebuild
    # of a table the instances refer to.
    op.execute("ALTER TABLE outbox_events DROP COLUMN old")
    op.execute("ALTER TABLE outbox_events DROP COLUMN new")


def _json(value: Any, bind: sa.engine.Connection) -> Any:
    """A JSON column's value as read with plain SQL (text on SQLite, decoded on PG)."""
    if isinstance(value, str) and bind.dialect.name == "sqlite":
        return json.loads(value)
    return value


def downgrade() -> None:
    op.add_column("outbox_events", sa.Column("old", _JSON, nullable=True))
    op.add_column("outbox_events", sa.Column("new", _JSON, nullable=True))
    bind = op.get_bind()
    rows = bind.execute(sa.text("SELECT event_id, old, new FROM outbox_values")).all()
    cast = "CAST({} AS jsonb)" if bind.dialect.name == "postgresql" else "{}"
    for event_id, old, new in rows:
        bind.execute(
            sa.text(
                f"UPDATE outbox_events SET old = {cast.format(':old')}, "
                f"new = {cast.format(':new')} WHERE id = :id"
            ),
            {
                "id": event_id,
                "old": None if old is None else json.dumps(_unpacked(old)),
                "new": None if new is None else json.dumps(_unpacked(new)),
            },
        )
    op.drop_table("outbox_values")
