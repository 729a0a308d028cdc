"""Record changes start the right processes: exactly once, only when the rule says so."""

from __future__ import annotations

from typing import Any

from bpmn_builder import chain, end, script, service, start
from flow_helpers import USER, catalog, create, detail, get, instances, run, update
from sqlalchemy import select
from sqlalchemy import update as sql_update

from engine.events import dispatch_pending
from engine.runtime import event_starter
from engine.store import OutboxEvent, OutboxValues

NOOP = chain("noop", start(), script("s", "seen = record['title']"), end())


def test_created_record_starts_one_instance_with_start_variables(open_test_project: Any) -> None:
    project = open_test_project(
        catalogs={"items": catalog("[{on: created, process: noop}]")}, processes={"noop": NOOP}
    )
    rid = create(project, "items", {"title": "first"})
    run(project)
    [inst] = instances(project)
    assert (inst.state, inst.record_catalog, inst.record_id) == ("completed", "items", rid)
    variables = detail(project, inst.id)["variables"]
    assert variables["seen"] == "first"
    assert variables["record"] == {
        "id": rid,
        "title": "first",
        "status": None,
        "count": 0,
        "note": None,
    }
    assert variables["old"] is None
    assert variables["event"]["kind"] == "created"
    assert variables["event"]["cause"] == {"kind": "user", "user": "tester"}


def test_a_rules_variables_are_given_to_the_instance(open_test_project: Any) -> None:
    rule = "[{on: created, process: noop, variables: {default_duration_minutes: 25}}]"
    project = open_test_project(catalogs={"items": catalog(rule)}, processes={"noop": NOOP})
    create(project, "items", {"title": "x"})
    run(project)
    [inst] = instances(project)
    assert detail(project, inst.id)["variables"]["default_duration_minutes"] == 25


def test_each_event_and_rule_yields_exactly_one_instance(open_test_project: Any) -> None:
    project = open_test_project(
        catalogs={"items": catalog("[{on: created, process: noop}]")}, processes={"noop": NOOP}
    )
    create(project, "items", {"title": "a"})
    first = dispatch_pending(project.db, project.catalogs, event_starter)
    assert len(first.instances) == 1
    # A second dispatcher re-reading the same event (as if the first died after
    # committing) finds the instance the unique key already holds.
    with project.db.session() as s:
        s.execute(sql_update(OutboxEvent).values(dispatched_at=None))
    again = dispatch_pending(project.db, project.catalogs, event_starter)
    assert again.instances == first.instances
    assert len(instances(project)) == 1


def test_update_fires_only_when_a_watched_field_changed(open_test_project: Any) -> None:
    project = open_test_project(
        catalogs={"items": catalog("[{on: updated, fields: [title], process: noop}]")},
        processes={"noop": NOOP},
    )
    rid = create(project, "items", {"title": "a"})
    update(project, "items", rid, {"status": "x"})  # not watched
    update(project, "items", rid, {"title": "a"})  # no change at all: no event
    run(project)
    assert instances(project) == []
    update(project, "items", rid, {"title": "b"})
    run(project)
    [inst] = instances(project)
    variables = detail(project, inst.id)["variables"]
    assert variables["old"]["title"] == "a"
    assert variables["record"]["title"] == "b"
    assert variables["event"]["changed"] == ["title"]


def test_when_condition_over_new_and_old(open_test_project: Any) -> None:
    rule = "[{on: updated, process: noop, when: \"new['count'] > old['count']\"}]"
    project = open_test_project(catalogs={"items": catalog(rule)}, processes={"noop": NOOP})
    rid = create(project, "items", {"title": "a", "count": 5})
    update(project, "items", rid, {"count": 3})
    run(project)
    assert instances(project) == []
    update(project, "items", rid, {"count": 4})
    run(project)
    assert len(instances(project)) == 1


def test_deleted_record_starts_its_process_with_the_last_values(open_test_project: Any) -> None:
    project = open_test_project(
        catalogs={"items": catalog("[{on: deleted, process: noop}]")}, processes={"noop": NOOP}
    )
    rid = create(project, "items", {"title": "gone soon"})
    with project.db.session() as s:
        project.records.delete(s, "items", rid, USER)
    run(project)
    [inst] = instances(project)
    variables = detail(project, inst.id)["variables"]
    assert variables["seen"] == "gone soon"
    assert variables["event"]["kind"] == "deleted"


WRITE_BACK = chain(
    "stamp",
    start(),
    service(
        "write",
        "records.update",
        "updated",
        catalog="'items'",
        id="record['id']",
        data="{'note': 'stamped ' + record['title'], 'title': record['title'] + '!'}",
    ),
    end(),
)


