"""One connection's rate limit across processes and machines (PostgreSQL).

Celery workers run on several machines, each with its own processes; the limit of
a connection (Google's 600 a minute per user) must hold for all of them together.
On PostgreSQL the token buckets live in the database; on SQLite (one machine) each
process keeps its own, with a share of the limit.
"""

from __future__ import annotations

from typing import Any

import pytest
from calendar_flow import connect, detail, http_settings, one_call, start_and_run
from sqlalchemy import select

from engine.components.outbound import SharedRateLimiter
from engine.emulators.calendar import CalendarEmulator
from engine.runtime import Project, Runner, start_process
from engine.store import Database, RateBucketRow, migrate


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_two_processes_draw_from_one_bucket_per_connection(db_url: str) -> None:
    one, two = Database(db_url), Database(db_url)  # as two processes would have
    try:
        migrate(one)
        # One every 10 s, a burst of 1: the time between the calls (ms; more on a busy
        # machine) moves the answers by that much, never across the thresholds.
        first = SharedRateLimiter(one, 6)
        second = SharedRateLimiter(two, 6)
        assert first.acquire("google", max_wait_s=0.5) == (True, 0.0)
        taken, wait = second.acquire("google", max_wait_s=0.5)  # the other process's turn
        assert not taken and 8 < wait <= 10
        taken, wait = second.acquire("google", max_wait_s=30)  # reserved, 10 s ahead
        assert taken and 8 < wait <= 10
        taken, wait = first.acquire("google", max_wait_s=30)  # and the next one after it
        assert taken and 18 < wait <= 20
        assert second.acquire("other", max_wait_s=0.5) == (True, 0.0)  # per connection
    finally:
        one.dispose()
        two.dispose()


def test_the_engine_keeps_its_buckets_in_the_database_only_on_postgresql(
    open_test_project: Any, db_url: str, emulator: CalendarEmulator
) -> None:
    project: Project = open_test_project(
        processes={"call": one_call("google_calendar.calendar_list.list")},
        **http_settings(emulator, connection_rate_per_minute=60),
    )
    connect(project, emulator)
    assert detail(project, start_and_run(project))["state"] == "completed"
    with project.db.session() as s:
        buckets = s.scalars(select(RateBucketRow.key)).all()
    assert buckets == ([] if db_url.startswith("sqlite") else ["google"])


def test_a_rate_of_zero_is_no_limit_of_our_own_and_keeps_no_buckets(
    open_test_project: Any, emulator: CalendarEmulator
) -> None:
    """At 60 a minute (a burst of 1), with no waiting in line, the second call would be
    put off a second; with 0, twelve calls go at once, and no bucket is written for
    them on either store."""
    project: Project = open_test_project(
        processes={"call": one_call("google_calendar.calendar_list.list")},
        # No waiting in line: a call the limit held back would be put off instead.
        **http_settings(emulator, connection_rate_per_minute=0, http_max_inline_wait=0.0),
    )
    assert project.settings.connection_rate_per_minute == 0
    connect(project, emulator)
    with project.db.session() as s:
        ids = [start_process(s, "call", {}, {"kind": "test"}).id for _ in range(12)]
    Runner(project, workers=1).run_once()
    for instance_id in ids:
        shown = detail(project, instance_id)
        assert shown["state"] == "completed", shown
        assert not any("rate limit" in (step["message"] or "") for step in shown["steps"])
    with project.db.session() as s:
        assert s.scalars(select(RateBucketRow.key)).all() == []
