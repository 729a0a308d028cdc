"""The record service on real databases: create, get, find, update, delete and validation."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import text

from engine.catalogs import Cause, Record
from engine.errors import Conflict, NotFound, ValidationFailed
from engine.runtime import Project
from engine.store import OutboxEvent

ADA = Cause.person("ada")
PROCESS = Cause.instance(41, "meeting_to_calendar")

Rows = Callable[[str], list[dict[str, Any]]]
Outbox = Callable[[], list[OutboxEvent]]


def create(project: Project, catalog: str, data: dict[str, Any], cause: Cause = ADA) -> Record:
    with project.db.session() as session:
        return project.records.create(session, catalog, data, cause)


def update(
    project: Project, catalog: str, record_id: int, changes: dict[str, Any], cause: Cause = ADA
) -> Record:
    with project.db.session() as session:
        return project.records.update(session, catalog, record_id, changes, cause)


def get(project: Project, catalog: str, record_id: int) -> Record:
    with project.db.session() as session:
        return project.records.get(session, catalog, record_id)


def find(project: Project, catalog: str, filters: dict[str, Any], **paging: int) -> list[int]:
    with project.db.session() as session:
        return [r.id for r in project.records.find(session, catalog, filters, **paging).items]


def refused(call: Callable[[], object]) -> dict[str, str]:
    """The problems of a refused call, by where they are."""
    with pytest.raises(ValidationFailed) as exc:
        call()
    return {p.where: p.message for p in exc.value.problems}


def employee(project: Project, name: str, **data: Any) -> int:
    email = f"{name.lower()}@example.com"
    return create(project, "employees", {"name": name, "email": email, **data}).id


def meeting(**data: Any) -> dict[str, Any]:
    return {"title": "Weekly sync", "starts_at": "2026-11-23T09:30:00+01:00", **data}


# -- create and get ------------------------------------------------------------


def test_create_stores_every_field_with_defaults_and_get_reads_it_back(project: Project) -> None:
    ada = employee(project, "Ada")
    created = create(
        project,
        "meetings",
        meeting(
            agenda="Roadmap",
            starts_at="2026-11-23T08:30:00Z",
            day="2026-11-23",
            participants=[ada],
            extra_participants=["Guest@Example.org"],
            details={"room": "Blue", "remote": True},
        ),
    )
    assert created.id > 0 and created.catalog == "meetings" and created.version == 1
    assert created.created_at.tzinfo is not None
    assert created.data == {
        "title": "Weekly sync",
        "agenda": "Roadmap",
        "starts_at": "2026-11-23T08:30:00+00:00",
        "ends_at": None,
        "day": "2026-11-23",
        "organizer": None,
        "participants": [ada],
        "extra_participants": ["Guest@example.org"],
        "status": "planned",
        "calendar_event_id": None,
        "details": {"room": "Blue", "remote": True},
    }
    read = get(project, "meetings", created.id)
    assert read.data == created.data
    # Fields come in the catalog's order on both databases.
    assert list(read.data) == list(project.records.catalog("meetings").fields)
    assert read.as_dict() == {"id": created.id, **created.data}


def test_datetimes_keep_their_offset_through_storage(project: Project) -> None:
    rid = create(project, "meetings", meeting(ends_at="2026-11-23T10:00:00-05:00")).id
    data = get(project, "meetings", rid).data
    assert data["starts_at"] == "2026-11-23T09:30:00+01:00"
    assert data["ends_at"] == "2026-11-23T10:00:00-05:00"


def test_invalid_data_is_refused_per_field_and_writes_nothing(
    project: Project, record_rows: Rows, outbox: Outbox
) -> None:
    problems = refused(
        lambda: create(
            project,
            "meetings",
            {
                "title": "",
                "starts_at": "2026-11-23T09:30:00",
                "day": "tomorrow",
                "extra_participants": ["ok@example.com", "nope"],
                "status": "done",
                "room": "Blue",
            },
        )
    )
    assert set(problems) == {
        "meetings.title",
        "meetings.starts_at",
        "meetings.day",
        "meetings.extra_participants",
        "meetings.status",
        "meetings.room",
    }
    assert problems["meetings.title"] == "is required"
    assert "has no UTC offset" in problems["meetings.starts_at"]
    assert "2026-11-23T09:30:00Z" in problems["meetings.starts_at"]
    assert problems["meetings.extra_participants"].startswith("item 1: 'nope'")
    assert problems["meetings.status"] == "'done' is not one of: planned, held, cancelled"
    assert problems["meetings.room"] == "unknown field"
    assert record_rows("meetings") == []
    assert outbox() == []


def test_a_refusal_says_what_to_do(project: Project) -> None:
    with pytest.raises(ValidationFailed) as exc:
        create(project, "meetings", {"starts_at": "2026-11-23T09:30:00Z", "room": "Blue"})
    text = str(exc.value)
    assert text.startswith("the meetings record was refused")
    assert "meetings.title: is required (give a text value)" in text
    assert "meetings.room: unknown field (fields of meetings: title, agenda," in text


def test_required_fields_cannot_be_missing_or_empty(project: Project) -> None:
    assert refused(lambda: create(project, "meetings", {})) == {
        "meetings.title": "is required",
        "meetings.starts_at": "is required",
    }
    assert refused(lambda: create(project, "meetings", meeting(title=None))) == {
        "meetings.title": "is required"
    }


def test_number_boolean_and_text_limits_are_enforced(project: Project) -> None:
    problems = refused(
        lambda: create(
            project,
            "employees",
            {"name": "x" * 41, "email": "e@example.com", "active": "yes", "level": "3"},
        )
    )
    assert problems == {
        "employees.name": "is 41 characters long; at most 40 allowed",
        "employees.active": "expected true or false, got text",
        "employees.level": "expected a number, got text",
    }
    rid = employee(project, "Ada", active=False, level=2.5)
    assert get(project, "employees", rid).data["active"] is False
    assert get(project, "employees", rid).data["level"] == 2.5


def test_links_must_point_to_existing_records_of_their_catalog(
    project: Project, record_rows: Rows
) -> None:
    ada = employee(project, "Ada")
    other_meeting = create(project, "meetings", meeting()).id
    missing = ada + other_meeting + 100
    problems = refused(
        lambda: create(
            project,
            "meetings",
            meeting(organizer=missing, participants=[ada, missing, other_meeting]),
        )
    )
    assert problems == {
        "meetings.organizer": f"employees record {missing} does not exist",
        "meetings.participants": f"employees record {missing} does not exist",
    }
    # A meeting's id is not an employee, even when such a record exists.
    problems = refused(lambda: create(project, "meetings", meeting(organizer=other_meeting)))
    assert problems == {"meetings.organizer": f"employees record {other_meeting} does not exist"}
    assert len(record_rows("meetings")) == 1
    linked = create(project, "meetings", meeting(organizer={"id": ada}, participants=[ada]))
    assert (linked.data["organizer"], linked.data["participants"]) == (ada, [ada])


def test_a_link_may_point_to_its_own_catalog(project: Project) -> None:
    boss = employee(project, "Grace")
    worker = employee(project, "Alan", manager=boss)
    assert get(project, "employees", worker).data["manager"] == boss


def test_readonly_fields_are_set_by_processes_not_by_users(project: Project) -> None:
    problems = refused(lambda: create(project, "meetings", meeting(calendar_event_id="evt1")))
    assert problems == {
        "meetings.calendar_event_id": "is read-only: it is set by processes, not by users"
    }
    rid = create(project, "meetings", meeting(calendar_event_id="evt1"), PROCESS).id
    assert get(project, "meetings", rid).data["calendar_event_id"] == "evt1"
    problems = refused(lambda: update(project, "meetings", rid, {"calendar_event_id": "evt2"}))
    assert "meetings.calendar_event_id" in problems
    update(project, "meetings", rid, {"calendar_event_id": "evt2"}, PROCESS)
    assert get(project, "meetings", rid).data["calendar_event_id"] == "evt2"


def test_a_non_finite_number_is_refused_before_it_reaches_the_database(project: Project) -> None:
    problems = refused(
        lambda: create(project, "employees", {"name": "A", "email": "a@x.org", "level": 1e999})
    )
    assert problems == {"employees.level": "inf cannot be stored; give a finite number"}


def test_an_unknown_catalog_is_not_found_with_the_known_ones(project: Project) -> None:
    with pytest.raises(NotFound) as exc:
        create(project, "meeting", meeting())
    assert str(exc.value) == "no catalog named 'meeting' (known catalogs: employees, meetings)"


# -- update and delete ---------------------------------------------------------


def test_update_changes_only_the_given_fields(project: Project) -> None:
    ada, grace = employee(project, "Ada"), employee(project, "Grace")
    first = create(project, "meetings", meeting(agenda="Roadmap", participants=[ada]))
    updated = update(
        project, "meetings", first.id, {"title": "Planning", "participants": [ada, grace]}
    )
    assert updated.version == 2
    assert updated.updated_at >= first.updated_at
    assert updated.data == {
        **first.data,
        "title": "Planning",
        "participants": [ada, grace],
    }
    assert get(project, "meetings", first.id).data == updated.data


def test_update_can_clear_an_optional_field_but_not_a_required_one(project: Project) -> None:
    rid = create(project, "meetings", meeting(agenda="Roadmap")).id
    assert update(project, "meetings", rid, {"agenda": None}).data["agenda"] is None
    assert refused(lambda: update(project, "meetings", rid, {"title": ""})) == {
        "meetings.title": "is required"
    }


def test_a_refused_update_leaves_the_record_as_it_was(project: Project, outbox: Outbox) -> None:
    before = create(project, "meetings", meeting())
    problems = refused(
        lambda: update(
            project, "meetings", before.id, {"title": "New", "participants": [before.id + 50]}
        )
    )
    assert problems == {
        "meetings.participants": f"employees record {before.id + 50} does not exist"
    }
    after = get(project, "meetings", before.id)
    assert (after.data, after.version) == (before.data, 1)
    assert [e.kind for e in outbox()] == ["created"]


def test_an_update_that_changes_nothing_keeps_the_version_and_emits_nothing(
    project: Project, outbox: Outbox
) -> None:
    rid = create(project, "meetings", meeting(extra_participants=["a@example.com"])).id
    same = update(
        project,
        "meetings",
        rid,
        # The same values, written differently: they normalise to what is stored.
        {"starts_at": "2026-11-23T09:30:00+01:00", "extra_participants": ["a@EXAMPLE.com"]},
    )
    assert same.version == 1
    assert [e.kind for e in outbox()] == ["created"]


def test_a_json_value_changed_from_1_to_true_is_a_change(project: Project) -> None:
    rid = create(project, "meetings", meeting(details={"remote": 1, "rooms": [0]})).id
    changed = update(project, "meetings", rid, {"details": {"remote": True, "rooms": [0]}})
    assert changed.version == 2
    # Compared with `is`: to ==, 1 and True are the same, which is what hid this change.
    assert get(project, "meetings", rid).data["details"]["remote"] is True
    same = update(project, "meetings", rid, {"details": {"rooms": [0], "remote": True}})
    assert same.version == 2  # key order is not a change


def test_delete_removes_the_record(project: Project, record_rows: Rows) -> None:
    keep = create(project, "meetings", meeting(title="Keep")).id
    gone = create(project, "meetings", meeting(title="Gone")).id
    with project.db.session() as session:
        deleted = project.records.delete(session, "meetings", gone, ADA)
    assert deleted.id == gone and deleted.data["title"] == "Gone"
    assert [r["id"] for r in record_rows("meetings")] == [keep]
    with pytest.raises(NotFound, match=f"meetings record {gone} does not exist"):
        get(project, "meetings", gone)


def test_the_id_of_a_deleted_record_is_never_given_again(project: Project) -> None:
    # Outside ids (Calendar events) are derived from record ids; reuse would mix them up.
    first = create(project, "meetings", meeting(title="First")).id
    last = create(project, "meetings", meeting(title="Last")).id
    with project.db.session() as session:
        project.records.delete(session, "meetings", last, ADA)
    again = create(project, "meetings", meeting(title="Again")).id
    assert again > last > first


def delete(project: Project, catalog: str, record_id: int, cause: Cause = ADA) -> Record:
    with project.db.session() as session:
        return project.records.delete(session, catalog, record_id, cause)


def test_deleting_a_record_takes_it_out_of_the_links_that_point_at_it(
    project: Project, outbox: Outbox
) -> None:
    ada, bob = employee(project, "Ada"), employee(project, "Bob")
    alan = employee(project, "Alan", manager=ada)
    kickoff = create(project, "meetings", meeting(organizer=ada, participants=[bob, ada])).id
    retro = create(project, "meetings", meeting(title="Retro", participants=[bob])).id
    seen = len(outbox())
    delete(project, "employees", ada)
    after = get(project, "meetings", kickoff)
    assert (after.data["organizer"], after.data["participants"], after.version) == (None, [bob], 2)
    assert get(project, "employees", alan).data["manager"] is None
    assert get(project, "meetings", retro).version == 1  # never linked to Ada: untouched
    # Each linking record changed as any update does - its own event, so its triggers
    # run (the meetings job updates the event's attendees) - and by whoever deleted.
    events = [(e.catalog, e.record_id, e.kind, e.changed, e.cause_user) for e in outbox()[seen:]]
    assert events == [
        ("employees", alan, "updated", ["manager"], "ada"),
        ("meetings", kickoff, "updated", ["organizer", "participants"], "ada"),
        (
            "employees",
            ada,
            "deleted",
            ["name", "email", "active", "level", "team", "manager", "skills"],
            "ada",
        ),
    ]


def test_a_record_linking_to_itself_is_deleted_with_no_update_of_its_own(
    project: Project, outbox: Outbox
) -> None:
    boss = employee(project, "Grace")
    with project.db.session() as session:
        project.records.update(session, "employees", boss, {"manager": boss}, ADA)
    seen = len(outbox())
    delete(project, "employees", boss)
    assert [(e.record_id, e.kind) for e in outbox()[seen:]] == [(boss, "deleted")]


TASKS = """\
fields:
  title: {type: text, required: true}
  owner: {type: link, catalog: employees, required: true}
  reviewers: {type: link, catalog: employees, many: true, required: true}
