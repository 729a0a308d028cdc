"""Read sessions: what a reader may rely on, on each store."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import text

from engine.store import Database


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_a_postgresql_read_session_spends_no_round_trips_on_a_transaction(db_url: str) -> None:
    """Each statement of a read session is a transaction of its own (autocommit): no
    BEGIN and COMMIT around it, and a later statement sees a later moment."""
    db = Database(db_url)
    try:
        with db.read_session() as s:
            first = s.execute(text("SELECT transaction_timestamp()")).scalar()
            time.sleep(0.01)
            second = s.execute(text("SELECT transaction_timestamp()")).scalar()
            in_block = s.execute(text("SELECT now() = statement_timestamp()")).scalar()
        assert second > first
        assert in_block is True
        with db.session() as s:  # a write session is one transaction, as ever
            first = s.execute(text("SELECT transaction_timestamp()")).scalar()
            time.sleep(0.01)
            second = s.execute(text("SELECT transaction_timestamp()")).scalar()
        assert second == first
    finally:
        db.dispose()


def test_a_read_session_sees_what_others_committed_before_it_began(db_url: str) -> None:
    db = Database(db_url)
    try:
        with db.session() as s:
            s.execute(text("CREATE TABLE notes (n INTEGER)"))
        with db.session() as s:
            s.execute(text("INSERT INTO notes VALUES (1)"))
        with db.read_session() as s:
            assert s.execute(text("SELECT count(*) FROM notes")).scalar() == 1
    finally:
        db.dispose()


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_a_postgresql_statement_session_commits_each_write_on_its_own(db_url: str) -> None:
    """What a worker claims instances in: each statement its own transaction (no
    BEGIN and COMMIT round trips), so a write is visible to others at once."""
    db = Database(db_url)
    try:
        with db.session() as s:
            s.execute(text("CREATE TABLE claims (n INTEGER)"))
        with db.statement_session() as s:
            s.execute(text("INSERT INTO claims VALUES (1)"))
            with db.read_session() as other:  # committed already, before the block ends
                assert other.execute(text("SELECT count(*) FROM claims")).scalar() == 1
            first = s.execute(text("SELECT transaction_timestamp()")).scalar()
            time.sleep(0.01)
            second = s.execute(text("SELECT transaction_timestamp()")).scalar()
        assert second > first
    finally:
        db.dispose()
