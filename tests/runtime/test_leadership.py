"""Exactly one dispatcher and one scheduler lead; a stand-by takes over when the leader dies."""

from __future__ import annotations

import pytest

from engine.runtime._leader import Leadership
from engine.store import Database


def test_one_leader_per_role_and_a_stand_by_takes_over(db_url: str) -> None:
    first_db, second_db, third_db = Database(db_url), Database(db_url), Database(db_url)
    first = Leadership(first_db, "scheduler")
    second = Leadership(second_db, "scheduler")
    other_role = Leadership(second_db, "dispatcher")
    third = Leadership(third_db, "scheduler")
    try:
        assert first.held()
        if first_db.is_sqlite:
            # One machine, one `catflow serve`: SQLite always leads.
            assert second.held()
            return
        assert not second.held()  # stands by
        assert first.held()  # and the leader stays leader
        assert other_role.held()  # roles are independent
        # The leader's process dies: its session ends without unlocking anything.
        first._drop()
        assert second.held()  # the stand-by's next try takes over
        assert not third.held()
    finally:
        for lead in (first, second, other_role, third):
            lead.release()
        for db in (first_db, second_db, third_db):
            db.dispose()


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)  # SQLite always leads
def test_a_leader_notices_its_lost_connection_at_the_next_recheck(db_url: str) -> None:
    """Liveness is checked once per ``recheck_seconds``, not on every call; a leader
    whose database session was killed finds out at the next check and leads again on
    a new connection (nobody else holds the lock)."""
    from sqlalchemy import text

    db, admin = Database(db_url), Database(db_url)
    now = [100.0]
    lead = Leadership(db, "scheduler", recheck_seconds=1.0, clock=lambda: now[0])
    try:
        assert lead.held()
        backend = lead._connection.execute(text("SELECT pg_backend_pid()")).scalar()
        lead._connection.commit()
        with admin.engine.connect() as conn:
            conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": backend})
            conn.commit()
        now[0] += 0.5
        assert lead.held()  # within the window: not checked, still counted as leading
        assert lead._connection is not None
        now[0] += 1.0
        assert lead.held()  # checked: the dead session is dropped, the lock taken anew
        pid = lead._connection.execute(text("SELECT pg_backend_pid()")).scalar()
        assert pid != backend
    finally:
        lead.release()
        db.dispose()
        admin.dispose()
