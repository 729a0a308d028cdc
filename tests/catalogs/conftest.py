"""Fixtures for catalog and record tests: the reference catalogs, on both databases."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import select

from engine.runtime import Project
from engine.store import Database, OutboxEvent, RecordRow, migrate

EMPLOYEES = """\
title: Employees
fields:
  name: {type: text, required: true, max_length: 40}
  email: {type: email, required: true}
  active: {type: boolean, default: true}
  level: number
  team: {type: choice, options: [sales, engineering, support]}
  manager: {type: link, catalog: employees}
  skills: emails
"""

MEETINGS = """\
title: Meetings
description: Meetings mirrored to Google Calendar
fields:
  title: {type: text, required: true}
  agenda: text
  starts_at: {type: datetime, required: true}
  ends_at: datetime
  day: date
  organizer: {type: link, catalog: employees}
  participants: {type: link, catalog: employees, many: true}
  extra_participants: {type: emails, default: []}
  status: {type: choice, options: [planned, held, cancelled], default: planned}
  calendar_event_id: {type: text, readonly: true}
  details: json
"""


@pytest.fixture
def employees_yaml() -> str:
    return EMPLOYEES


@pytest.fixture
def meetings_yaml() -> str:
    return MEETINGS


@pytest.fixture
def project(open_test_project: Callable[..., Project]) -> Project:
    """A project with the employees and meetings catalogs, on SQLite or PostgreSQL."""
    return open_test_project(catalogs={"employees": EMPLOYEES, "meetings": MEETINGS})


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    """A migrated, empty database with no catalogs yet."""
    database = Database(db_url)
    migrate(database)
    yield database
    database.dispose()


@pytest.fixture
def outbox(project: Project) -> Callable[[], list[OutboxEvent]]:
    """Every committed outbox event of ``project``, oldest first."""

    def read() -> list[OutboxEvent]:
        with project.db.session() as session:
            return list(session.scalars(select(OutboxEvent).order_by(OutboxEvent.id)))

    return read


@pytest.fixture
def record_rows(project: Project) -> Callable[[str], list[dict[str, Any]]]:
    """The committed data of every record of a catalog, oldest first."""

    def read(catalog: str) -> list[dict[str, Any]]:
        with project.db.session() as session:
            rows = session.scalars(
                select(RecordRow).where(RecordRow.catalog == catalog).order_by(RecordRow.id)
            )
            return [{"id": r.id, **r.data} for r in rows]

    return read
