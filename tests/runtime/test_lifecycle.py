"""Instances: ordering per record, leases, timers, user tasks, errors, incidents, actions."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from bpmn_builder import chain, end, error_boundary, flow, script, service, start, timer, user_task
from flow_helpers import catalog, create, detail, get, instances, records_of, run, update
from sqlalchemy import select
from sqlalchemy import update as sql_update

from engine import runtime
from engine.errors import Conflict, NotFound
from engine.runtime import Executor, Runner
from engine.store import InstanceRow, OutboxEvent, ProcessVersionRow, StepRow, pack, unpack

APPROVE = chain(
    "approve", start(), user_task("review", "Review"), script("after", "done = approved"), end()
)


def _executor(project: Any, name: str, lease: float = 30.0) -> Executor:
    return Executor(project.db, project.records, name, lease)


def _start_approval(project: Any) -> int:
    with project.db.session() as s:
        return int(runtime.start_process(s, "approve", {"n": 1}, {"kind": "user"}).id)


def _approve(project: Any, inst_id: int) -> None:
    with project.db.session() as s:
        runtime.complete_user_task(s, inst_id, "review", {"approved": True}, "tester")


def _approve_then_note(open_test_project: Any) -> Any:
    """Items whose creation waits for an approval and whose title change runs a note."""
    rules = "[{on: created, process: approve}, {on: updated, fields: [title], process: note}]"
    note = chain("note", start(), script("s", "x = 1"), end())
    return open_test_project(
        catalogs={"items": catalog(rules)}, processes={"approve": APPROVE, "note": note}
    )


def test_update_instance_starts_only_after_the_create_instance_finished(
    open_test_project: Any,
) -> None:
    project = _approve_then_note(open_test_project)
    rid = create(project, "items", {"title": "a"})
    update(project, "items", rid, {"title": "b"})  # at once, before anything ran
    run(project)
    first, second = instances(project)
    assert (first.process_id, first.state) == ("approve", "waiting")
    assert (second.process_id, second.state) == ("note", "queued")
    with project.db.session() as s:
        blocker = runtime.blocking_predecessor(s, s.get(InstanceRow, second.id))
        assert blocker is not None and blocker.id == first.id
    run(project)  # still held back: the create instance waits for a person
    assert instances(project)[1].state == "queued"
    with project.db.session() as s:
        runtime.complete_user_task(s, first.id, "review", {"approved": True}, "tester")
    run(project)
    first, second = instances(project)
    assert first.state == second.state == "completed"
    assert first.ended_at is not None and second.started_at is not None
    assert second.started_at >= first.ended_at


def test_an_incident_holds_back_later_instances_of_the_same_record(open_test_project: Any) -> None:
    rules = "[{on: created, process: fragile}, {on: updated, process: fragile}]"
    fragile = chain("fragile", start(), script("s", "x = 1 / record['count']"), end())
    project = open_test_project(catalogs={"items": catalog(rules)}, processes={"fragile": fragile})
    rid = create(project, "items", {"title": "a", "count": 0})
    other = create(project, "items", {"title": "other", "count": 1})
    update(project, "items", rid, {"count": 2})
    run(project)
    states = {(i.record_id, i.event_id): i.state for i in instances(project)}
    assert sorted(states.values()) == ["completed", "incident", "queued"]
    assert [i.state for i in instances(project) if i.record_id == other] == ["completed"]
    # Cancelling the failed one lets the next of that record go.
    failed = next(i for i in instances(project) if i.state == "incident")
    with project.db.session() as s:
        runtime.cancel(s, failed.id, "tester")
    run(project)
    assert [i.state for i in instances(project) if i.record_id == rid] == ["cancelled", "completed"]


def test_script_failure_is_an_incident_naming_task_line_and_message(open_test_project: Any) -> None:
    bad = chain("bad", start(), script("calc", "a = 1\nb = record['missing']", "Calculate"), end())
    good = chain("good", start(), script("ok", "fine = True"), end())
    rules = (
        "[{on: created, process: bad, when: \"new['title'] == 'bad'\"},"
        " {on: created, process: good, when: \"new['title'] == 'good'\"}]"
    )
    project = open_test_project(
        catalogs={"items": catalog(rules)}, processes={"bad": bad, "good": good}
    )
    create(project, "items", {"title": "bad"})
    create(project, "items", {"title": "good"})
    run(project)
    by_process = {i.process_id: i for i in instances(project)}
    assert by_process["good"].state == "completed"  # the other instance carried on
    failed = by_process["bad"]
    assert failed.state == "incident"
    assert failed.error is not None
    assert failed.error["element_id"] == "calc"
    assert failed.error["element_name"] == "Calculate"
    assert failed.error["line"] == 2
    assert "KeyError" in failed.error["message"] and "missing" in failed.error["message"]
    [incident] = detail(project, failed.id)["incidents"]
    assert incident["line"] == 2 and incident["kind"] == "script"
    with project.db.session() as s:
        assert [i.instance_id for i in runtime.open_incidents(s)] == [failed.id]


FETCH = chain(
    "fetch",
    start(),
    service("load", "records.get", "item", "Load item", catalog="'items'", id="record['id']"),
    script("check", "assert item['status'] == 'ready', 'item is not ready'", "Check"),
    end(),
)


def test_retry_after_fixing_the_data_completes_and_resolves_the_incident(
    open_test_project: Any,
) -> None:
    project = open_test_project(
        catalogs={"items": catalog("[{on: created, process: fetch}]")}, processes={"fetch": FETCH}
    )
    rid = create(project, "items", {"title": "x", "status": "draft"})
    run(project)
    [inst] = instances(project)
    assert inst.state == "incident"
    assert "item is not ready" in inst.error["message"]  # type: ignore[index]
    update(project, "items", rid, {"status": "ready"})
    with project.db.session() as s:
        runtime.retry(s, inst.id, "tester")
    # The failed script runs again, but the record was read before it: a retry
    # re-runs the failed task only, so re-read it by retrying from the service task.
    run(project)
    [inst] = instances(project)
    assert inst.state == "incident"  # item was loaded before the fix: still 'draft'
    with project.db.session() as s:
        runtime.skip(s, inst.id, "tester", {"checked": "by hand"})
    run(project)
    d = detail(project, inst.id)
    assert d["state"] == "completed"
    assert d["variables"]["checked"] == "by hand"
    assert all(i["resolved_at"] for i in d["incidents"])
    assert [i["resolution"] for i in d["incidents"]] == ["retried", "skipped"]
    assert any(s["outcome"] == "note" and "skipped" in s["message"] for s in d["steps"])


def test_retry_reruns_a_failed_service_task_after_the_catalog_is_fixed(
    open_test_project: Any,
) -> None:
    archive = chain(
        "archive",
        start(),
        service(
            "mark",
            "records.update",
            "marked",
            "Mark archived",
            catalog="'items'",
            id="record['id']",
            data="{'stage': 'archived'}",
        ),
        end(),
    )
    stage = "  stage: {type: choice, options: [draft, ready]}\n"
    project = open_test_project(
        catalogs={"items": catalog("[{on: created, process: archive}]", stage)},
        processes={"archive": archive},
    )
    rid = create(project, "items", {"title": "x"})
    run(project)
    [inst] = instances(project)
    assert inst.state == "incident"
    assert inst.error is not None and inst.error["element_id"] == "mark"
    assert "items.stage: 'archived' is not one of: draft, ready" in inst.error["message"]
    # The designer adds the missing option; the operator retries.
    fixed = open_test_project(
        catalogs={
            "items": catalog(
                "[{on: created, process: archive}]",
                "  stage: {type: choice, options: [draft, ready, archived]}\n",
            )
        },
    )
    with fixed.db.session() as s:
        runtime.retry(s, inst.id, "tester")
    run(fixed)
    assert instances(fixed)[0].state == "completed"
    assert get(fixed, "items", rid)["stage"] == "archived"
    [incident] = detail(fixed, inst.id)["incidents"]
    assert incident["resolution"] == "retried"


ERRORS = chain(
    "careful",
    start(),
    service("load", "records.get", "item", catalog="'items'", id="12345"),
    script("found", "path = 'found'"),
    end(),
    extra=(
        error_boundary("missing", "load", "err_nf"),
        script("fallback", "path = 'fallback'\ncode = error['code']"),
        end("end2"),
        flow("missing", "fallback"),
        flow("fallback", "end2"),
    ),
    errors={"err_nf": "notFound"},
)


def test_error_boundary_event_catches_an_operator_bpmn_error(open_test_project: Any) -> None:
    project = open_test_project(
        catalogs={"items": catalog("[{on: created, process: careful}]")},
        processes={"careful": ERRORS},
    )
    create(project, "items", {"title": "x"})
    run(project)
    [inst] = instances(project)
    d = detail(project, inst.id)
    assert d["state"] == "completed"
    assert d["variables"]["path"] == "fallback"
    assert d["variables"]["code"] == "notFound"
    caught = [s for s in d["steps"] if s["outcome"] == "caught"]
    assert caught and caught[0]["element_id"] == "load"
    assert d["incidents"] == []


def test_timer_waits_until_due_then_the_scheduler_wakes_it(open_test_project: Any) -> None:
    timed = chain("timed", start(), timer("pause", "PT1S"), script("s", "woke = True"), end())
    project = open_test_project(
        catalogs={"items": catalog("[{on: created, process: timed}]")}, processes={"timed": timed}
    )
    create(project, "items", {"title": "x"})
    run(project)
    [inst] = instances(project)
    assert inst.state == "waiting"
    assert inst.due_at is not None and "timer 'pause'" in (inst.waiting_for or "")
    run(project)  # not due yet: nothing happens
    assert instances(project)[0].state == "waiting"
    time.sleep(max(0.0, (inst.due_at - runtime_now()).total_seconds()) + 0.1)
    run(project)
    assert instances(project)[0].state == "completed"
    assert detail(project, inst.id)["variables"]["woke"] is True


def runtime_now() -> Any:
    from engine.store import utcnow

    return utcnow()


def test_user_task_waits_for_data_and_names_what_it_waits_for(open_test_project: Any) -> None:
    project = open_test_project(catalogs={"items": catalog()}, processes={"approve": APPROVE})
    with project.db.session() as s:
        inst_id = runtime.start_process(s, "approve", {"n": 1}, {"kind": "user"}).id
    run(project)
    d = detail(project, inst_id)
    assert d["state"] == "waiting" and d["user_tasks"] == ["review"]
    assert "user task 'review' (Review)" in d["waiting_for"]
    with project.db.session() as s, pytest.raises(NotFound, match="waiting: review"):
        runtime.complete_user_task(s, inst_id, "nope", {}, "tester")
    with project.db.session() as s:
        runtime.complete_user_task(s, inst_id, "review", {"approved": "yes"}, "tester")
    run(project)
    d = detail(project, inst_id)
    assert d["state"] == "completed" and d["variables"]["done"] == "yes"


def test_suspend_resume_and_cancel(open_test_project: Any) -> None:
    project = open_test_project(catalogs={"items": catalog()}, processes={"approve": APPROVE})
    with project.db.session() as s:
        a = runtime.start_process(s, "approve", {}, {"kind": "user"}).id
        b = runtime.start_process(s, "approve", {}, {"kind": "user"}).id
    with project.db.session() as s:
        runtime.suspend(s, a, "tester")
    run(project)
    states = {i.id: i.state for i in instances(project)}
    assert states == {a: "suspended", b: "waiting"}
    with project.db.session() as s:
        runtime.resume(s, a, "tester")
        runtime.cancel(s, b, "tester")
    run(project)
    states = {i.id: i.state for i in instances(project)}
    assert states == {a: "waiting", b: "cancelled"}
    with project.db.session() as s, pytest.raises(Conflict, match="it is cancelled"):
        runtime.retry(s, b, "tester")
    with project.db.session() as s, pytest.raises(Conflict, match="applies to incident"):
        runtime.skip(s, a, "tester")


def test_a_dead_workers_lease_expires_and_another_worker_finishes(open_test_project: Any) -> None:
    simple = chain("simple", start(), script("s", "x = 1"), end())
    project = open_test_project(catalogs={"items": catalog()}, processes={"simple": simple})
    with project.db.session() as s:
        inst_id = runtime.start_process(s, "simple", {}, {"kind": "user"}).id
    dead = _executor(project, "dead-worker", lease=0.5)
    with project.db.session() as s:
        assert dead.claim(s, inst_id)  # ...and then the worker dies
    alive = _executor(project, "alive-worker")
    assert alive.due_instances() == []  # leased: nobody else may run it
    assert alive.run_instance(inst_id) is None
    time.sleep(0.6)
    assert alive.due_instances() == [inst_id]
    assert alive.run_instance(inst_id) == "completed"
    with project.db.session() as s:
        workers = set(s.scalars(select(StepRow.worker).where(StepRow.instance_id == inst_id)))
    assert workers == {"alive-worker"}


def test_a_worker_that_lost_its_lease_cannot_overwrite_the_instance(
    open_test_project: Any,
) -> None:
    project = open_test_project(catalogs={"items": catalog()}, processes={"approve": APPROVE})
    with project.db.session() as s:
        inst_id = runtime.start_process(s, "approve", {}, {"kind": "user"}).id
    slow = _executor(project, "slow", lease=0.2)
    with project.db.session() as s:
        assert slow.claim(s, inst_id)
    time.sleep(0.3)
    fast = _executor(project, "fast")
    assert fast.run_instance(inst_id) == "waiting"
    with project.db.session() as s, pytest.raises(runtime.LeaseLost):
        row = s.get(InstanceRow, inst_id)
        assert row is not None
        from engine.bpmn import ProcessRun
        from engine.store import ProcessVersionRow

        version = s.get(ProcessVersionRow, row.version_id)
        assert version is not None
        slow.checkpoint(s, inst_id, ProcessRun.load(version.spec, row.workflow), [])


CREATE_THEN_WAIT = chain(
    "maker",
    start(),
    service(
        "make", "records.create", "made", catalog="'items'", data="{'title': 'made by ' + str(n)}"
    ),
    user_task("hold"),
    end(),
)


def test_replaying_a_create_after_a_crash_makes_no_second_record(open_test_project: Any) -> None:
    project = open_test_project(
        catalogs={"items": catalog()}, processes={"maker": CREATE_THEN_WAIT}
    )
    with project.db.session() as s:
        row = runtime.start_process(s, "maker", {"n": 7}, {"kind": "user"})
        inst_id, initial_state = row.id, row.workflow
    run(project)
    assert [r.data["title"] for r in records_of(project, "items")] == ["made by 7"]
    # Replay from the checkpoint taken before the create, as a worker would after
    # a crash that lost everything since it.
    with project.db.session() as s:
        s.execute(
            sql_update(InstanceRow)
            .where(InstanceRow.id == inst_id)
            .values(workflow=initial_state, state="running", due_at=runtime_now())
        )
    run(project)
    made = records_of(project, "items")
    assert [r.data["title"] for r in made] == ["made by 7"]
    assert detail(project, inst_id)["variables"]["made"]["id"] == made[0].id
    assert made[0].idempotency_key is not None and str(inst_id) in made[0].idempotency_key


def test_step_log_records_task_timing_outcome_and_changed_variables(
    open_test_project: Any,
) -> None:
    project = open_test_project(
        catalogs={"items": catalog("[{on: created, process: fetch}]")}, processes={"fetch": FETCH}
    )
    create(project, "items", {"title": "x", "status": "ready"})
    run(project)
    [inst] = instances(project)
    steps = detail(project, inst.id)["steps"]
    assert [(s["element_id"], s["outcome"]) for s in steps] == [
        ("start", "completed"),
        ("load", "completed"),
        ("check", "completed"),
        ("end", "completed"),
    ]
    load = steps[1]
    assert load["name"] == "Load item" and load["type"] == "ServiceTask"
    assert load["duration_ms"] >= 0 and load["started_at"]
    assert load["changed"]["item"]["status"] == "ready"
    assert json.dumps(steps)  # the whole log is plain JSON for the API and the CLI


def test_a_process_can_create_read_update_find_and_delete_records(open_test_project: Any) -> None:
    crud = chain(
        "crud",
        start(),
        service("c", "records.create", "made", catalog="'items'", data="{'title': 'n1'}"),
        service(
            "u",
            "records.update",
            "changed",
            catalog="'items'",
            id="made",
            data="{'status': 'on', 'note': 'set by a process'}",
        ),
        service("f", "records.find", "found", catalog="'items'", where="{'status': ['on', 'x']}"),
        service("g", "records.get", "got", catalog="'items'", id="made['id']"),
        service("d", "records.delete", "deleted", catalog="'items'", id="made['id']"),
        service("d2", "records.delete", "deleted_again", catalog="'items'", id="made['id']"),
        end(),
    )
    project = open_test_project(catalogs={"items": catalog()}, processes={"crud": crud})
    with project.db.session() as s:
        inst_id = runtime.start_process(s, "crud", {}, {"kind": "user"}).id
    Runner(project, workers=1).run_once()
    d = detail(project, inst_id)
    assert d["state"] == "completed", d["error"]
    v = d["variables"]
    assert v["changed"]["note"] == "set by a process"  # readonly fields are for processes
    assert [r["title"] for r in v["found"]] == ["n1"]
    assert v["got"]["status"] == "on"
    assert v["deleted"] == {"deleted": True, "id": v["made"]["id"]}
    assert v["deleted_again"]["deleted"] is False
    assert records_of(project, "items") == []
    notes = [s["message"] for s in d["steps"] if s["element_id"] == "d2"]
    assert notes and "already gone" in notes[0]


def test_invalid_record_data_from_a_process_is_an_incident_with_field_errors(
    open_test_project: Any,
) -> None:
    broken = chain(
        "broken",
        start(),
        service("c", "records.create", "made", catalog="'items'", data="{'count': 'many'}"),
        end(),
    )
    project = open_test_project(catalogs={"items": catalog()}, processes={"broken": broken})
    with project.db.session() as s:
        inst_id = runtime.start_process(s, "broken", {}, {"kind": "user"}).id
    run(project)
    d = detail(project, inst_id)
    assert d["state"] == "incident"
    assert "items.count: expected a number" in d["error"]["message"]
    assert "items.title: is required" in d["error"]["message"]
    assert records_of(project, "items") == []
    assert get  # (records untouched)


def test_timer_on_a_date_waits_for_that_moment(open_test_project: Any) -> None:
    from datetime import timedelta

    # Far enough ahead that opening the project on a busy machine cannot reach it.
    moment = (runtime_now() + timedelta(seconds=4)).strftime("%Y-%m-%dT%H:%M:%SZ")
    dated = chain(
        "dated",
        start(),
        f'<bpmn:intermediateCatchEvent id="at"><bpmn:timerEventDefinition>'
        f"<bpmn:timeDate>{moment}</bpmn:timeDate></bpmn:timerEventDefinition>"
        f"</bpmn:intermediateCatchEvent>",
        end(),
    )
    project = open_test_project(catalogs={"items": catalog()}, processes={"dated": dated})
    with project.db.session() as s:
        inst_id = runtime.start_process(s, "dated", {}, {"kind": "user"}).id
    run(project)
    [inst] = instances(project)
    assert inst.state == "waiting"
    assert inst.due_at is not None and inst.due_at.strftime("%Y-%m-%dT%H:%M:%SZ") == moment
    time.sleep(max(0.0, (inst.due_at - runtime_now()).total_seconds()) + 0.2)
    run(project)
    assert detail(project, inst_id)["state"] == "completed"


def test_an_endless_loop_takes_turns_instead_of_holding_a_worker(open_test_project: Any) -> None:
    from bpmn_builder import HEAD

    loop = (
        f'{HEAD}<bpmn:process id="spin" isExecutable="true">'
        '<bpmn:startEvent id="start"/>'
        '<bpmn:exclusiveGateway id="gw" default="flow_gw_again"/>'
        '<bpmn:scriptTask id="again"><bpmn:script>n = n + 1</bpmn:script></bpmn:scriptTask>'
        '<bpmn:endEvent id="end"/>'
        f"{flow('start', 'gw')}{flow('gw', 'again')}{flow('again', 'gw')}"
        f"{flow('gw', 'end', 'n >= 10**9')}"
        "</bpmn:process></bpmn:definitions>"
    )
    project = open_test_project(catalogs={"items": catalog()}, processes={"spin": loop})
    with project.db.session() as s:
        inst_id = runtime.start_process(s, "spin", {"n": 0}, {"kind": "user"}).id
    executor = _executor(project, "w")
    assert executor.run_instance(inst_id) == "running"  # back in line, still runnable
    n_after_one_turn = detail(project, inst_id)["variables"]["n"]
    assert 0 < n_after_one_turn < 10**9
    assert executor.due_instances() == [inst_id]
    with project.db.session() as s:
        runtime.cancel(s, inst_id, "tester")
    assert detail(project, inst_id)["state"] == "cancelled"


def _buggy(expression: str, extra_element: bool = False) -> str:
    elements = [start(), script("calc", f"ratio = {expression}", "Calculate")]
    if extra_element:
        elements.append(script("audit", "audited = True", "Audit"))
    return chain("ratio", *elements, end())


def _failed_ratio(open_test_project: Any) -> tuple[Any, int]:
    """A project whose 'ratio' instance is in an incident (division by zero)."""
    project = open_test_project(catalogs={"items": catalog()}, processes={"ratio": _buggy("1 / 0")})
    with project.db.session() as s:
        inst_id = runtime.start_process(s, "ratio", {}, {"kind": "user"}).id
    run(project)
    return project, inst_id


def test_retry_with_upgrade_runs_a_fix_deployed_after_the_instance_started(
    open_test_project: Any,
) -> None:
    project, inst_id = _failed_ratio(open_test_project)
    assert detail(project, inst_id)["state"] == "incident"
    with project.db.session() as s, pytest.raises(Conflict, match="already runs the latest"):
        runtime.retry(s, inst_id, "tester", upgrade=True)
    # The designer fixes the script and adds a step after it; the operator upgrades.
    fixed = open_test_project(processes={"ratio": _buggy("1 / 4", extra_element=True)})
    with fixed.db.session() as s:
        runtime.retry(s, inst_id, "tester", upgrade=True)
    run(fixed)
    d = detail(fixed, inst_id)
    assert d["state"] == "completed" and d["version"] == 2
    assert d["variables"]["ratio"] == 0.25 and d["variables"]["audited"] is True
    assert any("moved from v1 to v2" in (s["message"] or "") for s in d["steps"])


def test_upgrade_is_refused_when_the_new_version_lacks_the_failed_element(
    open_test_project: Any,
) -> None:
    _, inst_id = _failed_ratio(open_test_project)
    # (A renamed element in the same place is matched by its position; a removed
    # one cannot be.)
    without = chain("ratio", start(), end())
    fixed = open_test_project(processes={"ratio": without})
    with fixed.db.session() as s, pytest.raises(Conflict, match=r"lacks element\(s\).*calc"):
        runtime.retry(s, inst_id, "tester", upgrade=True)
    d = detail(fixed, inst_id)
    assert d["state"] == "incident" and d["version"] == 1  # nothing changed


def test_a_process_may_ask_for_more_memory_for_its_scripts(open_test_project: Any) -> None:
    big = "n = len('x' * (300 * 1024 * 1024))"
    processes = {
        "roomy": chain(
            "roomy", start(), script("s", big), end(), properties={"script_memory_mib": "1024"}
        ),
        "tight": chain("tight", start(), script("s", big), end()),
    }
    project = open_test_project(catalogs={"items": catalog()}, processes=processes)
    with project.db.session() as s:
        roomy = runtime.start_process(s, "roomy", {}, {"kind": "user"}).id
        tight = runtime.start_process(s, "tight", {}, {"kind": "user"}).id
    run(project)
    assert detail(project, roomy)["variables"]["n"] == 300 * 1024 * 1024
    assert "exceeded the memory limit of 256 MiB" in detail(project, tight)["error"]["message"]


def test_run_next_takes_the_instance_due_first_and_never_one_held_back(
    open_test_project: Any,
) -> None:
    project = _approve_then_note(open_test_project)
    first = create(project, "items", {"title": "a"})
    update(project, "items", first, {"title": "b"})  # its instance waits for the first
    second = create(project, "items", {"title": "c"})
    Runner(project, workers=0).dispatch()
    one, two = _executor(project, "one"), _executor(project, "two")
    ran = [one.run_next(), two.run_next(), one.run_next()]
    by_record = {i.id: i.record_id for i in instances(project)}
    assert ran[2] is None, "an instance held behind its record's earlier one was run"
    assert [(by_record[i], state) for i, state in ran[:2]] == [  # type: ignore[misc]
        (first, "waiting"),  # the approval waits for a person...
        (second, "waiting"),  # ...so the update of the first record is held back
    ]


def test_a_completed_instance_keeps_its_variables_and_path_in_little_room(
    open_test_project: Any,
) -> None:
    from engine.bpmn import FinishedRun, load_view

    flow_ = chain("simple", start(), script("s", "x = 1\nnames = ['a'] * 3"), end())
    project = open_test_project(catalogs={"items": catalog()}, processes={"simple": flow_})
    with project.db.session() as s:
        inst_id = runtime.start_process(s, "simple", {"given": "yes"}, {"kind": "user"}).id
    run(project)
    shown = detail(project, inst_id)
    assert shown["state"] == "completed"
    assert shown["variables"] == {"given": "yes", "x": 1, "names": ["a", "a", "a"]}
    assert shown["elements"] == {"start": "completed", "s": "completed", "end": "completed"}
    with project.db.session() as s:
        row = s.get(InstanceRow, inst_id)
        assert row is not None
        version = s.get(ProcessVersionRow, row.version_id)
        assert version is not None
        state = unpack(row.workflow, version.pack_dictionary)
        kept = load_view("", state)
    assert isinstance(kept, FinishedRun)  # not the whole task tree: nothing runs again
    assert len(state) < 300, state


def test_a_stale_id_from_the_broker_does_not_run_an_instance_before_it_is_due(
    open_test_project: Any,
) -> None:
    timed = chain("timed", start(), timer("pause", "PT1H"), script("s", "woke = True"), end())
    project = open_test_project(catalogs={"items": catalog()}, processes={"timed": timed})
    with project.db.session() as s:
        inst_id = runtime.start_process(s, "timed", {}, {"kind": "user"}).id
    worker = _executor(project, "celery-worker")
    assert worker.run_instance(inst_id) == "waiting"  # now it waits an hour for its timer
    with project.db.session() as s:
        runs = s.get(InstanceRow, inst_id).runs  # type: ignore[union-attr]
    # The same id delivered again (a re-sent message): it is not due, so nothing runs.
    assert worker.run_instance(inst_id) is None
    with project.db.session() as s:
        row = s.get(InstanceRow, inst_id)
        assert row is not None and (row.state, row.runs) == ("waiting", runs)


def _raw(project: Any, sql: str, **params: Any) -> list[Any]:
    from sqlalchemy import text

    with project.db.engine.connect() as conn:
        return [
            bytes(v) if isinstance(v, memoryview) else v
            for v in conn.execute(text(sql), params).scalars()
        ]


def test_later_instances_are_packed_against_what_the_first_completed_one_looked_like(
    open_test_project: Any,
) -> None:
    project = open_test_project(
        catalogs={"items": catalog("[{on: created, process: fetch}]")}, processes={"fetch": FETCH}
    )
    create(project, "items", {"title": "first", "status": "ready"})
    run(project)
    [dictionary] = _raw(project, "SELECT pack_dictionary FROM process_versions")
    assert dictionary and b'"status":"ready"' in dictionary  # learned from the first one
    create(project, "items", {"title": "second", "status": "ready"})
    run(project)
    first, second = instances(project)
    assert first.state == second.state == "completed"
    states = _raw(project, "SELECT workflow FROM instances ORDER BY id")
    assert all(state[:1] == b"\x01" for state in states)  # the first one's end, too
    plainly = pack(unpack(states[1], dictionary).encode())
    assert len(states[1]) * 2 < len(plainly)
    changed = _raw(
        project,
        "SELECT changed FROM steps WHERE instance_id = :i AND changed IS NOT NULL",
        i=second.id,
    )
    assert changed and all(v[:1] == b"\x01" for v in changed)
    # Operators read both alike.
    shown = detail(project, second.id)
    assert shown["variables"]["item"]["title"] == "second"
    load = next(s for s in shown["steps"] if s["element_id"] == "load")
    assert load["changed"]["item"]["title"] == "second"


def test_a_worker_reads_states_packed_against_a_dictionary_learned_after_it_looked(
    open_test_project: Any,
) -> None:
    project = open_test_project(catalogs={"items": catalog()}, processes={"approve": APPROVE})
    stale, fresh = _executor(project, "stale"), _executor(project, "fresh")

    waiting = _start_approval(project)
    stale.run_due()  # caches the version, which has no dictionary yet
    _approve(project, waiting)
    fresh.run_due()  # completes it: the version learns its dictionary
    assert detail(project, waiting)["state"] == "completed"
    later = _start_approval(project)
    assert _raw(project, "SELECT workflow FROM instances WHERE id = :i", i=later)[0][:1] == b"\x01"
    stale.run_due()
    _approve(project, later)
    stale.run_due()
    shown = detail(project, later)
    assert shown["state"] == "completed" and shown["variables"]["done"] is True


def _prepared_ratio(expression: str) -> str:
    return chain(
        "ratio",
        start(),
        script("prep", "label = 'ratio of ' + str(d)"),
        script("calc", f"ratio = {expression}"),
        end(),
    )


def test_retry_with_upgrade_keeps_a_packed_step_log_readable(open_test_project: Any) -> None:
    project = open_test_project(
        catalogs={"items": catalog()},
        processes={"ratio": _prepared_ratio("1 / d")},
    )
    with project.db.session() as s:
        runtime.start_process(s, "ratio", {"d": 2}, {"kind": "user"})
        failing = runtime.start_process(s, "ratio", {"d": 0}, {"kind": "user"}).id
    run(project)
    assert detail(project, failing)["state"] == "incident"
    packed = _raw(
        project,
        "SELECT changed FROM steps WHERE instance_id = :i AND changed IS NOT NULL",
        i=failing,
    )
    assert packed and packed[0][:1] == b"\x01"
    fixed = open_test_project(processes={"ratio": _prepared_ratio("1 / 4")})
    with fixed.db.session() as s:
        runtime.retry(s, failing, "tester", upgrade=True)
    run(fixed)
    shown = detail(fixed, failing)
    assert shown["state"] == "completed" and shown["version"] == 2
    prep = next(s for s in shown["steps"] if s["element_id"] == "prep")
    assert prep["changed"] == {"label": "ratio of 0"}


def test_a_write_stays_made_once_when_the_next_step_fails(open_test_project: Any) -> None:
    """A step that writes commits before the next step that does anything (or with the
    end of the run): a failure after it keeps the write, and a retry does not repeat it."""
    made = service("c", "records.create", "made", catalog="'items'", data="{'title': 'once'}")
    process = chain("w", start(), made, script("s", "x = 1 / 0"), end())
    project = open_test_project(catalogs={"items": catalog()}, processes={"w": process})
    with project.db.session() as s:
        inst_id = runtime.start_process(s, "w", {}, {"kind": "user"}).id
    run(project)
    d = detail(project, inst_id)
    assert d["state"] == "incident"
    assert [r.data["title"] for r in records_of(project, "items")] == ["once"]
    assert [s["outcome"] for s in d["steps"] if s["element_id"] == "c"] == ["completed"]
    with project.db.session() as s:
        runtime.retry(s, inst_id, "tester")
    run(project)
    assert detail(project, inst_id)["state"] == "incident"
    assert [r.data["title"] for r in records_of(project, "items")] == ["once"]


def test_a_queued_instance_keeps_only_its_start_and_always_loads_with_the_same_task_ids(
    open_test_project: Any,
) -> None:
    """Until its first run an instance stores its start variables and a seed, not a
    workflow; every load builds the same tasks with the same ids (idempotency keys are
    made of them), and views show it as a new run of its process."""
    from engine.bpmn import ProcessRun

    project = open_test_project(catalogs={"items": catalog()}, processes={"approve": APPROVE})
    with project.db.session() as s:
        first = runtime.start_process(s, "approve", {"n": 1}, {"kind": "user"})
        second = runtime.start_process(s, "approve", {"n": 1}, {"kind": "user"})
        version = s.get(ProcessVersionRow, first.version_id)
        assert version is not None
        stored = [unpack(r.workflow, version.pack_dictionary) for r in (first, second)]
    assert all(state.startswith('{"catflow_start"') and len(state) < 200 for state in stored)

    def task_ids(state: str) -> list[str]:
        run_ = ProcessRun.load(version.spec, state)
        return sorted(str(t) for t in run_.workflow.tasks)

    assert task_ids(stored[0]) == task_ids(stored[0])  # the same tasks, load after load
    assert set(task_ids(stored[0])).isdisjoint(task_ids(stored[1]))  # others per instance
    shown = detail(project, first.id)
    assert shown["state"] == "queued"
    assert shown["variables"] == {"n": 1}
    assert shown["elements"] == ProcessRun.start(version.spec, {"n": 1}).element_states()
    assert "completed" not in shown["elements"].values()
    # Its first run goes on from there, and what it stores then is the full state.
    run(project)
    assert detail(project, first.id)["state"] == "waiting"
    with project.db.session() as s:
        row = s.get(InstanceRow, first.id)
        assert row is not None
        assert not unpack(row.workflow, version.pack_dictionary).startswith('{"catflow_start"')


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_a_database_lost_mid_step_puts_the_step_off_instead_of_raising_an_incident(
    open_test_project: Any,
) -> None:
    """The worker's database session dies while a step reads a record (its backend is
    terminated, as a restart of PostgreSQL would), twice. That is the database's
    failure, not the step's: the step is put off, for twice as long the second
    time, without using up any of the step's attempts; then the instance completes."""
    from sqlalchemy import event, text

    from engine.runtime._executor import STORE_RETRY_SECONDS

    flow_ = chain(
        "reader",
        start(),
        service("load", "records.get", "item", catalog="'items'", id="rid"),
        end(),
    )
    project = open_test_project(catalogs={"items": catalog()}, processes={"reader": flow_})
    item_id = create(project, "items", {"title": "kept"})
    with project.db.session() as s:
        inst_id = runtime.start_process(s, "reader", {"rid": item_id}, {"kind": "user"}).id

    killed: list[int] = []

    @event.listens_for(project.db.engine, "before_cursor_execute")
    def _kill_twice(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        if len(killed) < 2 and statement.lstrip().startswith("SELECT records.id"):
            pid = conn.connection.dbapi_connection.info.backend_pid
            killed.append(pid)
            with project.db.engine.connect() as admin:
                admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
                admin.commit()

    def put_off_once_more(times: int) -> None:
        before = runtime_now()
        run(project)
        assert len(killed) == times, "the step's read never reached the database"
        shown = detail(project, inst_id)
        assert shown["state"] == "waiting"
        assert shown["incidents"] == []
        with project.db.session() as s:
            row = s.get(InstanceRow, inst_id)
            assert row is not None and row.due_at is not None
            waits = (row.due_at - before).total_seconds()
            message = s.scalars(
                select(StepRow.message)
                .where(StepRow.instance_id == inst_id, StepRow.outcome == "waiting")
                .order_by(StepRow.id.desc())
            ).first()
            version = s.get(ProcessVersionRow, row.version_id)
            assert version is not None
            state = json.loads(unpack(row.workflow, version.pack_dictionary))
            s.execute(
                sql_update(InstanceRow)
                .where(InstanceRow.id == inst_id)
                .values(due_at=runtime_now())
            )
        assert "the database could not be reached or was busy" in (message or "")
        assert f"{times} time(s) so far" in (message or "")
        assert "attempt" not in (message or "")
        expected = STORE_RETRY_SECONDS * 2 ** (times - 1)  # 10 s, then 20 s
        assert expected - 1 <= waits <= expected + 5
        [load] = [
            t for t in state["tasks"].values() if "catflow_store_put_offs" in t["internal_data"]
        ]
        assert load["internal_data"]["catflow_store_put_offs"] == times
        assert load["internal_data"].get("catflow_attempts", 0) == 0  # no attempt used up

    put_off_once_more(1)
    put_off_once_more(2)
    event.remove(project.db.engine, "before_cursor_execute", _kill_twice)
    run(project)
    shown = detail(project, inst_id)
    assert shown["state"] == "completed"
    assert shown["variables"]["item"]["title"] == "kept"


def test_a_record_changed_while_a_step_updates_it_keeps_both_changes(
    open_test_project: Any,
) -> None:
    """A process's update is worked out from the record as read and written when the
    step commits. Someone changes the record in between: the commit finds it moved,
    and the run is done again — nothing of either change is lost, and the step log
    shows the update once."""
    from sqlalchemy import event

    from engine.catalogs import Cause

    flow_ = chain(
        "marker",
        start(),
        service(
            "mark",
            "records.update",
            "marked",
            catalog="'items'",
            id="rid",
            data="{'status': 'done'}",
        ),
        end(),
    )
    project = open_test_project(catalogs={"items": catalog()}, processes={"marker": flow_})
    item_id = create(project, "items", {"title": "first"})
    with project.db.session() as s:
        inst_id = runtime.start_process(s, "marker", {"rid": item_id}, {"kind": "user"}).id

    meddled: list[str] = []

    @event.listens_for(project.db.engine, "after_cursor_execute")
    def _meddle(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        # Right after the step read the record (its update planned, not yet written),
        # another writer renames it.
        if not meddled and statement.lstrip().startswith("SELECT records.id"):
            meddled.append(statement)
            with project.db.session() as other:
                project.records.update(
                    other, "items", item_id, {"title": "renamed"}, Cause.person("someone")
                )

    run(project)
    event.remove(project.db.engine, "after_cursor_execute", _meddle)
    assert meddled, "the step never read the record"
    shown = detail(project, inst_id)
    assert shown["state"] == "completed"
    record = get(project, "items", item_id)
    assert (record["title"], record["status"]) == ("renamed", "done")
    assert shown["variables"]["marked"]["title"] == "renamed"  # what the step returned
    assert [s["element_id"] for s in shown["steps"] if s["element_id"] == "mark"] == ["mark"]
    with project.db.session() as s:
        versions = s.scalars(
            select(OutboxEvent.changed)
            .where(OutboxEvent.record_id == item_id, OutboxEvent.kind == "updated")
            .order_by(OutboxEvent.id)
        ).all()
    assert versions == [["title"], ["status"]]  # two updates, in commit order


def test_a_dictionary_whose_commit_failed_is_not_used_to_pack_later_instances(
    open_test_project: Any,
) -> None:
    """The first completed instance teaches its version a dictionary in the same
    transaction as its end. If that transaction fails, the database has no dictionary,
    and the worker must not pack later instances against the one it learned."""
    from sqlalchemy.exc import DBAPIError

    project = open_test_project(catalogs={"items": catalog()}, processes={"approve": APPROVE})
    worker = _executor(project, "w")

    first = _start_approval(project)
    worker.run_due()
    _approve(project, first)
    # The database refuses the end of the first instance (and the dictionary with it).
    postgres = project.db.engine.dialect.name == "postgresql"
    refuse = (
        [
            "CREATE FUNCTION refuse_end() RETURNS trigger LANGUAGE plpgsql AS "
            "$$BEGIN RAISE EXCEPTION 'refused'; END$$",
            "CREATE TRIGGER refuse_end BEFORE UPDATE OF state ON instances FOR EACH ROW "
            "WHEN (NEW.state = 'completed') EXECUTE FUNCTION refuse_end()",
        ]
        if postgres
        else [
            "CREATE TRIGGER refuse_end BEFORE UPDATE OF state ON instances "
            "WHEN NEW.state = 'completed' BEGIN SELECT RAISE(ABORT, 'refused'); END"
        ]
    )
    with project.db.engine.begin() as conn:
        for statement in refuse:
            conn.exec_driver_sql(statement)
    with pytest.raises(DBAPIError):
        worker.run_due()
    assert _raw(project, "SELECT pack_dictionary FROM process_versions") == [None]
    with project.db.engine.begin() as conn:
        conn.exec_driver_sql("DROP TRIGGER refuse_end" + (" ON instances" if postgres else ""))
    # The same worker goes on: the next instance's states must be readable with what
    # the database holds.
    later = _start_approval(project)
    worker.run_due()
    _approve(project, later)
    worker.run_due()
    [dictionary] = _raw(project, "SELECT pack_dictionary FROM process_versions")
    for inst_id in (first, later):
        [stored] = _raw(project, "SELECT workflow FROM instances WHERE id = :i", i=inst_id)
        unpack(stored, dictionary)  # raises if packed against another dictionary
    shown = detail(project, later)
    assert shown["state"] == "completed" and shown["variables"]["done"] is True
