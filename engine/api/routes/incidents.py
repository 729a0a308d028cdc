"""/api/incidents: failures that need a person (fix the cause, then act on the instance)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.api._deps import Viewer
from engine.api.schemas import (
    AUTH_ERRORS,
    ID_MAX,
    NOT_FOUND,
    IncidentOut,
    IncidentPage,
    Limit,
    Offset,
    Tx,
    refuse_nul,
)
from engine.errors import NotFound
from engine.runtime import open_incidents
from engine.store import IncidentRow, InstanceRow

router = APIRouter(
    prefix="/api/incidents",
    tags=["incidents"],
    dependencies=[Depends(refuse_nul)],
    responses=AUTH_ERRORS,
)


def _out(row: IncidentRow, instance: InstanceRow | None) -> IncidentOut:
    record = None
    if instance is not None and instance.record_catalog:
        record = f"{instance.record_catalog}:{instance.record_id}"
    return IncidentOut(
        id=row.id,
        instance_id=row.instance_id,
        process_id=instance.process_id if instance else None,
        record=record,
        element_id=row.element_id,
        element_name=row.element_name,
        line=row.line,
        kind=row.kind,
        message=row.message,
        details=row.details,
        created_at=row.created_at,
        resolved_at=row.resolved_at,
        resolution=row.resolution,
    )


def _instances(session: Session, rows: list[IncidentRow]) -> dict[int, InstanceRow]:
    ids = {r.instance_id for r in rows}
    if not ids:
        return {}
    found = session.scalars(select(InstanceRow).where(InstanceRow.id.in_(ids)))
    return {i.id: i for i in found}


@router.get("", summary="Open incidents, oldest first")
def list_open(
    session: Tx,
    _who: Viewer,
    instance_id: Annotated[
        int | None, Query(ge=1, le=ID_MAX, description="Only this instance's incidents.")
    ] = None,
    kind: Annotated[
        str | None,
        Query(max_length=40, description="Only this kind (script, service, connection, ...)."),
    ] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> IncidentPage:
    rows = [
        r
        for r in open_incidents(session)
        if (instance_id is None or r.instance_id == instance_id)
        and (kind is None or r.kind == kind)
    ]
    page = rows[offset : offset + limit]
    instances = _instances(session, page)
    return IncidentPage(
        items=[_out(r, instances.get(r.instance_id)) for r in page],
        total=len(rows),
        limit=limit,
        offset=offset,
    )


@router.get("/{incident_id}", summary="One incident, open or resolved", responses=NOT_FOUND)
def get_one(
    incident_id: Annotated[int, Path(ge=1, le=ID_MAX, description="The incident's id.")],
    session: Tx,
    _who: Viewer,
) -> IncidentOut:
    row = session.get(IncidentRow, incident_id)
    if row is None:
        raise NotFound(f"incident {incident_id} does not exist (GET /api/incidents lists them)")
    return _out(row, session.get(InstanceRow, row.instance_id))
