"""`catflow serve` with worker processes: instances run in children, on either store."""

from __future__ import annotations

import threading
import time
from typing import Any

from bpmn_builder import chain, end, script, start
from flow_helpers import catalog, create, instances
from sqlalchemy import select

from engine.runtime import Runner
from engine.store import StepRow

NOOP = chain("noop", start(), script("s", "seen = record['title']"), end())


def _wait(what: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not what():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_worker_processes_run_the_instances_and_stop_with_the_server(
    open_test_project: Any,
) -> None:
    project = open_test_project(
        catalogs={"items": catalog("[{on: created, process: noop}]")},
        processes={"noop": NOOP},
        worker_name="server",
    )
    runner = Runner(project, workers=1, processes=2)
    stop = threading.Event()
    serving = threading.Thread(target=runner.serve, args=(stop,))
    serving.start()
    try:
        for n in range(20):
            create(project, "items", {"title": f"t{n}"})
        _wait(lambda: sum(i.state == "completed" for i in instances(project)) == 20)
    finally:
        stop.set()
        serving.join(60)
    assert not serving.is_alive(), "the server did not stop"
    assert runner._children is not None and runner._children.alive() == 0
    with project.db.session() as s:
        workers = set(s.scalars(select(StepRow.worker)))
    # Each child has a worker name of its own (leases tell them apart); none ran here.
    assert workers <= {"server/p1", "server/p2"} and workers
    assert "server" not in workers


def test_a_change_committed_here_wakes_the_dispatcher_at_once(open_test_project: Any) -> None:
    project = open_test_project(
        catalogs={"items": catalog("[{on: created, process: noop}]")},
        processes={"noop": NOOP},
        poll_interval=30.0,  # were it polled, the instance would start 30 s late
    )
    runner = Runner(project, workers=1)
    stop = threading.Event()
    serving = threading.Thread(target=runner.serve, args=(stop,))
    serving.start()
    try:
        time.sleep(0.5)  # the dispatcher is waiting now
        create(project, "items", {"title": "now"})
        _wait(lambda: [i.state for i in instances(project)] == ["completed"], timeout=10)
    finally:
        stop.set()
        serving.join(60)
