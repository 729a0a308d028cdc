"""SQLite under threads: writers queue in the process, readers never wait for them."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from engine.store import Database, RecordRow, _db, migrate


def _database(tmp_path: Path) -> Database:
    db = Database(f"sqlite:///{tmp_path / 'catflow.db'}")
    migrate(db)
    return db


@contextmanager
def _write_lock_held(db: Database, n: int) -> Iterator[None]:
    """Another thread inside a write transaction (record ``n`` written, not committed)
    for the block; it commits when the block ends."""
    holding = threading.Event()
    let_go = threading.Event()

    def hold() -> None:
        with db.session() as s:
            s.add(RecordRow(catalog="items", data={"n": n}))
            s.flush()
            holding.set()
            let_go.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert holding.wait(10)
        yield
    finally:
        let_go.set()
        holder.join()


def test_writers_of_one_process_take_turns_without_errors(tmp_path: Path) -> None:
    db = _database(tmp_path)
    failures: list[BaseException] = []

    def write(n: int) -> None:
        try:
            for i in range(25):
                with db.session() as s:
                    s.add(RecordRow(catalog="items", data={"n": n, "i": i}))
        except BaseException as exc:  # reported below
            failures.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    with db.read_session() as s:
        assert s.scalar(select(func.count()).select_from(RecordRow)) == 200
    db.dispose()


def test_a_reader_does_not_wait_for_an_open_write_transaction(tmp_path: Path) -> None:
    db = _database(tmp_path)
    with db.session() as s:
        s.add(RecordRow(catalog="items", data={"n": 1}))
    with _write_lock_held(db, 2):
        started = time.monotonic()
        with db.read_session() as s:  # sees the last committed state, at once
            count = s.scalar(select(func.count()).select_from(RecordRow))
        waited = time.monotonic() - started
    assert count == 1
    assert waited < 5, f"the reader waited {waited:.1f} s for the writer"
    with db.read_session() as s:
        assert s.scalar(select(func.count()).select_from(RecordRow)) == 2
    db.dispose()


def test_a_write_transaction_that_fails_lets_the_next_writer_in(tmp_path: Path) -> None:
    db = _database(tmp_path)
    try:
        with db.session() as s:
            s.add(RecordRow(catalog="items", data={"n": 1}))
            s.flush()
            raise RuntimeError("the step failed")
    except RuntimeError:
        pass
    done = threading.Event()

    def write() -> None:
        with db.session() as s:
            s.add(RecordRow(catalog="items", data={"n": 2}))
        done.set()

    threading.Thread(target=write).start()
    assert done.wait(10), "the write lock was not given back after a rollback"
    db.dispose()


def test_a_writer_that_never_gets_its_turn_fails_as_store_trouble(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The executor and the API handle SQLAlchemy's OperationalError (retry later, 503);
    a writer that gave up waiting must fail with that, not with the driver's own error."""
    monkeypatch.setattr(_db, "_BUSY_SECONDS", 0.3)
    db = _database(tmp_path)
    with (
        _write_lock_held(db, 1),
        pytest.raises(OperationalError, match="database is locked"),
        db.session() as s,
    ):
        s.add(RecordRow(catalog="items", data={"n": 2}))
    with db.session() as s:  # the one that gave up holds no turn: the next gets in
        s.add(RecordRow(catalog="items", data={"n": 3}))
    with db.read_session() as s:
        assert sorted(s.scalars(select(RecordRow.data["n"].as_integer()))) == [1, 3]
    db.dispose()