"""


def test_a_delete_that_would_empty_a_required_link_is_refused_and_writes_nothing(
    open_test_project: Callable[..., Project], employees_yaml: str, meetings_yaml: str
) -> None:
    project = open_test_project(
        catalogs={"employees": employees_yaml, "meetings": meetings_yaml, "tasks": TASKS}
    )
    ada, bob = employee(project, "Ada"), employee(project, "Bob")
    owned = create(project, "tasks", {"title": "Owned", "owner": ada, "reviewers": [bob]}).id
    reviewed = create(project, "tasks", {"title": "Only Ada", "owner": bob, "reviewers": [ada]}).id
    shared = create(project, "tasks", {"title": "Both", "owner": bob, "reviewers": [ada, bob]}).id
    planned = create(project, "meetings", meeting(participants=[ada, bob])).id
    with pytest.raises(Conflict) as exc:
        delete(project, "employees", ada)
    assert exc.value.message == (
        f"employees record {ada} was not deleted: required links point at it"
    )
    hint = f"point those records elsewhere or delete them, then delete employees record {ada}"
    assert [(p.where, p.message, p.hint) for p in exc.value.problems] == [
        ("tasks.owner", f"1 record(s) ({owned}) link to it, and the field is required", hint),
        (
            "tasks.reviewers",
            f"1 record(s) ({reviewed}) link to it, and the field is required",
            hint,
        ),
    ]
    # Nothing written: Ada is there, and so are every link to her.
    assert get(project, "employees", ada).version == 1
    assert get(project, "tasks", shared).data["reviewers"] == [ada, bob]
    assert get(project, "meetings", planned).data["participants"] == [ada, bob]
    # Once the required links point elsewhere, the delete goes through.
    update(project, "tasks", owned, {"owner": bob})
    update(project, "tasks", reviewed, {"reviewers": [bob]})
    delete(project, "employees", ada)
    assert get(project, "tasks", shared).data["reviewers"] == [bob]


class _Deleting:
    """A record being deleted in a thread of its own (its own session), started now."""

    def __init__(self, project: Project, catalog: str, record_id: int) -> None:
        self.done = threading.Event()
        self.errors: list[BaseException] = []
        self.thread = threading.Thread(target=self._run, args=(project, catalog, record_id))
        self.thread.start()

    def _run(self, project: Project, catalog: str, record_id: int) -> None:
        try:
            delete(project, catalog, record_id)
        except BaseException as exc:  # reported by finish()
            self.errors.append(exc)
        self.done.set()

    def finish(self) -> None:
        """Wait for the delete; it must have succeeded."""
        self.thread.join(30)
        assert self.done.is_set() and not self.errors, self.errors


def test_a_link_written_while_its_target_is_deleted_is_taken_out_too(project: Project) -> None:
    """The delete waits for a transaction that links to the record, then unlinks that
    record as well: no link is left pointing at a deleted record."""
    ada, bob = employee(project, "Ada"), employee(project, "Bob")
    with project.db.session() as session:
        linking = project.records.create(
            session, "meetings", meeting(participants=[ada, bob]), ADA
        ).id
        deleter = _Deleting(project, "employees", ada)
        # The delete cannot finish while the linking write is open.
        assert not deleter.done.wait(0.5)
    deleter.finish()
    assert get(project, "meetings", linking).data["participants"] == [bob]


def _wait_for_a_lock_wait(project: Project) -> None:
    """Until another transaction of this store waits for a row lock (PostgreSQL); on
    SQLite, where a writer waits for the whole database, for half a second."""
    if project.db.engine.dialect.name != "postgresql":
        time.sleep(0.5)
        return
    waiting = text(
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    deadline = time.monotonic() + 30
    with project.db.engine.connect() as conn:
        while not conn.execute(waiting).scalar():
            assert time.monotonic() < deadline, "the delete never waited for the update"
            time.sleep(0.02)
            conn.rollback()


def test_an_update_keeping_a_link_while_its_target_is_deleted_does_not_deadlock(
    project: Project,
) -> None:
    """The update holds its record's row; the delete of a linked record holds that
    record and waits for the row to take the link out. The update must not then wait
    for the deleted record (it used to check every link it was given, kept or new,
    and PostgreSQL aborted one of the two as a deadlock)."""
    ada, bob = employee(project, "Ada"), employee(project, "Bob")
    sync = create(project, "meetings", meeting(participants=[ada])).id
    with project.db.session() as session:
        project.records.update(session, "meetings", sync, {"title": "Moved"}, ADA)
        deleter = _Deleting(project, "employees", ada)
        _wait_for_a_lock_wait(project)
        project.records.update(
            session, "meetings", sync, {"title": "Moved again", "participants": [ada, bob]}, ADA
        )
        assert not deleter.done.is_set()
    deleter.finish()
    after = get(project, "meetings", sync)
    assert (after.data["title"], after.data["participants"]) == ("Moved again", [bob])


def test_an_update_still_refuses_a_link_it_adds_to_a_missing_record(project: Project) -> None:
    ada = employee(project, "Ada")
    sync = create(project, "meetings", meeting(participants=[ada])).id
    problems = refused(lambda: update(project, "meetings", sync, {"participants": [ada, 999999]}))
    assert problems == {"meetings.participants": "employees record 999999 does not exist"}


def test_missing_records_are_not_found_with_a_clear_message(project: Project) -> None:
    rid = employee(project, "Ada")
    with project.db.session() as session:
        with pytest.raises(NotFound) as exc:
            project.records.get(session, "meetings", 999)
        assert str(exc.value) == "meetings record 999 does not exist"
        with pytest.raises(NotFound, match="meetings record 999 does not exist"):
            project.records.update(session, "meetings", 999, {"title": "x"}, ADA)
        with pytest.raises(NotFound, match="meetings record 999 does not exist"):
            project.records.delete(session, "meetings", 999, ADA)
        # An employee's id does not find a meeting.
        with pytest.raises(NotFound, match=f"meetings record {rid} does not exist"):
            project.records.get(session, "meetings", rid)


# -- find ----------------------------------------------------------------------


@pytest.fixture
def staff(project: Project) -> dict[str, int]:
    """Five employees and three meetings to search through."""
    ids = {
        "ada": employee(project, "Ada", team="engineering", level=3, skills=["ada@lovelace.org"]),
        "grace": employee(project, "Grace", team="engineering", level=4.5, active=False),
        "alan": employee(project, "Alan", team="sales", level=2),
        "edsger": employee(project, "Edsger", team="support"),
        "barbara": employee(project, "Barbara", level=3),
    }
    for title, people in (
        ("Kick-off", ["ada", "grace"]),
        ("Retro", ["grace", "alan"]),
        ("Review", []),
    ):
        create(
            project,
            "meetings",
            meeting(
                title=title,
                organizer=ids[people[0]] if people else None,
                participants=[ids[p] for p in people],
                extra_participants=["guest@example.org"] if title == "Retro" else [],
                day="2026-11-23" if title != "Review" else "2026-11-24",
            ),
        )
    return ids


def names(project: Project, filters: dict[str, Any], catalog: str = "employees") -> list[str]:
    with project.db.session() as session:
        page = project.records.find(session, catalog, filters)
    field = "name" if catalog == "employees" else "title"
    return [r.data[field] for r in page.items]


def test_find_without_filters_lists_a_catalog_oldest_first(
    project: Project, staff: dict[str, int]
) -> None:
    assert names(project, {}) == ["Ada", "Grace", "Alan", "Edsger", "Barbara"]
    assert names(project, {}, "meetings") == ["Kick-off", "Retro", "Review"]


FIELD_FILTERS: list[tuple[dict[str, Any], list[str]]] = [
    ({"name": "Grace"}, ["Grace"]),
    ({"email": "alan@example.com"}, ["Alan"]),
    ({"level": 3}, ["Ada", "Barbara"]),
    ({"level": 4.5}, ["Grace"]),
    ({"level": 3.0}, ["Ada", "Barbara"]),
    ({"active": False}, ["Grace"]),
    ({"active": True}, ["Ada", "Alan", "Edsger", "Barbara"]),
    ({"team": "engineering"}, ["Ada", "Grace"]),
    ({"team": ["sales", "support"]}, ["Alan", "Edsger"]),
    ({"team": None}, ["Barbara"]),
    ({"level": [2, 4.5]}, ["Grace", "Alan"]),
    ({"team": "engineering", "level": 3}, ["Ada"]),
    ({"skills": "ada@lovelace.org"}, ["Ada"]),
    ({"name": "Nobody"}, []),
    ({"team": []}, []),
]


def test_find_filters_on_field_values(project: Project, staff: dict[str, int]) -> None:
    for filters, expected in FIELD_FILTERS:
        assert names(project, filters) == expected, filters


def test_find_filters_on_links_and_lists(project: Project, staff: dict[str, int]) -> None:
    ada, grace, alan = staff["ada"], staff["grace"], staff["alan"]
    assert names(project, {"organizer": ada}, "meetings") == ["Kick-off"]
    assert names(project, {"organizer": [ada, grace]}, "meetings") == ["Kick-off", "Retro"]
    assert names(project, {"participants": grace}, "meetings") == ["Kick-off", "Retro"]
    assert names(project, {"participants": alan}, "meetings") == ["Retro"]
    assert names(project, {"participants": staff["edsger"]}, "meetings") == []
    assert names(project, {"extra_participants": "guest@example.org"}, "meetings") == ["Retro"]
    # A list of values: the list holds one of them.
    assert names(project, {"participants": [alan, ada]}, "meetings") == ["Kick-off", "Retro"]
    assert names(project, {"participants": [staff["edsger"]]}, "meetings") == []
    assert names(project, {"participants": []}, "meetings") == []
    assert names(project, {"day": "2026-11-24"}, "meetings") == ["Review"]
    both = {"participants": grace, "day": "2026-11-23", "title": "Retro"}
    assert names(project, both, "meetings") == ["Retro"]


def test_matching_gives_what_find_gives_and_checks_filters_even_when_one_is_empty(
    project: Project, staff: dict[str, int]
) -> None:
    for filters, expected in [*FIELD_FILTERS, ({"id": []}, []), ({"id": [staff["ada"]]}, ["Ada"])]:
        with project.db.session() as session:
            found = project.records.matching(session, "employees", filters)
        assert [r.data["name"] for r in found] == expected, filters
    with project.db.session() as session, pytest.raises(ValidationFailed, match="nope"):
        project.records.matching(session, "employees", {"nope": []})


def test_matching_by_ids_only_keeps_to_the_catalog_the_order_and_the_limit(
    project: Project, staff: dict[str, int]
) -> None:
    """Processes look records up by ids most of all (a prepared statement does it)."""
    ada, grace, alan, edsger = (staff[n] for n in ("ada", "grace", "alan", "edsger"))
    with project.db.session() as session:
        meeting = project.records.find(session, "meetings", {}).items[0].id

        def by_ids(value: object, limit: int = 50, catalog: str = "employees") -> list[int]:
            found = project.records.matching(session, catalog, {"id": value}, limit=limit)
            return [r.id for r in found]

        assert by_ids([edsger, ada, grace]) == sorted([edsger, ada, grace])
        assert by_ids(alan) == [alan]
        assert by_ids(str(grace)) == [grace]
        assert by_ids([ada, meeting]) == [ada]  # a meeting's id is no employee
        assert by_ids([ada, grace, alan], limit=2) == sorted([ada, grace, alan])[:2]
        assert by_ids([]) == []
        one = project.records.matching(session, "employees", {"id": [ada]})[0]
        assert one.data["name"] == "Ada" and next(iter(one.data)) == "name"  # field order
        with pytest.raises(ValidationFailed, match="cannot filter employees on id"):
            by_ids(["ada"])
        with pytest.raises(ValidationFailed, match="limit must be between 1 and 10000"):
            by_ids([ada], limit=0)
        with pytest.raises(NotFound, match="no catalog named 'nope'"):
            by_ids([ada], catalog="nope")


def test_find_by_id(project: Project, staff: dict[str, int]) -> None:
    assert names(project, {"id": staff["alan"]}) == ["Alan"]
    assert names(project, {"id": [staff["edsger"], staff["ada"]]}) == ["Ada", "Edsger"]
    assert names(project, {"id": str(staff["grace"])}) == ["Grace"]


def test_find_refuses_unknown_fields_and_bad_ids(project: Project, staff: dict[str, int]) -> None:
    with pytest.raises(ValidationFailed) as exc:
        names(project, {"nmae": "Ada"})
    assert exc.value.message == "cannot filter employees on 'nmae'"
    assert "fields of employees: name, email" in exc.value.problems[0].hint
    with pytest.raises(ValidationFailed, match="record ids are whole numbers"):
        names(project, {"id": "seven"})


def test_find_pages_with_limit_offset_and_total(project: Project, staff: dict[str, int]) -> None:
    with project.db.session() as session:
        first = project.records.find(session, "employees", limit=2)
        second = project.records.find(session, "employees", limit=2, offset=2)
        last = project.records.find(session, "employees", limit=2, offset=4)
        beyond = project.records.find(session, "employees", limit=2, offset=10)
        filtered = project.records.find(session, "employees", {"level": 3}, limit=1, offset=1)
    assert [r.data["name"] for r in first.items] == ["Ada", "Grace"]
    assert [r.data["name"] for r in second.items] == ["Alan", "Edsger"]
    assert [r.data["name"] for r in last.items] == ["Barbara"]
    assert beyond.items == []
    assert (first.total, second.total, last.total, beyond.total) == (5, 5, 5, 5)
    assert (second.limit, second.offset) == (2, 2)
    assert [r.data["name"] for r in filtered.items] == ["Barbara"]
    assert filtered.total == 2


def test_find_refuses_bad_paging(project: Project) -> None:
    for paging, message in [
        ({"limit": 0}, "limit must be between 1 and 10000, got 0"),
        ({"limit": 10_001}, "limit must be between 1 and 10000, got 10001"),
        ({"offset": -1}, "offset cannot be negative, got -1"),
    ]:
        with pytest.raises(ValidationFailed, match=message):
            find(project, "employees", {}, **paging)


# -- parse_where and find together ----------------------------------------------


def test_parse_where_output_finds_the_records(project: Project, staff: dict[str, int]) -> None:
    where = ["team=engineering", "level=4.5", "active=false"]
    assert names(project, project.records.parse_where("employees", where)) == ["Grace"]
    where = [f"participants={staff['alan']}"]
    assert names(project, project.records.parse_where("meetings", where), "meetings") == ["Retro"]
    where = [f"id={staff['edsger']}"]
    assert names(project, project.records.parse_where("employees", where)) == ["Edsger"]


def test_a_field_value_over_the_size_limit_is_refused_by_name(db_url: str) -> None:
    from engine.catalogs import RecordService, parse_catalog_text
    from engine.errors import ValidationFailed
    from engine.store import Database, migrate

    db = Database(db_url)
    try:
        migrate(db)
        notes = parse_catalog_text("fields: {body: {type: text}, meta: {type: json}}", "n", "notes")
        service = RecordService({"notes": notes}, max_field_bytes=1000)
        with db.session() as s:
            service.create(s, "notes", {"body": "x" * 990, "meta": {"k": "v" * 900}}, ADA)
        with db.session() as s, pytest.raises(ValidationFailed) as refused:
            service.create(s, "notes", {"body": "é" * 600, "meta": ["y" * 1200]}, ADA)
        wheres = {p.where: p.message for p in refused.value.problems}
        assert wheres["notes.body"] == "is 1,202 bytes as JSON; at most 1,000 allowed"
        assert wheres["notes.meta"].startswith("is 1,204 bytes as JSON")
        assert "CATFLOW_MAX_FIELD_BYTES" in refused.value.problems[0].hint
    finally:
        db.dispose()
