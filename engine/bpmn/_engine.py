"""The script engine SpiffWorkflow calls: sandboxed scripts, and service calls handed out."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine
from SpiffWorkflow.bpmn.script_engine.python_environment import BasePythonScriptEngineEnvironment

from engine import sandbox

ATTEMPTS_KEY = "catflow_attempts"  # in a task's internal data: attempts put off so far
# ... and how often the step was put off because the database failed it (those are
# not attempts of the step: they do not use up an operator's retries).
PUT_OFFS_KEY = "catflow_store_put_offs"


@dataclass(frozen=True)
class TaskInfo:
    """A task as the rest of Catflow sees it, without SpiffWorkflow types."""

    task_id: str
    element_id: str
    name: str
    type: str
    is_element: bool = True  # False for SpiffWorkflow's own bookkeeping tasks
    attempts: int = 0  # attempts made by earlier runs of this step that were put off
    put_offs: int = 0  # earlier runs of this step the database failed

    @classmethod
    def of(cls, task: Any) -> TaskInfo:
        spec = task.task_spec
        return cls(
            task_id=str(task.id),
            element_id=str(getattr(spec, "bpmn_id", None) or spec.name),
            name=str(getattr(spec, "bpmn_name", None) or ""),
            type=type(spec).__name__,
            is_element=getattr(spec, "bpmn_id", None) is not None,
            attempts=int(task.internal_data.get(ATTEMPTS_KEY, 0)),
            put_offs=int(task.internal_data.get(PUT_OFFS_KEY, 0)),
        )

    def label(self) -> str:
        return f"'{self.element_id}' ({self.name})" if self.name else f"'{self.element_id}'"


class ScriptFailed(Exception):
    """A script or expression raised or would not compile."""

    def __init__(self, message: str, line: int | None, kind: str) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.kind = kind


ServiceCaller = Callable[[TaskInfo, str, dict[str, Any]], Any]


class _SandboxEnvironment(BasePythonScriptEngineEnvironment):  # type: ignore[misc]
    """Evaluates in the sandbox pool, under the process definition's limits."""

    def __init__(self, limits: sandbox.Limits) -> None:
        super().__init__()
        self.limits = limits

    def evaluate(
        self, expression: str, context: dict[str, Any], external_context: Any = None
    ) -> Any:
        variables = {**context, **(external_context or {})}
        simple, value = sandbox.evaluate_simple(expression, variables)
        if simple:
            return value
        return sandbox.run_limited("eval", expression, variables, self.limits)

    def execute(self, script: str, context: dict[str, Any], external_context: Any = None) -> bool:
        external = external_context or {}
        result = sandbox.run_limited("exec", script, {**context, **external}, self.limits)
        for key, value in external.items():
            if result.get(key) is value:
                result.pop(key)
        _require_json(result)
        context.clear()
        context.update(result)
        return True


def _require_json(variables: dict[str, Any]) -> None:
    """Variables outlive the step, so they must be storable as JSON."""
    try:
        json.dumps(variables, allow_nan=False)
        return
    except (TypeError, ValueError):
        pass
    for name, value in variables.items():
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError):
            kind = type(value).__name__
            hint = "e.g. value.isoformat()" if hasattr(value, "isoformat") else "e.g. str(value)"
            raise sandbox.ScriptError(
                f"variable {name!r} holds a {kind}, which cannot be kept between steps; "
                f"store a JSON value instead ({hint}) or `del {name}` at the end of the script"
            ) from None


class CatflowScriptEngine(PythonScriptEngine):  # type: ignore[misc]
    def __init__(self, limits: sandbox.Limits = sandbox.DEFAULT_LIMITS) -> None:
        super().__init__(environment=_SandboxEnvironment(limits))
        self.services: ServiceCaller | None = None

    def evaluate(self, task: Any, expression: str, external_context: Any = None) -> Any:
        try:
            return self.environment.evaluate(expression, task.data, external_context)
        except sandbox.ScriptError as err:
            raise ScriptFailed(
                f"expression {expression.strip()!r} failed: {err.message}", err.line, "expression"
            ) from None

    def execute(self, task: Any, script: str, external_context: Any = None) -> bool:
        try:
            return bool(self.environment.execute(script, task.data, external_context))
        except sandbox.ScriptError as err:
            raise ScriptFailed(err.message, err.line, "script") from None

    def call_service(self, task: Any, operation_name: str, operation_params: dict[str, Any]) -> str:
        if self.services is None:
            raise RuntimeError("no service caller is attached to this run")
        params = {name: p["value"] for name, p in operation_params.items()}
        result = self.services(TaskInfo.of(task), operation_name, params)
        return json.dumps(result)
