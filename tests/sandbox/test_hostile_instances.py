"""Hostile process instances fail as incidents while a good one completes beside them.

The sandbox suite shows each hostile script failing on its own; this shows the
same in the engine, with a serving runner: several hostile instances (runaway
CPU, memory, output, an escape attempt, exit, a poisoned generator, values that
cannot be stored) and good ones, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from bpmn_builder import chain, end, script, start
from flow_helpers import catalog, detail, instances
from hostile_scripts import POISONED_GENERATOR

from engine import runtime
from engine.runtime import Project, Runner

CAUSE = {"kind": "user"}
FAST = {"script_cpu_seconds": "0.5"}

GOOD_SCRIPT = (
    "total = sum(items)\n"
    "second = dig({'items': items}, 'items.1')\n"
    "label = f'{len(items)} items on {datetime.date(2026, 11, 23):%d.%m.%Y}'\n"
)
POISON = POISONED_GENERATOR


def process(process_id: str, code: str, name: str, properties: dict[str, str] | None = None) -> str:
    return chain(process_id, start(), script("task", code, name), end(), properties=properties)


PROCESSES = {
    "slow_spin": process(
        "slow_spin", "n = 0\nwhile True:\n    n += 1", "Spin", {"script_cpu_seconds": "3"}
    ),
    "good": process("good", GOOD_SCRIPT, "Calculate"),
    "spin": process("spin", "while True:\n    pass", "Spin forever", FAST),
    "hog": process(
        "hog",
        "chunks = []\nwhile True:\n    chunks.append(str(len(chunks)) * 1000)",
        "Hog memory",
        {"script_memory_mib": "128"},  # a process's own, lower, limit
    ),
    "peek": process("peek", "x = 1\nleak = '{0.__class__.__mro__}'.format(record)", "Peek"),
    "chatter": process("chatter", "x = 1\nwhile True:\n    print('spam')", "Chatter"),
    "quit": process("quit", "raise SystemExit(0)", "Quit"),
    "poison": process("poison", POISON, "Poison", FAST),
    "stamp": process("stamp", "when = datetime.datetime(2026, 11, 23, 9, 30)", "Stamp"),
    "tags": process("tags", "tags = {'a', 'b'}", "Tags"),
    "tamper": process("tamper", "dig = None\nunique = 'gone'\nitems.append(99)", "Tamper"),
}

# What each hostile instance's incident says: the task, the line where known, the reason.
INCIDENTS = {
    "spin": "task 'task' (Spin forever): script exceeded the CPU time limit of 0.5 s",
    "hog": "task 'task' (Hog memory): script exceeded the memory limit of 128 MiB",
    "peek": (
        "task 'task' (Peek), line 2: NotImplementedError: "
        "str.format is not available to scripts; use f-strings"
    ),
    "chatter": "task 'task' (Chatter), line 3: script printed more than 64 KiB",
    "quit": "task 'task' (Quit), line 1: SystemExit: 0",
    "poison": "task 'task' (Poison): script exceeded the CPU time limit of 0.5 s",
    "stamp": (
        "task 'task' (Stamp): variable 'when' holds a datetime, which cannot be kept "
        "between steps; store a JSON value instead (e.g. value.isoformat())"
    ),
    "tags": "task 'task' (Tags): variable 'tags' holds a set, which cannot be kept",
}


def _wait_for(
    project: Project, condition: Callable[[], bool], what: str, timeout: float = 60.0
) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            states = {i.id: (i.process_id, i.state, i.error) for i in instances(project)}
            raise AssertionError(f"timed out waiting for {what}: {states}")
        time.sleep(0.05)


def _states(project: Project) -> dict[int, str]:
    return {i.id: i.state for i in instances(project)}


def _start(project: Project, process_id: str, variables: dict[str, Any]) -> int:
    with project.db.session() as s:
        return runtime.start_process(s, process_id, variables, CAUSE).id


def test_hostile_instances_become_incidents_while_good_ones_complete(
    open_test_project: Any,
) -> None:
    project = open_test_project(
        catalogs={"items": catalog()}, processes=PROCESSES, poll_interval=0.05
    )
    items = {"items": [1, 2, 3], "record": {"id": 1}}
    slow = _start(project, "slow_spin", {})
    good = _start(project, "good", items)
    hostile = {name: [_start(project, name, items) for _ in range(2)] for name in INCIDENTS}
    tamper = _start(project, "tamper", items)

    stop = threading.Event()
    # More workers than sandbox processes: they queue for the processes, and a
    # killed process's replacement serves the next in line.
    runner = Runner(project, workers=4)
    serving = threading.Thread(target=runner.serve, args=(stop,), name="serve")
    serving.start()
    try:
        # The good instance completes while the runaway beside it is still spinning.
        _wait_for(project, lambda: _states(project)[good] == "completed", "the good instance")
        assert _states(project)[slow] in ("queued", "running"), detail(project, slow)["error"]

        every = [slow, tamper, *(i for ids in hostile.values() for i in ids)]
        _wait_for(
            project,
            lambda: all(_states(project)[i] in ("completed", "incident") for i in every),
            "the hostile instances",
        )
        # The runner is still serving: a good instance started now completes too.
        after = _start(project, "good", {"items": [5, 6]})
        _wait_for(
            project, lambda: _states(project)[after] == "completed", "the instance started after"
        )
        assert serving.is_alive()
    finally:
        stop.set()
        serving.join(30)
    assert not serving.is_alive()

    rows = {i.id: i for i in instances(project)}
    for name, ids in hostile.items():
        for instance_id in ids:
            row = rows[instance_id]
            assert row.state == "incident", (name, row.state)
            assert row.error is not None and row.error["element_id"] == "task"
            assert row.error["message"].startswith(INCIDENTS[name]), row.error["message"]
            [incident] = detail(project, instance_id)["incidents"]
            assert incident["kind"] == "script"
    assert rows[slow].state == "incident"
    assert rows[slow].error is not None
    assert rows[slow].error["message"] == (
        "task 'task' (Spin): script exceeded the CPU time limit of 3 s"
    )

    assert detail(project, good)["variables"] == {
        **items,
        "total": 6,
        "second": 2,
        "label": "3 items on 23.11.2026",
    }
    assert detail(project, after)["variables"]["total"] == 11
    # Overwriting the helpers was the tampering instance's own business.
    assert rows[tamper].state == "completed"
    assert detail(project, tamper)["variables"] == {
        **items,
        "items": [1, 2, 3, 99],
        "dig": None,
        "unique": "gone",
    }
