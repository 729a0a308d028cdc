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


def test_json_columns_store_changes_python_thinks_equal(db_url: str) -> None:
    """1 == True and 1 == 1.0 in Python, but they are different JSON: all must be written."""
    from engine.store import CatalogRow

    db = Database(db_url)
    try:
        migrate(db)
        with db.session() as s:
            s.add(CatalogRow(name="c", definition={"v": 1}, content_hash="h"))
        for value in (True, 1.5, 1, {"nested": [0]}, {"nested": [False]}):
            with db.session() as s:
                row = s.get(CatalogRow, "c")
                assert row is not None
                row.definition = {"v": value}
            with db.session() as s:
                stored = s.get(CatalogRow, "c")
                assert stored is not None
                assert stored.definition == {"v": value}
                assert type(stored.definition["v"]) is type(value)
    finally:
        db.dispose()
