"""/api/instances: where each instance is, what it did, why it failed — and the actions.

Actions (operator) name the token in the instance's step log (``token:NAME``). An
action the instance's state does not allow is a 409 saying which states it needs.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Query, status

from engine import runtime
from engine.api._deps import Operator, Viewer
from engine.api.schemas import (
    AUTH_ERRORS,
    CONFLICT,
    ID_MAX,
    NOT_FOUND,
    DataIn,
    InstanceDetail,
    InstanceId,
    InstanceOut,
    InstancePage,
    Limit,
    Offset,
    Responses,
    RetryIn,
    StartIn,
    State,
    StepOut,
    Tx,
    checked_object,
    refuse_nul,
)
from engine.api.tokens import Principal
from engine.errors import Problem, ValidationFailed
from engine.runtime import InstanceFilter, instance_detail, instance_summary, list_instances
from engine.store import InstanceRow

router = APIRouter(
    prefix="/api/instances",
    tags=["instances"],
    dependencies=[Depends(refuse_nul)],
    responses=AUTH_ERRORS,
)

ACTION_ERRORS: Responses = {**NOT_FOUND, **CONFLICT}


def _who(principal: Principal) -> str:
    return f"token:{principal.name}"


def _out(row: InstanceRow) -> InstanceOut:
    return InstanceOut(**instance_summary(row))


def _record(raw: str) -> tuple[str, int]:
    catalog, sep, rid = raw.partition(":")
    if not sep or not catalog or not rid.isdigit() or not 0 < int(rid) <= ID_MAX:
        raise ValidationFailed(
            f"record {raw!r} is not CATALOG:ID",
            [Problem(f"{raw!r} is not CATALOG:ID", "record", "e.g. meetings:12")],
        )
    return catalog, int(rid)


@router.get("", summary="Instances, newest first, with counts by state")
def list_all(
    session: Tx,
    _who: Viewer,
    state: Annotated[State | None, Query(description="Only instances in this state.")] = None,
    process: Annotated[
        str | None, Query(max_length=200, description="Only instances of this process id.")
    ] = None,
    record: Annotated[
        str | None,
        Query(
            max_length=120,
            pattern=r"^[^:]{1,100}:[1-9][0-9]{0,17}$",
            description="Only instances started by this record, as CATALOG:ID.",
            examples=["meetings:12"],
        ),
    ] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> InstancePage:
    filters = InstanceFilter(
        state=state,
        process_id=process,
        record=_record(record) if record else None,
        limit=limit,
        offset=offset,
    )
    rows, counts = list_instances(session, filters)
    total = counts[state] if state else sum(counts.values())
    return InstancePage(
        items=[_out(r) for r in rows], counts=counts, total=total, limit=limit, offset=offset
    )


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Start an instance of a process's latest version by hand (a worker runs it)",
    responses=NOT_FOUND,
)
def start(body: StartIn, session: Tx, who: Operator) -> InstanceOut:
    variables = checked_object(dict(body.variables), "variables")
    row = runtime.start_process(
        session, body.process_id, variables, {"kind": "user", "user": _who(who)}
    )
    return _out(row)


@router.get(
    "/{instance_id}",
    summary="One instance: state, variables, step log, incidents",
    responses=NOT_FOUND,
)
def get_one(instance_id: InstanceId, session: Tx, _who: Viewer) -> InstanceDetail:
    return InstanceDetail(**instance_detail(session, instance_id))


@router.get(
    "/{instance_id}/steps", summary="An instance's step log, oldest first", responses=NOT_FOUND
)
def steps(instance_id: InstanceId, session: Tx, _who: Viewer) -> list[StepOut]:
    return [StepOut(**s) for s in instance_detail(session, instance_id)["steps"]]


@router.get("/{instance_id}/variables", summary="An instance's variables now", responses=NOT_FOUND)
def variables(instance_id: InstanceId, session: Tx, _who: Viewer) -> dict[str, Any]:
    found: dict[str, Any] = instance_detail(session, instance_id)["variables"]
    return found


@router.post(
    "/{instance_id}/retry",
    summary="Run the failed task again (optionally on the latest version: upgrade)",
    responses=ACTION_ERRORS,
)
def retry(
    instance_id: InstanceId,
    session: Tx,
    who: Operator,
    body: Annotated[RetryIn | None, Body()] = None,
) -> InstanceOut:
    upgrade = body.upgrade if body else False
    return _out(runtime.retry(session, instance_id, _who(who), upgrade=upgrade))


@router.post(
    "/{instance_id}/skip",
    summary="Complete the failed task without running it, setting data as its result",
    responses=ACTION_ERRORS,
)
def skip(
    instance_id: InstanceId,
    session: Tx,
    who: Operator,
    body: Annotated[DataIn | None, Body()] = None,
) -> InstanceOut:
    data = checked_object(dict(body.data), "data") if body else {}
    return _out(runtime.skip(session, instance_id, _who(who), data))


@router.post(
    "/{instance_id}/cancel", summary="Cancel; it will not run again", responses=ACTION_ERRORS
)
def cancel(instance_id: InstanceId, session: Tx, who: Operator) -> InstanceOut:
    return _out(runtime.cancel(session, instance_id, _who(who)))


@router.post(
    "/{instance_id}/suspend",
    summary="Pause; nothing runs until it is resumed",
    responses=ACTION_ERRORS,
)
def suspend(instance_id: InstanceId, session: Tx, who: Operator) -> InstanceOut:
    return _out(runtime.suspend(session, instance_id, _who(who)))


@router.post(
    "/{instance_id}/resume",
    summary="Resume a suspended instance where it was",
    responses=ACTION_ERRORS,
)
def resume(instance_id: InstanceId, session: Tx, who: Operator) -> InstanceOut:
    return _out(runtime.resume(session, instance_id, _who(who)))


@router.post(
    "/{instance_id}/tasks/{element_id}/complete",
    summary="Complete a waiting user task with data; the instance runs on",
    responses=ACTION_ERRORS,
)
def complete_task(
    instance_id: InstanceId,
    element_id: Annotated[
        str, Path(min_length=1, max_length=200, description="The user task's element id.")
    ],
    session: Tx,
    who: Operator,
    body: DataIn,
) -> InstanceOut:
    data = checked_object(dict(body.data), "data")
    return _out(runtime.complete_user_task(session, instance_id, element_id, data, _who(who)))