def test_process_writing_its_own_record_does_not_trigger_itself(open_test_project: Any) -> None:
    rules = "[{on: created, process: stamp}, {on: updated, fields: [title], process: stamp}]"
    project = open_test_project(catalogs={"items": catalog(rules)}, processes={"stamp": WRITE_BACK})
    rid = create(project, "items", {"title": "x"})
    run(project)
    run(project)
    assert [i.state for i in instances(project)] == ["completed"]
    assert get(project, "items", rid)["note"] == "stamped x"
    assert get(project, "items", rid)["title"] == "x!"
    # A person's edit of the same field does start it.
    update(project, "items", rid, {"title": "y"})
    run(project)
    assert [i.state for i in instances(project)] == ["completed", "completed"]


def test_ignore_own_writes_false_lets_a_process_retrigger(open_test_project: Any) -> None:
    rules = (
        "[{on: updated, fields: [title], process: stamp, ignore_own_writes: false,"
        " when: \"len(new['title']) < 4\"}]"
    )
    project = open_test_project(catalogs={"items": catalog(rules)}, processes={"stamp": WRITE_BACK})
    rid = create(project, "items", {"title": "a"})
    update(project, "items", rid, {"title": "b"})
    run(project)
    # b -> b! -> b!! -> b!!! (length 4 stops the condition)
    assert get(project, "items", rid)["title"] == "b!!!"
    assert len(instances(project)) == 3


def test_a_condition_that_raises_starts_nothing_and_is_noted_on_the_event(
    open_test_project: Any, caplog: Any
) -> None:
    rule = "[{on: created, process: noop, when: \"new['nope'] == 1\"}]"
    project = open_test_project(catalogs={"items": catalog(rule)}, processes={"noop": NOOP})
    create(project, "items", {"title": "a"})
    with caplog.at_level("WARNING", logger="catflow.dispatcher"):
        run(project)
    assert instances(project) == []
    with project.db.session() as s:
        [event] = s.query(OutboxEvent).all()
        assert event.dispatched_at is not None
        assert "failed: KeyError" in (event.dispatch_note or "")
    assert any(r.message.startswith("trigger condition failed") for r in caplog.records)


def test_a_dispatched_event_keeps_what_changed_and_why_but_not_the_values(
    open_test_project: Any,
) -> None:
    rules = "[{on: created, process: noop}, {on: updated, fields: [title], process: noop}]"
    project = open_test_project(catalogs={"items": catalog(rules)}, processes={"noop": NOOP})
    rid = create(project, "items", {"title": "long " * 100})
    update(project, "items", rid, {"status": "x"})  # no watched field: no instance
    with project.db.session() as s:
        pending = s.scalars(select(OutboxEvent).order_by(OutboxEvent.id)).all()
        assert pending[0].new is not None and pending[0].new["title"] == "long " * 100
        assert pending[1].old is not None and pending[1].old["status"] is None
    run(project)
    with project.db.session() as s:
        created, updated = s.scalars(select(OutboxEvent).order_by(OutboxEvent.id)).all()
    # The values went on as the instance's variables; the event keeps kind, fields, cause.
    assert (created.old, created.new, updated.old, updated.new) == (None, None, None, None)
    with project.db.session() as s:  # their rows are gone, and their room with them
        assert s.scalars(select(OutboxValues)).all() == []
    assert "title" in created.changed
    assert updated.changed == ["status"]
    assert created.dispatch_note is not None and "started instance" in created.dispatch_note
    assert updated.dispatch_note == "updated:noop: none of title changed"
    [inst] = instances(project)
    assert detail(project, inst.id)["variables"]["record"]["title"] == "long " * 100


def test_a_change_after_a_new_version_is_deployed_starts_that_version(
    open_test_project: Any,
) -> None:
    from engine.runtime import deploy

    project = open_test_project(
        catalogs={"items": catalog("[{on: created, process: noop}]")}, processes={"noop": NOOP}
    )
    create(project, "items", {"title": "first"})
    run(project)  # the dispatcher has now met version 1 (and it learned its dictionary)
    v2 = chain("noop", start(), script("s", "seen = 'v2: ' + record['title']"), end())
    deploy(project.db, [("noop.bpmn", v2.encode())], max_bytes=1_000_000, deployed_by="tester")
    create(project, "items", {"title": "second"})
    run(project)
    first, second = instances(project)
    assert (detail(project, first.id)["version"], detail(project, second.id)["version"]) == (1, 2)
    assert detail(project, second.id)["variables"]["seen"] == "v2: second"
