"""Every record change writes its outbox event in the same transaction, or neither is written."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select

from engine.catalogs import Cause, Record
from engine.errors import Conflict, ValidationFailed
from engine.runtime import Project
from engine.store import OutboxEvent

ADA = Cause.person("ada")
PROCESS = Cause.instance(41, "meeting_to_calendar")

Rows = Callable[[str], list[dict[str, Any]]]
Outbox = Callable[[], list[OutboxEvent]]


class Boom(Exception):
    """Something that goes wrong after the change, in the same transaction."""


def meeting(**data: Any) -> dict[str, Any]:
    return {"title": "Weekly sync", "starts_at": "2026-11-23T09:30:00+01:00", **data}


def create(project: Project, data: dict[str, Any], cause: Cause = ADA) -> Record:
    with project.db.session() as session:
        return project.records.create(session, "meetings", data, cause)


def test_create_writes_a_created_event_with_the_new_values_and_the_user(
    project: Project, outbox: Outbox
) -> None:
    record = create(project, meeting(agenda="Roadmap"))
    (event,) = outbox()
    assert (event.catalog, event.record_id, event.kind) == ("meetings", record.id, "created")
    # Fields given or defaulted; empty ones are not "changed".
    assert event.changed == ["title", "agenda", "starts_at", "extra_participants", "status"]
    assert event.old is None
    assert event.new == record.as_dict()
    assert event.new["status"] == "planned"
    assert (event.cause_kind, event.cause_user) == ("user", "ada")
    assert event.cause_instance_id is None and event.cause_process_id is None
    assert event.dispatched_at is None  # waiting for the dispatcher
    assert event.created_at.tzinfo is not None


def test_update_writes_the_changed_fields_old_and_new_values_and_the_instance(
    project: Project, outbox: Outbox
) -> None:
    record = create(project, meeting(agenda="Roadmap"))
    with project.db.session() as session:
        updated = project.records.update(
            session,
            "meetings",
            record.id,
            {"agenda": "Budget", "title": "Weekly sync", "calendar_event_id": "evt-1"},
            PROCESS,
        )
    created, event = outbox()
    assert created.kind == "created"
    assert (event.kind, event.record_id) == ("updated", record.id)
    assert event.changed == ["agenda", "calendar_event_id"]  # the title did not change
    assert event.old == record.as_dict()
    assert event.new == updated.as_dict()
    assert (event.old["agenda"], event.new["agenda"]) == ("Roadmap", "Budget")
    assert event.cause_kind == "instance"
    assert (event.cause_instance_id, event.cause_process_id) == (41, "meeting_to_calendar")
    assert event.cause_user is None


def test_delete_writes_the_last_values(project: Project, outbox: Outbox) -> None:
    record = create(project, meeting())
    with project.db.session() as session:
        project.records.delete(session, "meetings", record.id, Cause.person("grace"))
    event = outbox()[-1]
    assert (event.kind, event.record_id) == ("deleted", record.id)
    assert event.old == record.as_dict()
    assert event.new is None
    assert event.changed == list(record.data)
    assert event.cause_user == "grace"


def test_an_update_that_changes_nothing_writes_no_event(project: Project, outbox: Outbox) -> None:
    record = create(project, meeting(agenda="Roadmap"))
    with project.db.session() as session:
        project.records.update(session, "meetings", record.id, {"agenda": "Roadmap"}, ADA)
        project.records.update(session, "meetings", record.id, {}, ADA)
    assert [e.kind for e in outbox()] == ["created"]


def test_events_come_in_the_order_of_the_changes(project: Project, outbox: Outbox) -> None:
    first = create(project, meeting(title="One"))
    second = create(project, meeting(title="Two"))
    with project.db.session() as session:
        project.records.update(session, "meetings", first.id, {"title": "Uno"}, ADA)
        project.records.delete(session, "meetings", second.id, ADA)
        project.records.update(session, "meetings", first.id, {"agenda": "x"}, ADA)
    assert [(e.kind, e.record_id) for e in outbox()] == [
        ("created", first.id),
        ("created", second.id),
        ("updated", first.id),
        ("deleted", second.id),
        ("updated", first.id),
    ]


def test_the_event_is_part_of_the_changes_transaction(project: Project, outbox: Outbox) -> None:
    with project.db.session() as session:
        record = project.records.create(session, "meetings", meeting(), ADA)
        pending = session.scalars(select(OutboxEvent)).all()
        assert [(e.kind, e.record_id) for e in pending] == [("created", record.id)]
    assert [e.record_id for e in outbox()] == [record.id]


def test_a_create_that_does_not_commit_leaves_neither_record_nor_event(
    project: Project, outbox: Outbox, record_rows: Rows
) -> None:
    with pytest.raises(Boom), project.db.session() as session:
        project.records.create(session, "meetings", meeting(), ADA)
        raise Boom
    assert record_rows("meetings") == []
    assert outbox() == []


def test_an_update_that_does_not_commit_leaves_neither_change_nor_event(
    project: Project, outbox: Outbox
) -> None:
    record = create(project, meeting(title="Before"))
    with pytest.raises(Boom), project.db.session() as session:
        project.records.update(session, "meetings", record.id, {"title": "After"}, ADA)
        raise Boom
    with project.db.session() as session:
        again = project.records.get(session, "meetings", record.id)
    assert (again.data["title"], again.version) == ("Before", 1)
    assert [e.kind for e in outbox()] == ["created"]


def test_a_delete_that_does_not_commit_leaves_the_record_and_no_event(
    project: Project, outbox: Outbox, record_rows: Rows
) -> None:
    record = create(project, meeting())
    with pytest.raises(Boom), project.db.session() as session:
        project.records.delete(session, "meetings", record.id, ADA)
        raise Boom
    assert [r["id"] for r in record_rows("meetings")] == [record.id]
    assert [e.kind for e in outbox()] == ["created"]


def test_a_refused_change_in_a_transaction_that_commits_adds_nothing(
    project: Project, outbox: Outbox, record_rows: Rows
) -> None:
    with project.db.session() as session:
        kept = project.records.create(session, "meetings", meeting(title="Kept"), ADA)
        with pytest.raises(ValidationFailed):
            project.records.create(session, "meetings", meeting(status="unknown"), ADA)
        with pytest.raises(ValidationFailed):
            project.records.update(session, "meetings", kept.id, {"day": "soon"}, ADA)
    assert [r["title"] for r in record_rows("meetings")] == ["Kept"]
    assert [(e.kind, e.record_id) for e in outbox()] == [("created", kept.id)]


# -- idempotent create ---------------------------------------------------------


def test_a_repeated_create_with_an_idempotency_key_returns_the_first_record(
    project: Project, outbox: Outbox, record_rows: Rows
) -> None:
    key = "instance:41:task:create-meeting"
    with project.db.session() as session:
        first = project.records.create(
            session, "meetings", meeting(title="First"), PROCESS, idempotency_key=key
        )
    with project.db.session() as session:
        # A replay after a crash: same key, maybe different data; the first one stands.
        again = project.records.create(
            session, "meetings", meeting(title="Second"), PROCESS, idempotency_key=key
        )
    assert again.id == first.id
    assert again.data["title"] == "First"
    assert [r["title"] for r in record_rows("meetings")] == ["First"]
    assert [e.kind for e in outbox()] == ["created"]
    with project.db.session() as session:
        other = project.records.create(
            session, "meetings", meeting(title="Other"), PROCESS, idempotency_key=key + "x"
        )
    assert other.id != first.id
    assert len(outbox()) == 2


def test_an_idempotency_key_of_another_catalog_is_a_conflict_not_a_replay(
    project: Project, outbox: Outbox
) -> None:
    with project.db.session() as session:
        employee = project.records.create(
            session, "employees", {"name": "Ada", "email": "ada@example.com"}, PROCESS,
            idempotency_key="k",
        )  # fmt: skip
    with pytest.raises(Conflict) as exc, project.db.session() as session:
        project.records.create(session, "meetings", meeting(), PROCESS, idempotency_key="k")
    assert exc.value.message == (
        f"idempotency key 'k' was already used to create employees record {employee.id}, "
        "not a meetings record"
    )
    assert [e.catalog for e in outbox()] == ["employees"]


def test_a_repeat_within_the_same_transaction_returns_the_first_record(
    project: Project, outbox: Outbox
) -> None:
    with project.db.session() as session:
        first = project.records.create(session, "meetings", meeting(), PROCESS, idempotency_key="k")
        again = project.records.create(session, "meetings", meeting(), PROCESS, idempotency_key="k")
    assert again.id == first.id
    assert len(outbox()) == 1


def test_a_rolled_back_create_does_not_use_up_its_idempotency_key(
    project: Project, outbox: Outbox
) -> None:
    with pytest.raises(Boom), project.db.session() as session:
        project.records.create(session, "meetings", meeting(), PROCESS, idempotency_key="k")
        raise Boom
    with project.db.session() as session:
        record = project.records.create(
            session, "meetings", meeting(), PROCESS, idempotency_key="k"
        )
    assert [e.record_id for e in outbox()] == [record.id]


def test_concurrent_creates_with_one_key_make_one_record_and_one_event(
    project: Project, outbox: Outbox, record_rows: Rows
) -> None:
    """Two workers replay the same task at once: the second waits and gets the first's record."""
    first_session = project.db.new_session()
    first_session.begin()
    first = project.records.create(
        first_session, "meetings", meeting(title="A"), PROCESS, idempotency_key="k"
    )
    results: list[Record | BaseException] = []

    def second_worker() -> None:
        try:
            with project.db.session() as session:
                results.append(
                    project.records.create(
                        session, "meetings", meeting(title="B"), PROCESS, idempotency_key="k"
                    )
                )
        except BaseException as exc:  # reported below, in the test's thread
            results.append(exc)

    worker = threading.Thread(target=second_worker)
    worker.start()
    time.sleep(0.3)  # let the second create reach the database and wait on the first
    first_session.commit()
    first_session.close()
    worker.join(timeout=30)
    assert not worker.is_alive()
    (second,) = results
    assert isinstance(second, Record), second
    assert second.id == first.id
    assert [r["title"] for r in record_rows("meetings")] == ["A"]
    assert len(outbox()) == 1
