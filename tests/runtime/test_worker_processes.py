"""`catflow serve` with worker processes: instances run in children, on either store."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from bpmn_builder import chain, end, script, start
from conftest import settings_for, write_files
from flow_helpers import catalog, create, instances
from sqlalchemy import select

from engine import metrics
from engine.runtime import Runner, open_project
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
    # The children's step durations reach the server's /metrics (they ran every step).
    body, _ = metrics.render({}, 0)
    counts = {
        line.split("{")[1].split("}")[0]: float(line.rsplit(" ", 1)[1])
        for line in body.decode().splitlines()
        if line.startswith("catflow_step_duration_seconds_count{")
    }
    assert counts.get('element_type="ScriptTask"', 0) >= 20, counts
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


@pytest.mark.slow
def test_serve_with_worker_processes_restarts_a_killed_one_and_stops_them_all(
    project_dir: Path, db_url: str, tmp_path: Path
) -> None:
    import psutil

    write_files(project_dir, {"items": catalog("[{on: created, process: noop}]")}, {"noop": NOOP})
    project = open_project(settings_for(project_dir, db_url))
    log = tmp_path / "serve.log"
    env = {**os.environ, "CATFLOW_DATABASE_URL": db_url, "CATFLOW_LEASE_SECONDS": "2"}
    with log.open("ab") as out:
        server = subprocess.Popen(
            [
                *(sys.executable, "-m", "engine", "--project", str(project_dir), "serve"),
                *("--no-http", "--worker-processes", "2", "--workers", "1"),
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )

    def children() -> list[psutil.Process]:
        found = []
        for child in psutil.Process(server.pid).children():
            try:
                if "engine.runtime._processes" in " ".join(child.cmdline()):
                    found.append(child)
            except psutil.Error:  # one that was just killed (a zombie until reaped)
                continue
        return found

    def completed() -> int:
        return sum(i.state == "completed" for i in instances(project))

    try:
        _wait(lambda: len(children()) == 2)
        for n in range(10):
            create(project, "items", {"title": f"a{n}"})
        _wait(lambda: completed() == 10)
        first = children()
        victim = first[0]
        victim.kill()

        def replaced() -> bool:
            # One look per check: two looks could see the victim alive, then dying (its
            # command line already empty), and pass before anything was started again.
            now = {c.pid for c in children()}
            return (
                len(now) == 2 and victim.pid not in now and len(now - {c.pid for c in first}) == 1
            )

        _wait(replaced)
        for n in range(10):
            create(project, "items", {"title": f"b{n}"})
        _wait(lambda: completed() == 20)
        survivors = children()
        server.send_signal(signal.SIGINT)
        assert server.wait(60) == 0, log.read_text()[-3000:]
        assert not any(c.is_running() and c.status() != "zombie" for c in survivors)
        text = log.read_text()
        assert "worker process ended; starting it again" in text
        assert "Traceback" not in text
    finally:
        if server.poll() is None:
            server.kill()
            server.wait(10)
        project.close()
