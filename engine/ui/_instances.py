"""Instances (list, detail, operator actions) and open incidents."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from engine import runtime
from engine.api._deps import ProjectDep
from engine.errors import CatflowError, ValidationFailed
from engine.runtime import InstanceFilter, instance_detail, instance_summary, list_instances

from . import _queries
from ._diagram import Diagram, instance_marks, instance_notes
from ._web import UI, Act, Form, Page, field, need, redirect, render

router = APIRouter(include_in_schema=False)
PAGE_SIZE = 50
ACTIONS = ("retry", "skip", "cancel", "suspend", "resume")
# Which states each action applies to (the runtime refuses the others too).
ACTION_STATES = {
    "retry": (runtime.states.INCIDENT,),
    "skip": (runtime.states.INCIDENT,),
    "cancel": ("queued", "running", "waiting", "incident", "suspended"),
    "suspend": ("queued", "running", "waiting", "incident"),
    "resume": ("suspended",),
}


def _record_ref(raw: str | None) -> tuple[str, int] | None:
    if not raw:
        return None
    catalog, _, rid = raw.partition(":")
    if not rid.isdigit():
        raise ValidationFailed(f"record {raw!r} is not CATALOG:ID (e.g. meetings:12)")
    return catalog, int(rid)


@router.get(f"{UI}/instances")
def instances_page(
    request: Request,
    who: Page,
    project: ProjectDep,
    state: Annotated[str | None, Query()] = None,
    process: Annotated[str | None, Query()] = None,
    record: Annotated[str | None, Query()] = None,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Response:
    filters = InstanceFilter(
        state=state or None,
        process_id=process or None,
        record=_record_ref(record),
        limit=PAGE_SIZE,
        offset=offset,
    )
    with project.db.session() as session:
        rows, counts = list_instances(session, filters)
        items = [instance_summary(r) for r in rows]
        processes = [p.process_id for p in runtime.list_processes(session)]
    total = counts[state] if state else sum(counts.values())
    return render(
        request,
        "instances.html",
        {
            "items": items,
            "counts": counts,
            "total": total,
            "states": runtime.states.ALL_STATES,
            "processes": processes,
            "filters": {"state": state or "", "process": process or "", "record": record or ""},
            "offset": offset,
            "page_size": PAGE_SIZE,
        },
        who=who,
    )


@router.get(f"{UI}/instances/{{instance_id}}")
def instance_page(request: Request, who: Page, project: ProjectDep, instance_id: int) -> Response:
    with project.db.session() as session:
        detail = instance_detail(session, instance_id)
        row = runtime.get_instance(session, instance_id)
        blocker = runtime.blocking_predecessor(session, row)
        xml, version, latest = _queries.instance_xml(session, instance_id)
    open_incident = next((i for i in detail["incidents"] if not i["resolved_at"]), None)
    actions = [a for a in ACTIONS if detail["state"] in ACTION_STATES[a]]
    return render(
        request,
        "instance.html",
        {
            "d": detail,
            "blocked_by": blocker.id if blocker and detail["state"] == "queued" else None,
            "open_incident": open_incident,
            "actions": actions if who.may("operator") else [],
            "can_act": who.may("operator"),
            "latest_version": latest,
            "diagram": Diagram(xml, instance_marks(detail), instance_notes(detail)),
            "version": version,
            "calls": [
                (step, exchange)
                for step in detail["steps"]
                for exchange in step["exchanges"]
                if "method" in exchange
            ],
        },
        who=who,
    )


def _json_object(raw: str, what: str) -> dict[str, Any]:
    if not raw.strip():
        return {}
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValidationFailed(
            f"{what} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno} "
            '(write e.g. {"approved": true})'
        ) from None
    if not isinstance(value, dict):
        raise ValidationFailed(f"{what} must be a JSON object of variables")
    return value


@router.post(f"{UI}/instances/{{instance_id}}/{{action}}")
def instance_action(
    who: Act, form: Form, project: ProjectDep, instance_id: int, action: str
) -> Response:
    back = f"{UI}/instances/{instance_id}"
    if action not in ACTIONS:
        return redirect(back, f"unknown action {action!r}", "error")
    need(who, "operator", f"{action.capitalize()} of an instance")
    try:
        with project.db.session() as session:
            if action == "retry":
                row = runtime.retry(
                    session, instance_id, who.actor, upgrade=field(form, "upgrade") == "on"
                )
            elif action == "skip":
                data = _json_object(field(form, "data"), "the skipped task's result")
                row = runtime.skip(session, instance_id, who.actor, data)
            else:
                row = getattr(runtime, action)(session, instance_id, who.actor)
            new_state = row.state
    except CatflowError as exc:
        return redirect(back, str(exc), "error")
    return redirect(back, f"instance {instance_id}: {action} done; now {new_state}")


@router.post(f"{UI}/instances/{{instance_id}}/tasks/{{element_id}}/complete")
def complete_task(
    who: Act, form: Form, project: ProjectDep, instance_id: int, element_id: str
) -> Response:
    back = f"{UI}/instances/{instance_id}"
    need(who, "operator", "Completing a user task")
    try:
        data = _json_object(field(form, "data"), "the task's answer")
        with project.db.session() as session:
            runtime.complete_user_task(session, instance_id, element_id, data, who.actor)
    except CatflowError as exc:
        return redirect(back, str(exc), "error")
    return redirect(back, f"instance {instance_id}: task {element_id} completed; it runs on")


@router.get(f"{UI}/incidents")
def incidents_page(request: Request, who: Page, project: ProjectDep) -> Response:
    with project.db.session() as session:
        rows = runtime.open_incidents(session)
        summaries = {
            i.instance_id: instance_summary(runtime.get_instance(session, i.instance_id))
            for i in rows
        }
        items = [
            {
                "id": i.id,
                "instance_id": i.instance_id,
                "element_id": i.element_id,
                "element_name": i.element_name,
                "line": i.line,
                "kind": i.kind,
                "message": i.message,
                "connection": (i.details or {}).get("connection"),
                "created_at": i.created_at,
            }
            for i in rows
        ]
    return render(
        request,
        "incidents.html",
        {"items": items, "instances": summaries, "can_act": who.may("operator")},
        who=who,
    )
