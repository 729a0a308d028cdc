"""What the diagram shows: the BPMN, and a mark (and notes) per element id.

The page hands these to the viewer (``static/vendor/diagram.js``, bpmn-js with
bpmn-auto-layout for files without diagram interchange); the same facts are listed
in the page for readers without JavaScript.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from engine.runtime import states

# SpiffWorkflow task states (lower-cased) and the mark each one gets.
_TASK_MARKS = {
    "completed": "completed",
    "ready": "active",
    "started": "active",
    "waiting": "active",
    "error": "failed",
}


@dataclass(frozen=True)
class Diagram:
    xml: str
    marks: dict[str, str] = field(default_factory=dict)  # element id -> completed|active|...
    notes: dict[str, list[str]] = field(default_factory=dict)  # element id -> messages


def instance_marks(detail: dict[str, Any]) -> dict[str, str]:
    """Completed, active and failed elements of an instance (``instance_detail``)."""
    finished = detail["state"] in states.FINAL_STATES
    marks: dict[str, str] = {}
    for element_id, task_state in (detail.get("elements") or {}).items():
        mark = _TASK_MARKS.get(task_state)
        if mark == "active" and finished:
            continue
        if mark:
            marks[element_id] = mark
    error = detail.get("error") or {}
    if detail["state"] == states.INCIDENT and error.get("element_id"):
        marks[str(error["element_id"])] = "failed"
    return marks


def instance_notes(detail: dict[str, Any]) -> dict[str, list[str]]:
    error = detail.get("error") or {}
    if detail["state"] == states.INCIDENT and error.get("element_id"):
        return {str(error["element_id"]): [str(error.get("message", ""))]}
    return {}


def problem_notes(problems: list[dict[str, Any]]) -> dict[str, list[str]]:
    """Deploy problems by the element they are about (those without one are left out)."""
    notes: dict[str, list[str]] = {}
    for p in problems:
        element_id = p.get("element_id")
        if element_id:
            notes.setdefault(str(element_id), []).append(str(p.get("message", "")))
    return notes
