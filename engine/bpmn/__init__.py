"""BPMN: the only package that imports SpiffWorkflow.

Parsing and deploy-time validation, the sandboxed script engine, the service-task
bridge, and (de)serialisation of specs and instance state.
"""

from ._engine import ScriptFailed, TaskInfo
from ._run import Failure, FinishedRun, Outcome, ProcessRun, RunView, StepHooks, load_view
from ._validate import OperatorSignature, ParsedFile, ParsedProcess, content_hash, validate_file

__all__ = [
    "Failure",
    "FinishedRun",
    "OperatorSignature",
    "Outcome",
    "ParsedFile",
    "ParsedProcess",
    "ProcessRun",
    "RunView",
    "ScriptFailed",
    "StepHooks",
    "TaskInfo",
    "content_hash",
    "load_view",
    "validate_file",
]
