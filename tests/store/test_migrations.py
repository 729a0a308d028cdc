"""The same Alembic migrations build the schema the models describe, on both databases."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from engine.store import Base, Database, current_revision, head_revision, migrate


def test_migrations_match_models(db_url: str) -> None:
    db = Database(db_url)
    try:
        assert current_revision(db) is None
        migrate(db)
        assert current_revision(db) == head_revision(db)
        with db.engine.connect() as conn:
            diff = compare_metadata(
                MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata
            )
        assert diff == []
        tables = set(inspect(db.engine).get_table_names())
        assert {"records", "outbox_events", "instances", "steps", "incidents"} <= tables
        migrate(db)  # a second run is a no-op
        assert current_revision(db) == head_revision(db)
    finally:
        db.dispose()


def test_sqlite_uses_wal(tmp_path: object) -> None:
    db = Database(f"sqlite:///{tmp_path}/wal.db")
    try:
        migrate(db)
        with db.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    finally:
        db.dispose()
