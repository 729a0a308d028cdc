"""/api/processes: deployed process definitions and their versions."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.api._deps import Viewer
from engine.api.schemas import (
    AUTH_ERRORS,
    INT_MAX,
    NOT_FOUND,
    ProcessDetail,
    ProcessIdPath,
    ProcessOut,
    ProcessVersionDetail,
    ProcessVersionOut,
    Tx,
    refuse_nul,
)
from engine.errors import NotFound
from engine.runtime import latest_version, list_processes
from engine.store import DeploymentRow, InstanceRow, ProcessVersionRow

router = APIRouter(
    prefix="/api/processes",
    tags=["processes"],
    dependencies=[Depends(refuse_nul)],
    responses=AUTH_ERRORS,
)


def _version_out(session: Session, row: ProcessVersionRow) -> ProcessVersionOut:
    deployment = session.get(DeploymentRow, row.deployment_id)
    instances = session.scalar(
        select(func.count()).select_from(InstanceRow).where(InstanceRow.version_id == row.id)
    )
    return ProcessVersionOut(
        process_id=row.process_id,
        version=row.version,
        name=row.name,
        deployment_id=row.deployment_id,
        filename=deployment.filename if deployment else "",
        content_hash=row.content_hash,
        created_at=row.created_at,
        limits=row.limits,
        options=row.options,
        instances=int(instances or 0),
    )


@router.get("", summary="Deployed processes with their latest version")
def list_all(session: Tx, _who: Viewer) -> list[ProcessOut]:
    return [ProcessOut(**p.__dict__) for p in list_processes(session)]


@router.get("/{process_id}", summary="One process and all its versions", responses=NOT_FOUND)
def get_process(process_id: ProcessIdPath, session: Tx, _who: Viewer) -> ProcessDetail:
    latest_version(session, process_id)  # NotFound naming the deployed ones
    summary = next(p for p in list_processes(session) if p.process_id == process_id)
    rows = session.scalars(
        select(ProcessVersionRow)
        .where(ProcessVersionRow.process_id == process_id)
        .order_by(ProcessVersionRow.version.desc())
    )
    return ProcessDetail(
        **summary.__dict__, version_list=[_version_out(session, row) for row in rows]
    )


@router.get(
    "/{process_id}/versions/{version}",
    summary="One version of a process, with the BPMN it was deployed from",
    responses=NOT_FOUND,
)
def get_version(
    process_id: ProcessIdPath,
    version: Annotated[int, Path(ge=1, le=INT_MAX, description="The version number.")],
    session: Tx,
    _who: Viewer,
) -> ProcessVersionDetail:
    latest = latest_version(session, process_id)
    row = session.scalar(
        select(ProcessVersionRow).where(
            ProcessVersionRow.process_id == process_id, ProcessVersionRow.version == version
        )
    )
    if row is None:
        raise NotFound(
            f"process {process_id!r} has no version {version} (versions 1 to {latest.version})"
        )
    deployment = session.get(DeploymentRow, row.deployment_id)
    return ProcessVersionDetail(
        **_version_out(session, row).model_dump(), xml=deployment.xml if deployment else ""
    )
