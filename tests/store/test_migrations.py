"""The same Alembic migrations build the schema the models describe, on both databases."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, select

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


def _alembic(db: Database, verb: str, revision: str) -> None:
    from alembic import command

    from engine.store._migrate import alembic_config

    config = alembic_config(db)
    with db.engine.begin() as conn:
        config.attributes["connection"] = conn
        getattr(command, verb)(config, revision)


def test_state_and_step_logs_written_before_packing_stay_readable(db_url: str) -> None:
    """0008 packs instance state and step logs; rows from before it read the same."""
    import json

    from sqlalchemy import text

    from engine.store import InstanceRow, StepRow

    db = Database(db_url)
    state = json.dumps({"tasks": {"a": {"data": {"x": 1}}}, "note": "é" * 300})
    changed = {"meeting": {"title": "Plan", "participants": [1, 2]}}
    exchanges = [{"method": "POST", "status": 200, "response_body": "{}" * 200}]
    try:
        _alembic(db, "upgrade", "0007")
        with db.engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO deployments (id, filename, content_hash, xml, deployed_by, "
                    "deployed_at) VALUES (1, 'p.bpmn', 'h', '<x/>', 't', CURRENT_TIMESTAMP)"
                )
            )
            conn.execute(
                text(
                    "INSERT INTO process_versions (id, process_id, version, name, "
                    "deployment_id, content_hash, spec, created_at) "
                    "VALUES (1, 'p', 1, 'P', 1, 'h', '{}', CURRENT_TIMESTAMP)"
                )
            )
            conn.execute(
                text(
                    "INSERT INTO instances (id, process_id, version_id, state, workflow, "
                    "cause, runs, created_at, updated_at) VALUES (1, 'p', 1, 'completed', "
                    ":state, '{}', 1, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
                ),
                {"state": state},
            )
            conn.execute(
                text(
                    "INSERT INTO steps (instance_id, task_id, element_id, element_name, "
                    "element_type, outcome, started_at, duration_ms, changed, exchanges) "
                    "VALUES (1, 't', 'e', '', '', 'completed', CURRENT_TIMESTAMP, 1, "
                    ":changed, :exchanges)"
                ),
                {"changed": json.dumps(changed), "exchanges": json.dumps(exchanges)},
            )
        migrate(db)
        with db.session() as s:
            instance, step = s.get(InstanceRow, 1), s.scalars(select(StepRow)).one()
            assert instance is not None
            assert instance.workflow == state
            assert (step.changed, step.exchanges) == (changed, exchanges)
            step.changed = {**changed, "more": "x" * 500}  # written packed from now on
            instance.workflow = state + " "
        with db.engine.connect() as conn:
            raw = conn.execute(text("SELECT changed FROM steps")).scalar()
        assert isinstance(raw, bytes | memoryview) and bytes(raw)[:1] == b"x"  # zlib
        _alembic(db, "downgrade", "0007")
        with db.engine.connect() as conn:
            workflow = conn.execute(text("SELECT workflow FROM instances")).scalar()
            back = conn.execute(text("SELECT changed, exchanges FROM steps")).one()
        assert workflow == state + " "
        loaded = [json.loads(v) if isinstance(v, str) else v for v in back]
        assert loaded == [{**changed, "more": "x" * 500}, exchanges]
    finally:
        db.dispose()


def test_values_packed_against_a_dictionary_are_repacked_plainly_by_the_downgrade(
    db_url: str,
) -> None:
    """0009 learns a dictionary per process version; going back to 0008 unpacks with it."""
    import json
    import zlib

    from sqlalchemy import text

    from engine.store import InstanceRow, ProcessVersionRow, StepRow, pack, pack_json

    db = Database(db_url)
    dictionary = json.dumps({"record": {"title": "Plan", "participants": [1, 2, 3]}}).encode()
    state = json.dumps({"record": {"title": "Review", "participants": [4, 5]}, "x": 1})
    changed = {"record": {"title": "Review", "participants": [4, 5]}}
    try:
        migrate(db)
        with db.engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO deployments (id, filename, content_hash, xml, deployed_by, "
                    "deployed_at) VALUES (1, 'p.bpmn', 'h', '<x/>', 't', CURRENT_TIMESTAMP)"
                )
            )
        with db.session() as s:
            s.add(
                ProcessVersionRow(
                    id=1,
                    process_id="p",
                    version=1,
                    deployment_id=1,
                    content_hash="h",
                    spec="{}",
                    pack_dictionary=dictionary,
                )
            )
            s.flush()
            s.add(
                InstanceRow(
                    id=1,
                    process_id="p",
                    version_id=1,
                    state="completed",
                    workflow=pack(state.encode(), dictionary),
                    cause={},
                )
            )
            s.flush()
            s.add(
                StepRow(
                    instance_id=1,
                    task_id="t",
                    element_id="e",
                    element_name="",
                    element_type="",
                    outcome="completed",
                    duration_ms=1.0,
                    changed=pack_json(changed, dictionary),
                    exchanges=None,
                )
            )
        with db.engine.connect() as conn:
            raw = conn.execute(text("SELECT workflow FROM instances")).scalar()
        assert bytes(raw)[:1] == b"\x01"  # packed against the dictionary
        _alembic(db, "downgrade", "0008")
        with db.engine.connect() as conn:
            workflow = conn.execute(text("SELECT workflow FROM instances")).scalar()
            step = conn.execute(text("SELECT changed, exchanges FROM steps")).one()
            columns = {c["name"] for c in inspect(conn).get_columns("process_versions")}
        assert "pack_dictionary" not in columns
        assert zlib.decompress(bytes(workflow)).decode() == state
        assert json.loads(zlib.decompress(bytes(step.changed))) == changed
        assert step.exchanges is None
        migrate(db)  # and up again
        assert current_revision(db) == head_revision(db)
    finally:
        db.dispose()


def test_pending_outbox_values_move_to_their_own_table_and_back(db_url: str) -> None:
    """0010 moves a pending event's values out of the event; dispatched ones had none."""
    import base64
    import json
    import zlib

    from sqlalchemy import text

    from engine.store import OutboxEvent

    db = Database(db_url)
    new = {"id": 1, "title": "Plan " * 60, "participants": [1, 2]}  # packed by 0008's type
    old = {"id": 1, "title": "Draft"}  # small: stored as it is
    packed_new = json.dumps(base64.b64encode(zlib.compress(json.dumps(new).encode())).decode())
    try:
        _alembic(db, "upgrade", "0009")
        with db.engine.begin() as conn:
            for event_id, values, dispatched in (
                (1, (json.dumps(old), packed_new), None),
                (2, (None, None), "2026-01-01 00:00:00"),
            ):
                conn.execute(
                    text(
                        "INSERT INTO outbox_events (id, catalog, record_id, kind, changed, "
                        "old, new, cause_kind, created_at, dispatched_at) VALUES (:id, 'm', 1, "
                        "'updated', '[\"title\"]', :old, :new, 'user', CURRENT_TIMESTAMP, :at)"
                        if db.is_sqlite
                        else "INSERT INTO outbox_events (id, catalog, record_id, kind, changed, "
                        "old, new, cause_kind, created_at, dispatched_at) VALUES (:id, 'm', 1, "
                        "'updated', '[\"title\"]', CAST(:old AS jsonb), CAST(:new AS jsonb), "
                        "'user', CURRENT_TIMESTAMP, CAST(:at AS timestamptz))"
                    ),
                    {"id": event_id, "old": values[0], "new": values[1], "at": dispatched},
                )
        migrate(db)
        with db.session() as s:
            pending, dispatched = s.scalars(select(OutboxEvent).order_by(OutboxEvent.id)).all()
            assert (pending.old, pending.new) == (old, new)
            assert (dispatched.old, dispatched.new, dispatched.values) == (None, None, None)
        _alembic(db, "downgrade", "0009")
        with db.engine.connect() as conn:
            back = conn.execute(text("SELECT old, new FROM outbox_events ORDER BY id")).all()
        loaded = [[json.loads(v) if isinstance(v, str) else v for v in row] for row in back]
        assert loaded == [[old, new], [None, None]]
        migrate(db)
        assert current_revision(db) == head_revision(db)
    finally:
        db.dispose()
