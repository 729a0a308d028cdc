"""Creating instances, reading them, and the operator actions on them."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from sqlalchemy.sql.dml import ReturningInsert

from engine.bpmn import ProcessRun, load_view
from engine.errors import Conflict, NotFound, ValidationFailed
from engine.sandbox import DEFAULT_LIMITS, Limits
from engine.store import (
    DictionaryPacked,
    IncidentRow,
    InstanceRow,
    ProcessVersionRow,
    StepRow,
    pack,
    unpack,
    unpack_json,
    utcnow,
)

from . import _states as S
from ._definitions import latest_version


def limits_of(version: ProcessVersionRow) -> Limits:
    """The script limits of a process version: its own, or the defaults."""
    asked = version.limits or {}
    limits = DEFAULT_LIMITS
    if "cpu_seconds" in asked:
        limits = replace(limits, cpu_seconds=float(asked["cpu_seconds"]))
    if "memory_bytes" in asked:
        limits = replace(limits, memory_bytes=int(asked["memory_bytes"]))
    return limits


def create_instance(
    session: Session,
    version: ProcessVersionRow,
    variables: dict[str, Any],
    *,
    cause: dict[str, Any],
    serial_key: str | None = None,
    event_id: int | None = None,
    rule_key: str | None = None,
    record: tuple[str, int] | None = None,
    workflow: str | bytes | None = None,
) -> InstanceRow:
    """A queued instance of ``version``; ``workflow``, if given, is its start state as
    ``initial_state`` made it (then ``variables`` are in it already)."""
    row = InstanceRow(
        **_queued(
            version,
            workflow if workflow is not None else initial_state(version, variables),
            cause=cause,
            serial_key=serial_key,
            event_id=event_id,
            rule_key=rule_key,
            record=record,
        )
    )
    session.add(row)
    session.flush()
    return row


def insert_triggered_instance(
    session: Session,
    version: ProcessVersionRow,
    workflow: str | bytes,
    *,
    cause: dict[str, Any],
    serial_key: str,
    event_id: int,
    rule_key: str,
    record: tuple[str, int],
) -> int | None:
    """A queued instance for this event and rule, in one statement; None if the event
    and rule have their instance already (the unique key says so, nothing is written)."""
    values = _queued(
        version,
        workflow,
        cause=cause,
        serial_key=serial_key,
        event_id=event_id,
        rule_key=rule_key,
        record=record,
    )
    statement = _insert_new_instance(session.get_bind().dialect.name)
    return session.connection().execute(statement, values).scalar()


@functools.cache
def _insert_new_instance(dialect: str) -> ReturningInsert[int]:
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return (
        insert(InstanceRow)
        .on_conflict_do_nothing(index_elements=["event_id", "rule_key"])
        .returning(InstanceRow.id)
    )


def _queued(
    version: ProcessVersionRow,
    workflow: str | bytes,
    *,
    cause: dict[str, Any],
    serial_key: str | None,
    event_id: int | None,
    rule_key: str | None,
    record: tuple[str, int] | None,
) -> dict[str, Any]:
    """The columns of a new, queued instance."""
    now = utcnow()
    return {
        "process_id": version.process_id,
        "version_id": version.id,
        "state": S.QUEUED,
        "serial_key": serial_key,
        "event_id": event_id,
        "rule_key": rule_key,
        "record_catalog": record[0] if record else None,
        "record_id": record[1] if record else None,
        "workflow": workflow,
        "due_at": now,
        "cause": cause,
        "created_at": now,
        "updated_at": now,
    }


def initial_state(version: ProcessVersionRow, variables: dict[str, Any]) -> str | bytes:
    """The stored state of a new instance of ``version`` with these variables (packed
    against the version's dictionary, if it has one). Its first run builds the
    workflow from them."""
    try:
        state = ProcessRun.start_state(variables)
    except (TypeError, ValueError) as exc:
        raise ValidationFailed(f"start variables cannot be stored as JSON: {exc}") from None
    return pack(state.encode(), version.pack_dictionary) if version.pack_dictionary else state


def start_process(
    session: Session, process_id: str, variables: dict[str, Any], cause: dict[str, Any]
) -> InstanceRow:
    if not isinstance(variables, dict):
        raise ValidationFailed("--data must be a JSON object of variables")
    return create_instance(session, latest_version(session, process_id), variables, cause=cause)


# -- reading -------------------------------------------------------------------


@dataclass(frozen=True)
class InstanceFilter:
    state: str | None = None
    process_id: str | None = None
    record: tuple[str, int] | None = None
    limit: int = 100
    offset: int = 0


def list_instances(session: Session, f: InstanceFilter) -> tuple[list[InstanceRow], dict[str, int]]:
    """Matching instances (newest first) and the count of all matching ones by state."""
    if f.state is not None and f.state not in S.ALL_STATES:
        raise ValidationFailed(f"unknown state {f.state!r}; states: {', '.join(S.ALL_STATES)}")
    conditions = []
    if f.process_id:
        conditions.append(InstanceRow.process_id == f.process_id)
    if f.record:
        conditions.append(
            and_(InstanceRow.record_catalog == f.record[0], InstanceRow.record_id == f.record[1])
        )
    counts = dict(
        session.execute(
            select(InstanceRow.state, func.count()).where(*conditions).group_by(InstanceRow.state)
        ).all()
    )
    if f.state:
        conditions.append(InstanceRow.state == f.state)
    rows = list(
        session.scalars(
            select(InstanceRow)
            .where(*conditions)
            .order_by(InstanceRow.id.desc())
            .limit(f.limit)
            .offset(f.offset)
        )
    )
    return rows, {state: int(counts.get(state, 0)) for state in S.ALL_STATES}


def get_instance(session: Session, instance_id: int) -> InstanceRow:
    row = session.get(InstanceRow, instance_id)
    if row is None:
        raise NotFound(f"instance {instance_id} does not exist")
    return row


def _run_of(session: Session, row: InstanceRow) -> ProcessRun:
    version = session.get(ProcessVersionRow, row.version_id)
    assert version is not None
    return ProcessRun.load(version.spec, state_of(row, version), limits_of(version))


def state_of(row: InstanceRow, version: ProcessVersionRow) -> str:
    """The instance's serialised state, opened with its version's dictionary if need be."""
    return unpack(row.workflow, version.pack_dictionary)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def instance_detail(session: Session, instance_id: int) -> dict[str, Any]:
    row = get_instance(session, instance_id)
    version = session.get(ProcessVersionRow, row.version_id)
    assert version is not None
    run = load_view(version.spec, state_of(row, version), limits_of(version))
    steps = session.scalars(
        select(StepRow).where(StepRow.instance_id == row.id).order_by(StepRow.id)
    )
    incidents = session.scalars(
        select(IncidentRow).where(IncidentRow.instance_id == row.id).order_by(IncidentRow.id)
    )
    return {
        **instance_summary(row),
        "version": version.version,
        "variables": run.variables(),
        "user_tasks": [t.element_id for t in run.user_tasks()],
        "elements": run.element_states(),
        "cause": row.cause,
        "lease_owner": row.lease_owner,
        "lease_expires_at": _iso(row.lease_expires_at),
        "steps": [
            {
                "id": s.id,
                "element_id": s.element_id,
                "name": s.element_name,
                "type": s.element_type,
                "outcome": s.outcome,
                "started_at": _iso(s.started_at),
                "duration_ms": round(s.duration_ms, 3),
                "changed": unpack_json(s.changed, version.pack_dictionary),
                "message": s.message,
                "worker": s.worker,
                "exchanges": unpack_json(s.exchanges, version.pack_dictionary) or [],
            }
            for s in steps
        ],
        "incidents": [
            {
                "id": i.id,
                "element_id": i.element_id,
                "name": i.element_name,
                "line": i.line,
                "kind": i.kind,
                "message": i.message,
                "details": i.details,
                "created_at": _iso(i.created_at),
                "resolved_at": _iso(i.resolved_at),
                "resolution": i.resolution,
            }
            for i in incidents
        ],
    }


def instance_summary(row: InstanceRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "process_id": row.process_id,
        "state": row.state,
        "record": f"{row.record_catalog}:{row.record_id}" if row.record_catalog else None,
        "serial_key": row.serial_key,
        "event_id": row.event_id,
        "rule": row.rule_key,
        "waiting_for": row.waiting_for,
        "due_at": _iso(row.due_at),
        "error": row.error,
        "created_at": _iso(row.created_at),
        "started_at": _iso(row.started_at),
        "ended_at": _iso(row.ended_at),
    }


# -- operator actions ------------------------------------------------------------


def _for_action(
    session: Session, instance_id: int, action: str, allowed: tuple[str, ...]
) -> InstanceRow:
    """Lock the instance for an operator action; refuse while a worker holds it."""
    row = session.scalar(select(InstanceRow).where(InstanceRow.id == instance_id).with_for_update())
    if row is None:
        raise NotFound(f"instance {instance_id} does not exist")
    if row.state not in allowed:
        raise Conflict(
            f"cannot {action} instance {instance_id}: it is {row.state} "
            f"({action} applies to {', '.join(allowed)} instances)"
        )
    now = utcnow()
    if row.lease_owner and row.lease_expires_at and row.lease_expires_at > now:
        raise Conflict(
            f"cannot {action} instance {instance_id} now: worker {row.lease_owner} is running it; "
            "try again in a moment"
        )
    row.lease_owner = None
    row.lease_expires_at = None
    row.updated_at = now
    return row


def _resolve_incidents(session: Session, instance_id: int, resolution: str) -> None:
    session.execute(
        update(IncidentRow)
        .where(IncidentRow.instance_id == instance_id, IncidentRow.resolved_at.is_(None))
        .values(resolved_at=utcnow(), resolution=resolution)
    )


def _note(session: Session, row: InstanceRow, message: str, who: str) -> None:
    session.add(
        StepRow(
            instance_id=row.id,
            task_id="",
            element_id="",
            element_type="operator action",
            outcome="note",
            message=message,
            worker=who,
        )
    )


def retry(session: Session, instance_id: int, who: str, upgrade: bool = False) -> InstanceRow:
    """Run the failed task again, after the data or the connection was fixed.

    With ``upgrade``, the instance first moves to the latest version of its process,
    so that a fix deployed after it started is the one that runs.
    """
    row = _for_action(session, instance_id, "retry", (S.INCIDENT,))
    if upgrade:
        _upgrade(session, row, who)
    row.state = S.RUNNING
    row.due_at = utcnow()
    row.error = None
    _resolve_incidents(session, row.id, "retried")
    _note(session, row, f"retried by {who}", who)
    return row


def resume_after_authorization(session: Session, connection: str, who: str) -> list[int]:
    """Retry the instances a broken (or unauthorised) connection stopped; their ids.

    Called once the connection has been authorised again.
    """
    resumed: list[int] = []
    for incident in open_incidents(session):
        details = incident.details or {}
        if incident.kind != "connection" or details.get("connection") != connection:
            continue
        row = session.get(InstanceRow, incident.instance_id)
        if row is None or row.state != S.INCIDENT or row.id in resumed:
            continue
        retry(session, row.id, f"{who} (connection {connection!r} authorised again)")
        resumed.append(row.id)
    return resumed


def _upgrade(session: Session, row: InstanceRow, who: str) -> None:
    current = session.get(ProcessVersionRow, row.version_id)
    latest = latest_version(session, row.process_id)
    assert current is not None
    if latest.id == current.id:
        raise Conflict(
            f"instance {row.id} already runs the latest version (v{current.version}) of "
            f"{row.process_id}; deploy the fixed process first, or retry without --upgrade"
        )
    run = ProcessRun.load(current.spec, state_of(row, current), limits_of(current))
    changed = run.migrate(latest.spec)
    row.workflow = run.dump()
    row.version_id = latest.id
    # Its step log so far was packed against the old version's dictionary: unpack it,
    # or the new version's could not read it.
    for step in session.scalars(select(StepRow).where(StepRow.instance_id == row.id)):
        if isinstance(step.changed, DictionaryPacked):
            step.changed = unpack_json(step.changed, current.pack_dictionary)
        if isinstance(step.exchanges, DictionaryPacked):
            step.exchanges = unpack_json(step.exchanges, current.pack_dictionary)
    detail = f"; changed: {', '.join(changed)}" if changed else ""
    _note(session, row, f"moved from v{current.version} to v{latest.version} by {who}{detail}", who)


def skip(
    session: Session, instance_id: int, who: str, data: dict[str, Any] | None = None
) -> InstanceRow:
    """Complete the failed task without running it, setting ``data`` as its result."""
    row = _for_action(session, instance_id, "skip", (S.INCIDENT,))
    task_id = (row.error or {}).get("task_id")
    if not task_id:
        raise Conflict(f"instance {instance_id} has no failed task to skip; use retry or cancel")
    run = _run_of(session, row)
    info = run.skip_task(task_id, data or {})
    row.workflow = run.dump()
    row.state = S.RUNNING
    row.due_at = utcnow()
    row.error = None
    _resolve_incidents(session, row.id, "skipped")
    _note(
        session,
        row,
        f"task {info.label()} skipped by {who}" + (f" with {json.dumps(data)}" if data else ""),
        who,
    )
    return row


def cancel(session: Session, instance_id: int, who: str) -> InstanceRow:
    row = _for_action(
        session, instance_id, "cancel", (S.QUEUED, S.RUNNING, S.WAITING, S.INCIDENT, S.SUSPENDED)
    )
    run = _run_of(session, row)
    run.cancel()
    row.workflow = run.dump()
    row.state = S.CANCELLED
    row.due_at = None
    row.ended_at = utcnow()
    _resolve_incidents(session, row.id, "cancelled")
    _note(session, row, f"cancelled by {who}", who)
    return row


def suspend(session: Session, instance_id: int, who: str) -> InstanceRow:
    row = _for_action(session, instance_id, "suspend", (S.QUEUED, S.RUNNING, S.WAITING, S.INCIDENT))
    row.suspended_state = row.state
    row.state = S.SUSPENDED
    _note(session, row, f"suspended by {who} (was {row.suspended_state})", who)
    return row


def resume(session: Session, instance_id: int, who: str) -> InstanceRow:
    row = _for_action(session, instance_id, "resume", (S.SUSPENDED,))
    previous = row.suspended_state or S.RUNNING
    row.state = previous
    row.suspended_state = None
    if previous in (S.QUEUED, S.RUNNING):
        row.due_at = utcnow()
    _note(session, row, f"resumed by {who} (back to {previous})", who)
    return row


def complete_user_task(
    session: Session, instance_id: int, element_id: str, data: dict[str, Any], who: str
) -> InstanceRow:
    if not isinstance(data, dict):
        raise ValidationFailed("--data must be a JSON object of variables")
    row = _for_action(session, instance_id, "complete a task of", (S.WAITING,))
    run = _run_of(session, row)
    info = run.complete_user_task(element_id, data)
    row.workflow = run.dump()
    row.state = S.RUNNING
    row.due_at = utcnow()
    row.waiting_for = None
    session.add(
        StepRow(
            instance_id=row.id,
            task_id=info.task_id,
            element_id=info.element_id,
            element_name=info.name,
            element_type=info.type,
            outcome="completed",
            changed=data,
            message=f"completed by {who}",
            worker=who,
        )
    )
    return row


def open_incidents(session: Session) -> list[IncidentRow]:
    return list(
        session.scalars(
            select(IncidentRow).where(IncidentRow.resolved_at.is_(None)).order_by(IncidentRow.id)
        )
    )


def blocking_predecessor(session: Session, row: InstanceRow) -> InstanceRow | None:
    """The earlier instance of the same record this one waits for, if any."""
    if row.serial_key is None:
        return None
    return session.scalar(
        select(InstanceRow)
        .where(
            InstanceRow.serial_key == row.serial_key,
            InstanceRow.id < row.id,
            InstanceRow.state.in_(S.BLOCKING_STATES),
        )
        .order_by(InstanceRow.id)
        .limit(1)
    )
