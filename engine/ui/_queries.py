"""Reads the pages need that the runtime has no function for: versions and their BPMN."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.errors import NotFound
from engine.store import DeploymentRow, InstanceRow, ProcessVersionRow


@dataclass(frozen=True)
class VersionView:
    process_id: str
    version: int
    name: str
    filename: str
    deployed_by: str
    deployed_at: datetime
    content_hash: str
    instances: int


def versions(session: Session, process_id: str | None = None) -> list[VersionView]:
    """Every version (of one process, or of all), newest first within each process."""
    counts = dict(
        session.execute(
            select(InstanceRow.version_id, func.count()).group_by(InstanceRow.version_id)
        ).all()
    )
    query = (
        select(ProcessVersionRow, DeploymentRow)
        .join(DeploymentRow, DeploymentRow.id == ProcessVersionRow.deployment_id)
        .order_by(ProcessVersionRow.process_id, ProcessVersionRow.version.desc())
    )
    if process_id is not None:
        query = query.where(ProcessVersionRow.process_id == process_id)
    return [
        VersionView(
            process_id=v.process_id,
            version=v.version,
            name=v.name,
            filename=d.filename,
            deployed_by=d.deployed_by,
            deployed_at=v.created_at,
            content_hash=v.content_hash,
            instances=int(counts.get(v.id, 0)),
        )
        for v, d in session.execute(query).all()
    ]


def version_xml(session: Session, process_id: str, version: int) -> str:
    """The BPMN file (as deployed) that holds ``version`` of ``process_id``."""
    row = session.scalar(
        select(DeploymentRow.xml)
        .join(ProcessVersionRow, ProcessVersionRow.deployment_id == DeploymentRow.id)
        .where(ProcessVersionRow.process_id == process_id, ProcessVersionRow.version == version)
    )
    if row is None:
        raise NotFound(f"process {process_id!r} has no version {version}")
    return row


def instance_xml(session: Session, instance_id: int) -> tuple[str, int, int]:
    """The BPMN an instance runs, its version number, and its process's latest version."""
    found = session.execute(
        select(DeploymentRow.xml, ProcessVersionRow.version, ProcessVersionRow.process_id)
        .join(ProcessVersionRow, ProcessVersionRow.deployment_id == DeploymentRow.id)
        .join(InstanceRow, InstanceRow.version_id == ProcessVersionRow.id)
        .where(InstanceRow.id == instance_id)
    ).one_or_none()
    if found is None:
        raise NotFound(f"instance {instance_id} does not exist")
    xml, version, process_id = found
    latest = session.scalar(
        select(func.max(ProcessVersionRow.version)).where(
            ProcessVersionRow.process_id == process_id
        )
    )
    return xml, version, int(latest or version)
