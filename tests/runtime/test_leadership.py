"""Exactly one dispatcher and one scheduler lead; a stand-by takes over when the leader dies."""

from __future__ import annotations

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
