"""One instance's workflow in memory: advance it task by task, report where it stands."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition
from SpiffWorkflow.bpmn.specs.mixins.events.intermediate_event import BoundaryEvent
from SpiffWorkflow.bpmn.util import BpmnEvent
from SpiffWorkflow.bpmn.util.diff import diff_workflow, migrate_workflow
from SpiffWorkflow.exceptions import SpiffWorkflowException
from SpiffWorkflow.spiff.specs.event_definitions import ErrorEventDefinition
from SpiffWorkflow.util.task import TaskState

from engine.errors import BpmnError, CatflowError, Conflict, NotFound, RetryLater
from engine.sandbox import DEFAULT_LIMITS, Limits

from ._engine import ATTEMPTS_KEY, PUT_OFFS_KEY, CatflowScriptEngine, ScriptFailed, TaskInfo
from ._scan import install as install_scans
from ._scan import ready_tasks, tree_order
from ._serialize import SPECS, dump_state, load_state, registry


class StepHooks(Protocol):
    """What the runtime does around each task: log it, checkpoint it, call services."""

    def task_started(self, task: TaskInfo) -> None: ...

    def task_finished(
        self, task: TaskInfo, outcome: str, changed: dict[str, Any], message: str | None
    ) -> None: ...

    def call_service(self, task: TaskInfo, operator: str, params: dict[str, Any]) -> Any: ...


@dataclass(frozen=True)
class Failure:
    """Why a task could not complete; enough for an operator to act on."""

    task: TaskInfo | None
    kind: str  # script | expression | bpmn_error | operator | engine
    message: str
    line: int | None = None
    code: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    plain: str = ""  # the error's own words, without where it happened (for records)

    def describe(self) -> str:
        where = f"task {self.task.label()}" if self.task else "the process"
        line = f", line {self.line}" if self.line else ""
        return f"{where}{line}: {self.message}"


@dataclass(frozen=True)
class Outcome:
    status: str  # completed | waiting | runnable | failed
    due_at: datetime | None = None
    waiting_for: str | None = None
    failure: Failure | None = None


class _Yield(Exception):
    """Enough tasks for one turn; the instance goes back in line (a loop must not hog a worker)."""


class _HookFailed(Exception):
    def __init__(self, original: BaseException) -> None:
        super().__init__(str(original))
        self.original = original


def _changes(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """Variables a task set, changed or removed (removed ones as None).

    ``before`` is a shallow copy taken as the task started. Values are never changed
    in place in this process (scripts run in sandbox processes and return new
    values; service results are assigned), so a value that is the same object is
    unchanged, and one that is a new object is compared by value.
    """
    changed = {
        key: value
        for key, value in after.items()
        if key not in before or (before[key] is not value and before[key] != value)
    }
    for gone in before.keys() - after.keys():
        changed[gone] = None
    return changed


class ProcessRun:
    """Wraps a SpiffWorkflow workflow; nothing outside engine.bpmn sees SpiffWorkflow."""

    def __init__(self, workflow: Any) -> None:
        self.workflow = workflow
        install_scans(workflow)
        self.engine: CatflowScriptEngine = workflow.script_engine
        self._current: Any = None
        self._started: float = 0.0
        self._before: dict[str, Any] = {}
        self._hooks: StepHooks | None = None
        self._budget = 0

    # -- creating and persisting -------------------------------------------------

    @classmethod
    def start(
        cls,
        spec_json: str,
        variables: dict[str, Any],
        limits: Limits = DEFAULT_LIMITS,
        *,
        seed: str | None = None,
    ) -> ProcessRun:
        """A new run; with a ``seed``, its tasks' ids derive from it, so that every
        start from the same seed has the same ids (idempotency keys are made of them)."""
        spec, subprocess_specs = SPECS.get(spec_json)
        engine = CatflowScriptEngine(limits)
        workflow = BpmnWorkflow(spec, subprocess_specs, script_engine=engine)
        if seed is not None:
            _renumber(workflow, uuid.UUID(seed))
        start = ready_tasks(workflow)
        json.dumps(variables)  # refuse what could not be stored, before anything runs
        for task in start:
            task.data.update(variables)
        return cls(workflow)

    @staticmethod
    def start_state(variables: dict[str, Any]) -> str:
        """The stored state of an instance that has not run yet: its start variables
        and a seed for its task ids. ``load`` builds the run from them, the same run
        (task ids included) however often it is loaded, so a run replayed after a
        crash repeats the idempotency keys of the first.

        The dispatcher writes this rather than a started workflow's full state: the
        first run builds the workflow anyway, and building, dumping and loading it
        was about a third of what dispatching an event cost.
        """
        return json.dumps(
            {START_KEY: {"seed": str(uuid.uuid4()), "variables": variables}},
            separators=(",", ":"),
        )

    @classmethod
    def load(cls, spec_json: str, state_json: str, limits: Limits = DEFAULT_LIMITS) -> ProcessRun:
        if state_json.startswith(_START_PREFIX):
            begun = json.loads(state_json)[START_KEY]
            return cls.start(spec_json, begun["variables"], limits, seed=begun["seed"])
        spec, subprocess_specs = SPECS.get(spec_json)
        workflow = load_state(state_json, spec, subprocess_specs)
        workflow.script_engine = CatflowScriptEngine(limits)
        return cls(workflow)

    def dump(self) -> str:
        return dump_state(self.workflow)

    def dump_finished(self) -> str:
        """What a completed instance keeps: its variables and where each element ended.

        Nothing runs again once an instance completed, so the whole task tree (most
        of the full state) would only take room; views need these two things.
        """
        return json.dumps(
            {FINISHED_KEY: {"variables": self.variables(), "elements": self.element_states()}},
            separators=(",", ":"),
            default=str,
        )

    # -- running --------------------------------------------------------------

    def advance(self, hooks: StepHooks, max_tasks: int = 1000) -> Outcome:
        """Run every task that can run now; stop when waiting, finished or failed.

        After ``max_tasks`` tasks it stops with status ``runnable``, so that a long
        loop takes turns with other instances instead of holding a worker.
        """
        self._hooks = hooks
        self._budget = max_tasks
        self.engine.services = hooks.call_service
        try:
            while True:
                try:
                    self.workflow.refresh_timers()
                    self._engine_steps()
                except _HookFailed as exc:
                    raise exc.original from None
                except _Yield:
                    return Outcome("runnable", due_at=datetime.now(UTC))
                except BpmnError as err:
                    if self._throw(err):
                        continue
                    return Outcome("failed", failure=self._fail("bpmn_error", err))
                except RetryLater as err:
                    return self._put_off(err)
                except ScriptFailed as err:
                    return Outcome("failed", failure=self._fail(err.kind, err, line=err.line))
                except CatflowError as err:
                    return Outcome("failed", failure=self._fail(err.kind, err))
                except SpiffWorkflowException as err:
                    return Outcome("failed", failure=self._fail("engine", err))
                except Exception as err:  # an operator's or the engine's own bug
                    return Outcome("failed", failure=self._fail("engine", err))
                return self.status()
        finally:
            self.engine.services = None
            self._hooks = None
            self._current = None

    def _engine_steps(self) -> None:
        """SpiffWorkflow's ``do_engine_steps`` with ``_will_run``/``_did_run`` around each
        task, round for round the same, with the faster READY scan (``_scan``)."""
        workflow = self.workflow
        while self._engine_round(workflow):
            pass
        workflow.refresh_timers()

    def _engine_round(self, workflow: Any) -> bool:
        active = workflow.get_active_subprocesses()
        for subprocess in sorted(active, key=lambda sub: sub.depth, reverse=True):
            install_scans(subprocess)
            count = None
            while count is None or count > 0:
                count = self._run_ready(subprocess)
            if subprocess.parent_task_id is not None:
                task = workflow.get_task_from_id(subprocess.parent_task_id)
                task.task_spec._update(task)
        count = self._run_ready(workflow)
        return count > 0 or len(workflow.get_active_subprocesses()) > len(active)

    def _run_ready(self, workflow: Any) -> int:
        count = 0
        for task in ready_tasks(workflow):
            if not task.task_spec.manual:
                self._will_run(task)
                task.run()
                count += 1
                self._did_run(task)
        return count

    def _will_run(self, task: Any) -> None:
        self._current = task
        self._started = time.perf_counter()
        info = TaskInfo.of(task)
        # Only BPMN elements get a step-log entry; SpiffWorkflow's own bookkeeping
        # tasks need no picture of the variables to compare against.
        self._before = dict(task.data) if info.is_element else {}
        assert self._hooks is not None
        try:
            self._hooks.task_started(info)
        except Exception as exc:
            raise _HookFailed(exc) from exc

    def _did_run(self, task: Any) -> None:
        info = TaskInfo.of(task)
        changed: dict[str, Any] = {}
        if info.is_element:
            changed = _changes(self._before, task.data)
        assert self._hooks is not None
        outcome = (
            "completed"
            if task.state == TaskState.COMPLETED
            else TaskState.get_name(task.state).lower()
        )
        try:
            self._hooks.task_finished(info, outcome, changed, None)
        except Exception as exc:
            raise _HookFailed(exc) from exc
        self._current = None
        self._budget -= 1
        if self._budget <= 0:
            raise _Yield

    def _throw(self, err: BpmnError) -> bool:
        """Offer a BPMN error to the boundary events of the failed task; True if caught."""
        task = self._current
        if task is None:
            return False
        payload = {"code": err.code, "message": err.message, "details": err.details}
        event = BpmnEvent(
            ErrorEventDefinition(err.code, code=err.code), payload=payload, target=task.workflow
        )
        caught = self.workflow.event_manager.catch(event)
        self.workflow.bpmn_events = [e for e in self.workflow.bpmn_events if e is not event]
        if not caught:
            return False
        info = TaskInfo.of(task)
        for ready in self.workflow.get_tasks(state=TaskState.READY):
            if isinstance(ready.task_spec, BoundaryEvent) and ready.parent is task.parent:
                ready.data["error"] = {**payload, "element_id": info.element_id}
        assert self._hooks is not None
        self._hooks.task_finished(
            info, "caught", {}, f"BPMN error {err.code!r} caught by a boundary event: {err.message}"
        )
        self._current = None
        return True

    def _put_off(self, err: RetryLater) -> Outcome:
        """The task asked to be tried again later: it stays ready; the instance waits."""
        task = self._current
        if task is None:  # not raised by a task: nothing to put off
            return Outcome("failed", failure=self._fail("engine", err))
        if task.state == TaskState.ERROR:
            task._set_state(TaskState.READY)
        task.internal_data[ATTEMPTS_KEY] = err.attempts
        if err.put_offs is not None:
            task.internal_data[PUT_OFFS_KEY] = err.put_offs
        due = datetime.now(UTC) + timedelta(seconds=err.delay_s)
        info = TaskInfo.of(task)
        what = (
            f"attempt {err.attempts} failed ({err.reason})"
            if err.put_offs is None
            else f"put off ({err.reason}), {err.put_offs} time(s) so far"
        )
        message = f"{what}; trying again at {due.isoformat(timespec='seconds')}"
        assert self._hooks is not None
        self._hooks.task_finished(info, "waiting", {}, message)
        self._current = None
        return Outcome(
            "waiting", due_at=due, waiting_for=f"retry of task {info.label()}: {message}"
        )

    def _fail(self, kind: str, err: BaseException, line: int | None = None) -> Failure:
        task = self._current
        info = TaskInfo.of(task) if task is not None else None
        code = err.code if isinstance(err, BpmnError) else None
        details: dict[str, Any] = (
            dict(err.details) if isinstance(err, BpmnError | CatflowError) else {}
        )
        if task is not None:
            task.internal_data.pop(ATTEMPTS_KEY, None)  # a retry starts its count afresh
            task.internal_data.pop(PUT_OFFS_KEY, None)
        if isinstance(err, CatflowError) and err.problems:
            details["problems"] = [p.to_dict() for p in err.problems]
        if isinstance(err, BpmnError):
            plain = err.message
            message = f"BPMN error {err.code!r} was not caught: {err.message}"
        elif isinstance(err, ScriptFailed | CatflowError):
            message = plain = str(err)
        else:
            message = plain = f"{type(err).__name__}: {err}"
        if task is not None and task.state == TaskState.ERROR:
            # Leave the task ready to run again: `retry` re-runs it, `skip` completes it.
            task._set_state(TaskState.READY)
        self._current = None
        return Failure(
            task=info,
            kind=kind,
            message=message,
            line=line,
            code=code,
            details=details,
            plain=plain,
        )

    # -- where it stands --------------------------------------------------------

    def status(self) -> Outcome:
        wf = self.workflow
        if wf.completed:
            return Outcome("completed")
        if any(not t.task_spec.manual for t in wf.get_tasks(state=TaskState.READY)):
            return Outcome("runnable", due_at=datetime.now(UTC))
        waits: list[str] = []
        due: list[datetime] = []
        for task in wf.get_tasks(state=TaskState.READY, manual=True):
            waits.append(f"user task {TaskInfo.of(task).label()}")
        for task in list(wf.event_manager.tasks.values()):
            definition = task.task_spec.event_definition
            info = TaskInfo.of(task)
            if isinstance(definition, TimerEventDefinition):
                when = _timer_due(definition.details(task).value)
                if when is not None:
                    due.append(when)
                    waits.append(f"timer {info.label()} until {when.isoformat()}")
                    continue
            if isinstance(task.task_spec, BoundaryEvent):
                continue
            waits.append(
                f"{type(definition).__name__.replace('EventDefinition', '').lower()} "
                f"event {info.label()}"
            )
        return Outcome("waiting", due_at=min(due) if due else None, waiting_for="; ".join(waits))

    def variables(self) -> dict[str, Any]:
        wf = self.workflow
        if wf.completed:
            return dict(wf.data or (wf.last_task.data if wf.last_task else {}))
        for state in (TaskState.READY, TaskState.WAITING, TaskState.STARTED):
            tasks = wf.get_tasks(state=state)
            if tasks:
                return dict(tasks[0].data)
        return dict(wf.last_task.data) if wf.last_task else {}

    def element_states(self) -> dict[str, str]:
        """The state of each element that has a task, by element id (for diagrams)."""
        states: dict[str, str] = {}
        for task in self.workflow.get_tasks():
            bpmn_id = getattr(task.task_spec, "bpmn_id", None)
            if bpmn_id:
                states[str(bpmn_id)] = TaskState.get_name(task.state).lower()
        return states

    # -- operator actions -----------------------------------------------------

    def user_tasks(self) -> list[TaskInfo]:
        return [TaskInfo.of(t) for t in self.workflow.get_tasks(state=TaskState.READY, manual=True)]

    def complete_user_task(self, element_id: str, data: dict[str, Any]) -> TaskInfo:
        json.dumps(data)
        for task in self.workflow.get_tasks(state=TaskState.READY, manual=True):
            if TaskInfo.of(task).element_id == element_id:
                task.data.update(data)
                task.run()
                return TaskInfo.of(task)
        waiting = ", ".join(t.element_id for t in self.user_tasks()) or "none"
        raise NotFound(
            f"no user task {element_id!r} is waiting to be completed (waiting: {waiting})"
        )

    def skip_task(self, task_id: str, data: dict[str, Any]) -> TaskInfo:
        """Complete a ready task without running it, optionally setting variables."""
        json.dumps(data)
        for task in self.workflow.get_tasks(state=TaskState.READY):
            if str(task.id) == task_id:
                task.data.update(data)
                task.complete()
                return TaskInfo.of(task)
        raise Conflict(f"task {task_id} is not ready to be skipped")

    def cancel(self) -> None:
        self.workflow.cancel()

    def migrate(self, spec_json: str) -> list[str]:
        """Move this instance onto another version of its process (e.g. a deployed fix).

        Tasks are matched to the new version's elements by id; tasks that are ready
        or waiting are re-prepared from the new version. Refused (Conflict) when an
        element the instance has reached no longer exists. Returns the ids of the
        elements whose definition changed.
        """
        spec, subprocess_specs = SPECS.get(spec_json)
        top, sub_diffs = diff_workflow(registry, self.workflow, spec, subprocess_specs)
        gone = {TaskInfo.of(t).element_id for t in top.removed if TaskInfo.of(t).is_element}
        for sub_id, sub_diff in sub_diffs.items():
            if sub_diff is None:
                gone.add(f"subprocess {self.workflow.subprocesses[sub_id].spec.name}")
            else:
                gone |= {TaskInfo.of(t).element_id for t in sub_diff.removed}
        if gone or top.removed:
            raise Conflict(
                "the new version lacks element(s) this instance has reached: "
                + ", ".join(sorted(gone) or ["(internal tasks)"])
                + "; keep those element ids in the fixed process, or cancel the instance"
            )
        changed = sorted({TaskInfo.of(t).element_id for t in top.changed})
        migrate_workflow(top, self.workflow, spec)
        for sub_id, sub_diff in sub_diffs.items():
            assert sub_diff is not None
            sub = self.workflow.subprocesses[sub_id]
            migrate_workflow(sub_diff, sub, subprocess_specs[sub.spec.name])
        self.workflow.subprocess_specs = subprocess_specs
        return changed


FINISHED_KEY = "catflow_finished"
START_KEY = "catflow_start"
_START_PREFIX = '{"' + START_KEY + '"'


class RunView(Protocol):
    """What the views of an instance read of its state, running or finished."""

    def variables(self) -> dict[str, Any]: ...

    def element_states(self) -> dict[str, str]: ...

    def user_tasks(self) -> list[TaskInfo]: ...


@dataclass(frozen=True)
class FinishedRun:
    """The state of a completed instance, as ``ProcessRun.dump_finished`` kept it."""

    kept: dict[str, Any]

    def variables(self) -> dict[str, Any]:
        return dict(self.kept.get("variables") or {})

    def element_states(self) -> dict[str, str]:
        return dict(self.kept.get("elements") or {})

    def user_tasks(self) -> list[TaskInfo]:
        return []


def _renumber(workflow: Any, seed: uuid.UUID) -> None:
    """Give a new workflow's tasks ids derived from ``seed``, in tree order.

    A new workflow's task tree depends only on its spec, so the n-th task in
    depth-first order is the same task every time: ids made from (seed, n) are
    stable across starts, and as unique between workflows as their (random) seeds.
    """
    order = tree_order(workflow)
    if len(order) != len(workflow.tasks):
        raise CatflowError(
            f"a new workflow of {workflow.spec.name!r} has {len(workflow.tasks)} tasks but "
            f"{len(order)} in its tree; its task ids cannot be derived"
        )
    renamed = {task.id: uuid.UUID(int=seed.int ^ n) for n, task in enumerate(order)}
    for task in order:
        task.id = renamed[task.id]
        task._parent = renamed[task._parent] if task._parent is not None else None
        task._children = [renamed[child] for child in task._children]
    workflow.tasks = {task.id: task for task in order}


def load_view(spec_json: str, state_json: str, limits: Limits = DEFAULT_LIMITS) -> RunView:
    """The state of an instance for reading, whichever form it was stored in."""
    if state_json.startswith('{"' + FINISHED_KEY + '"'):
        return FinishedRun(json.loads(state_json)[FINISHED_KEY])
    return ProcessRun.load(spec_json, state_json, limits)


def _timer_due(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        try:
            moment = TimerEventDefinition.get_datetime(value)
        except (ValueError, TypeError):
            return None
    else:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
