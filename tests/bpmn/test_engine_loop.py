"""The engine loop: Catflow runs tasks in the order SpiffWorkflow's own loop would.

ProcessRun drives SpiffWorkflow with its own loop and a faster scan of the task tree
(engine/bpmn/_scan.py). These tests run the same models both ways and compare
what ran, in which order, with which data. (The test suite also compares every
scan with SpiffWorkflow's, CATFLOW_CHECK_SCANS in conftest.py.)
"""

from __future__ import annotations

from typing import Any

import pytest

from engine.bpmn import ProcessRun, TaskInfo, validate_file
from engine.components import OPERATORS

NS = (
    'xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" '
    'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"'
)


def _model(body: str, process_id: str = "p") -> str:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><bpmn:definitions {NS} id="d" '
        f'targetNamespace="https://catflow.dev/test"><bpmn:process id="{process_id}" '
        f'isExecutable="true">{body}</bpmn:process></bpmn:definitions>'
    )


def _script(id_: str, code: str) -> str:
    return f'<bpmn:scriptTask id="{id_}"><bpmn:script>{code}</bpmn:script></bpmn:scriptTask>'


def _flow(id_: str, source: str, target: str, condition: str | None = None) -> str:
    if condition is None:
        return f'<bpmn:sequenceFlow id="{id_}" sourceRef="{source}" targetRef="{target}"/>'
    return (
        f'<bpmn:sequenceFlow id="{id_}" sourceRef="{source}" targetRef="{target}">'
        f'<bpmn:conditionExpression xsi:type="bpmn:tFormalExpression">{condition}'
        "</bpmn:conditionExpression></bpmn:sequenceFlow>"
    )


# Three parallel branches, joined; then an embedded subprocess with a loop inside
# (an exclusive gateway sending the flow back three times); then a last script.
BRANCHES_AND_SUBPROCESS = _model(
    '<bpmn:startEvent id="start"/>'
    '<bpmn:parallelGateway id="split"/>'
    + _script("a", "a = 1")
    + _script("b", "b = 2")
    + _script("c", "c = [a_ for a_ in range(3)]")
    + '<bpmn:parallelGateway id="join"/>'
    '<bpmn:subProcess id="sub"><bpmn:startEvent id="sub_start"/>'
    + _script("count_from", "n = 0")
    + _script("count", "n = n + 1")
    + '<bpmn:exclusiveGateway id="again" default="out"/><bpmn:endEvent id="sub_end"/>'
    + _flow("s1", "sub_start", "count_from")
    + _flow("s2", "count_from", "count")
    + _flow("s3", "count", "again")
    + _flow("back", "again", "count", "n &lt; 3")
    + _flow("out", "again", "sub_end")
    + "</bpmn:subProcess>"
    + _script("last", "total = a + b + len(c) + n")
    + '<bpmn:endEvent id="end"/>'
    + _flow("f1", "start", "split")
    + _flow("f2", "split", "a")
    + _flow("f3", "split", "b")
    + _flow("f4", "split", "c")
    + _flow("f5", "a", "join")
    + _flow("f6", "b", "join")
    + _flow("f7", "c", "join")
    + _flow("f8", "join", "sub")
    + _flow("f9", "sub", "last")
    + _flow("f10", "last", "end")
)


def _loop(turns: int) -> str:
    return _model(
        '<bpmn:startEvent id="start"/>'
        + _script("zero", "i = 0")
        + _script("step", "i = i + 1")
        + '<bpmn:exclusiveGateway id="more" default="done"/><bpmn:endEvent id="end"/>'
        + _flow("f1", "start", "zero")
        + _flow("f2", "zero", "step")
        + _flow("f3", "step", "more")
        + _flow("again", "more", "step", f"i &lt; {turns}")
        + _flow("done", "more", "end")
    )


class _Recorder:
    def __init__(self) -> None:
        self.ran: list[tuple[str, str]] = []

    def task_started(self, task: TaskInfo) -> None:
        pass

    def task_finished(
        self, task: TaskInfo, outcome: str, changed: dict[str, Any], message: str | None
    ) -> None:
        self.ran.append((task.element_id, outcome))

    def call_service(self, task: TaskInfo, operator: str, params: dict[str, Any]) -> Any:
        raise AssertionError("no service tasks here")


def _spec(xml: str) -> str:
    parsed = validate_file(xml.encode(), "loop.bpmn", OPERATORS.all(), max_bytes=1 << 20)
    return parsed.processes[0].spec


def _by_catflow(spec: str) -> tuple[list[tuple[str, str]], dict[str, Any], str]:
    run, hooks = ProcessRun.start(spec, {}), _Recorder()
    outcome = run.advance(hooks)
    while outcome.status == "runnable":  # took turns: a long loop
        outcome = run.advance(hooks)
    return hooks.ran, run.variables(), outcome.status


def _by_spiffworkflow(spec: str) -> tuple[list[tuple[str, str]], dict[str, Any], str]:
    """The same run with SpiffWorkflow's own do_engine_steps and the same hooks."""
    run, hooks = ProcessRun.start(spec, {}), _Recorder()
    run._hooks = hooks
    run._budget = 1_000_000
    run.engine.services = hooks.call_service
    run.workflow.do_engine_steps(will_complete_task=run._will_run, did_complete_task=run._did_run)
    return hooks.ran, run.variables(), run.status().status


def test_branches_and_a_looping_subprocess_run_as_spiffworkflow_runs_them() -> None:
    spec = _spec(BRANCHES_AND_SUBPROCESS)
    ours, theirs = _by_catflow(spec), _by_spiffworkflow(spec)
    assert ours == theirs
    ran, variables, status = ours
    assert status == "completed"
    assert variables["total"] == 1 + 2 + 3 + 3
    elements = [element for element, _ in ran]
    assert elements.count("count") == 3
    assert elements.index("join") > max(elements.index(x) for x in ("a", "b", "c"))


@pytest.mark.parametrize("turns", [1, 40])
def test_a_loop_runs_as_spiffworkflow_runs_it(turns: int) -> None:
    spec = _spec(_loop(turns))
    ours, theirs = _by_catflow(spec), _by_spiffworkflow(spec)
    assert ours == theirs
    assert ours[1]["i"] == turns
    assert [element for element, _ in ours[0]].count("step") == turns


def test_a_loop_of_hundreds_of_turns_runs_to_its_end() -> None:
    """Each turn adds levels to the task tree. SpiffWorkflow's own scan stops 1,000
    levels down, so its loop stops finding the next task after about 500 turns and
    the instance waits for nothing; Catflow's scan walks the whole tree."""
    spec = _spec(_loop(700))
    theirs = _by_spiffworkflow(spec)
    assert (theirs[2], theirs[1]["i"]) == ("waiting", 499)  # what it was, before
    ran, variables, status = _by_catflow(spec)
    assert (status, variables["i"]) == ("completed", 700)
    assert [element for element, _ in ran].count("step") == 700
