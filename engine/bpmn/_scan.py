"""SpiffWorkflow's two per-task scans of the task tree, done with less overhead.

SpiffWorkflow looks for work by walking the whole task tree: its engine loop once
per round for READY tasks (``get_tasks(state=READY)``), and every completed task
for WAITING ones (``update_waiting_tasks``). Its walk is a general iterator (depth
bookkeeping, a filter object, a list used as a queue); for a process of a dozen
elements these walks were about a sixth of a worker's CPU per run. The functions
here walk the same tree in the same order and prune the same branches:

* depth first, a task before its children, children in order;
* the children of a task only if its state is at least FUTURE (predicted
  branches hold no definite work);
* for READY, also into a task's subprocess (BPMN iteration); for WAITING, not
  (``update_waiting_tasks`` uses the plain iterator).

SpiffWorkflow's iterator also stops descending 1,000 levels deep; these walk the
whole tree. Every turn of a loop adds levels, so with SpiffWorkflow's own scan an
instance whose loop turned about 500 times stopped finding its next task and sat
"waiting" for nothing.

With ``CATFLOW_CHECK_SCANS=1`` (the test suite sets it) every READY scan is
compared with SpiffWorkflow's own, and a difference raises.
"""

from __future__ import annotations

import os
from typing import Any

from SpiffWorkflow.util.task import TaskIterator, TaskState

_READY = TaskState.READY
_WAITING = TaskState.WAITING
_FUTURE = TaskState.FUTURE
_CHECK = os.environ.get("CATFLOW_CHECK_SCANS") == "1"
_SPIFF_MAX_DEPTH = 1000


def ready_tasks(workflow: Any) -> list[Any]:
    """``workflow.get_tasks(state=TaskState.READY)``: the READY tasks, tree order."""
    found = _in_state(workflow, _READY)
    if found is None or len(found) > 1:  # their order is the tree's: walk it
        found = _ready_in_tree_order(workflow)
    if _CHECK and _shallow(workflow, with_subprocesses=True):
        expected = workflow.get_tasks(state=_READY)
        if found != expected:
            raise AssertionError(f"READY scan differs: {found} != {expected}")
    return found


def _in_state(workflow: Any, state: int) -> list[Any] | None:
    """The tasks of ``workflow`` and of the subprocesses under it in ``state``, in no
    particular order; None when which subprocesses are under it takes a walk to know.

    A look at each task, but no walk: every turn of a loop adds a level to the tree,
    and walking it for each task run made a loop of n turns cost n² (2,000 turns:
    17 s). None or one is what a walk would find; several need the walk's order.
    """
    top = workflow.top_workflow
    if workflow is top:
        under = list(top.subprocesses.values())  # every subprocess runs inside it
    elif len(top.subprocesses) == 1:
        under = []  # the only subprocess is this one
    else:
        return None
    found = [task for task in workflow.tasks.values() if task._state & state]
    for subprocess in under:
        found.extend(task for task in subprocess.tasks.values() if task._state & state)
    return found


def _ready_in_tree_order(workflow: Any) -> list[Any]:
    found = []
    subprocesses = workflow.top_workflow.subprocesses
    stack = [workflow.task_tree]
    while stack:
        task = stack.pop()
        if task._state & _READY:
            found.append(task)
        subprocess = subprocesses.get(task.id) if subprocesses else None
        if subprocess is not None:
            stack.extend(_children_reversed(task))
            stack.append(subprocess.task_tree)
        elif task._children and task._state >= _FUTURE:
            stack.extend(_children_reversed(task))
    return found


def update_waiting_tasks(workflow: Any) -> None:
    """``Workflow.update_waiting_tasks``: update every WAITING task, in tree order.

    As SpiffWorkflow's does, the walk goes on lazily while tasks are updated: a task's
    children are read when the task is reached, before its update.
    """
    if _CHECK and _shallow(workflow, with_subprocesses=False):
        mine = [t for t in _walk(workflow.task_tree) if t._state & _WAITING]
        expected = list(TaskIterator(workflow.task_tree, state=_WAITING))
        if mine != expected:
            raise AssertionError(f"WAITING scan differs: {mine} != {expected}")
    for task in workflow.tasks.values():  # a plain loop: any() over a generator is slower
        if task._state & _WAITING:
            break
    else:
        return  # the walk would update nothing (and updates are all it does)
    stack = [workflow.task_tree]
    while stack:
        task = stack.pop()
        if task._children and task._state >= _FUTURE:
            stack.extend(_children_reversed(task))
        if task._state & _WAITING:
            task.task_spec._update(task)


def _children_reversed(task: Any) -> list[Any]:
    """``reversed(task.children)``: the task's children, last first, for a stack."""
    tasks = task.workflow.tasks
    return [tasks[child] for child in reversed(task._children)]


def _shallow(workflow: Any, *, with_subprocesses: bool) -> bool:
    """Whether SpiffWorkflow's walk would reach every task (its depth limit is 1,000
    and a tree is no deeper than it has tasks): only then are the two compared."""
    tasks = len(workflow.tasks)
    if with_subprocesses:
        tasks += sum(len(sub.tasks) for sub in workflow.top_workflow.subprocesses.values())
    return tasks < _SPIFF_MAX_DEPTH


def _walk(root: Any, *, prune: bool = True) -> list[Any]:
    """The tasks under ``root`` in tree order: those a WAITING scan visits (without
    updating any), or with ``prune=False`` every one."""
    visited, stack = [], [root]
    while stack:
        task = stack.pop()
        visited.append(task)
        if task._children and (not prune or task._state >= _FUTURE):
            stack.extend(_children_reversed(task))
    return visited


def tree_order(workflow: Any) -> list[Any]:
    """Every task of ``workflow`` (not of its subprocesses), depth first, in order."""
    return _walk(workflow.task_tree, prune=False)


def install(workflow: Any) -> None:
    """Have ``workflow`` (and the subprocesses it has) use the faster WAITING scan."""
    # Only the top workflow keeps the subprocesses (by their task's id).
    for each in (workflow, *getattr(workflow, "subprocesses", {}).values()):
        if "update_waiting_tasks" not in each.__dict__:
            each.update_waiting_tasks = _bound(each)


def _bound(workflow: Any) -> Any:
    def update() -> None:
        update_waiting_tasks(workflow)

    return update
