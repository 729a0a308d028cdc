"""Pooled PostgreSQL connections: checked before use only after sitting idle.

A restart of PostgreSQL (here: its backend terminated) kills the connections a pool
holds. One that sat idle is checked and replaced before a session uses it; one that
was in use a moment ago is not checked (that check was a round trip per session),
so the statement it runs fails once, and every session after it gets a fresh one.
"""

from __future__ import annotations

import time

import pytest
from pg_helpers import terminate
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from engine.store import Database, _db

pytestmark = pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)


def _backend(db: Database) -> int:
    with db.session() as s:
        return int(s.execute(text("SELECT pg_backend_pid()")).scalar_one())


def test_an_idle_connection_that_died_is_replaced_before_a_session_uses_it(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_db, "PING_AFTER_IDLE_SECONDS", 0.05)
    db = Database(db_url)
    try:
        dead = _backend(db)
        terminate(db_url, [dead])
        time.sleep(0.1)
        with db.session() as s:  # no error: the check found it dead and reconnected
            assert s.execute(text("SELECT 1")).scalar() == 1
        assert _backend(db) != dead
    finally:
        db.dispose()


def test_a_connection_in_use_a_moment_ago_is_not_checked_and_the_pool_recovers(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_db, "PING_AFTER_IDLE_SECONDS", 60)  # "a moment", however slow
    db = Database(db_url)
    try:
        dead = _backend(db)
        terminate(db_url, [dead])
        with pytest.raises(OperationalError), db.session() as s:
            s.execute(text("SELECT 1"))  # no check first: it meets the dead backend
        with db.session() as s:  # the failure invalidated the pool
            assert s.execute(text("SELECT 1")).scalar() == 1
        assert _backend(db) != dead
    finally:
        db.dispose()
