"""/api/deployments: upload BPMN files (all or none) and see what was deployed.

A file comes as multipart form data (any number of file parts) or as the raw XML
body. Each is validated before anything is stored; a refusal is a 422 whose
problems name the file, line, element id, name and type, and what to do.
"""

from __future__ import annotations

import posixpath
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response, status
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from starlette.datastructures import UploadFile

from engine.api._deps import Designer, ProjectDep, Viewer
from engine.api.schemas import (
    AUTH_ERRORS,
    CONFLICT,
    ID_MAX,
    NOT_FOUND,
    DeployedProcess,
    DeploymentDetail,
    DeploymentOut,
    DeploymentPage,
    DeployResultOut,
    Limit,
    Offset,
    Tx,
    error_response,
    refuse_nul,
)
from engine.errors import NotFound, Problem, ValidationFailed
from engine.runtime import deploy
from engine.store import DeploymentRow, ProcessVersionRow

router = APIRouter(
    prefix="/api/deployments",
    tags=["deployments"],
    dependencies=[Depends(refuse_nul)],
    responses=AUTH_ERRORS,
)

RAW_TYPES = ("application/xml", "text/xml", "application/bpmn+xml", "application/octet-stream")
MAX_FILES = 20
DEFAULT_NAME = "upload.bpmn"

UPLOAD_BODY: dict[str, Any] = {
    "required": True,
    "description": "The BPMN files: multipart form data with one or more file parts, or one "
    "file as the raw body (then `?filename=` names it).",
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "properties": {
                    "file": {
                        "type": "array",
                        "items": {"type": "string", "format": "binary"},
                        "minItems": 1,
                        "maxItems": MAX_FILES,
                        "description": "BPMN 2.0 XML files",
                    }
                },
                "required": ["file"],
            }
        },
        **{kind: {"schema": {"type": "string"}} for kind in RAW_TYPES[:3]},
    },
}


def _filename(raw: str | None) -> str:
    """A file name for messages: the base name the client gave, printable and bounded."""
    name = posixpath.basename((raw or "").replace("\\", "/"))
    name = "".join(c for c in name if c.isprintable())[:200]
    return name or DEFAULT_NAME


def _too_big(name: str, limit: int) -> ValidationFailed:
    return ValidationFailed(
        "deployment refused; nothing was deployed",
        [
            Problem(
                f"file is more than {limit:,} bytes, the limit",
                where=name,
                hint="split the process, or raise CATFLOW_MAX_BPMN_BYTES",
                details={"file": name, "line": None},
            )
        ],
    )


async def _raw(request: Request, name: str, limit: int) -> bytes:
    data = bytearray()
    async for chunk in request.stream():
        data += chunk
        if len(data) > limit:
            raise _too_big(name, limit)
    return bytes(data)


async def _files(request: Request, filename: str | None, limit: int) -> list[tuple[str, bytes]]:
    """The uploaded files as (name, content); refuses other kinds of body."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_FILES * limit + 64 * 1024:
        raise HTTPException(
            413,
            f"the upload is {int(declared):,} bytes; at most {MAX_FILES} files of "
            f"{limit:,} bytes each are taken (CATFLOW_MAX_BPMN_BYTES)",
        )
    if content_type in RAW_TYPES:
        name = _filename(filename)
        return [(name, await _raw(request, name, limit))]
    if content_type != "multipart/form-data":
        raise HTTPException(
            415,
            f"a deployment is a BPMN file: send it as multipart/form-data (a file part) or as "
            f"the raw body with Content-Type application/xml, not {content_type or 'no type'}",
        )
    files: list[tuple[str, bytes]] = []
    async with request.form(max_files=MAX_FILES, max_fields=MAX_FILES, max_part_size=limit) as form:
        for field, value in form.multi_items():
            if isinstance(value, UploadFile):
                name = _filename(value.filename or field)
                data = await value.read(limit + 1)
                if len(data) > limit:
                    raise _too_big(name, limit)
                files.append((name, data))
            elif field == "file":  # a client that sends the XML as a text field
                files.append((_filename(filename), value.encode()))
    if not files:
        raise ValidationFailed(
            "no file in the upload; nothing was deployed",
            [Problem("no file part", where="body", hint="send the BPMN file as a part named file")],
        )
    return files


@router.post(
    "",
    summary="Deploy BPMN files: all of them, or none if any is refused",
    openapi_extra={"requestBody": UPLOAD_BODY},
    responses={
        200: {"description": "Every file was deployed before: nothing changed"},
        201: {
            "model": list[DeployResultOut],
            "description": "New processes or versions were deployed",
        },
        **CONFLICT,
        413: error_response("The upload is far larger than CATFLOW_MAX_BPMN_BYTES allows"),
        415: error_response("The body is neither multipart form data nor XML"),
    },
)
async def create_deployment(
    request: Request,
    response: Response,
    project: ProjectDep,
    who: Designer,
    filename: Annotated[
        str | None,
        Query(max_length=200, description="The file's name in messages, for a raw XML body"),
    ] = None,
) -> list[DeployResultOut]:
    limit = project.settings.max_bpmn_bytes
    files = await _files(request, filename, limit)
    # deploy() opens its own transactions; this route holds none.
    results = await run_in_threadpool(
        deploy, project.db, files, max_bytes=limit, deployed_by=f"token:{who.name}"
    )
    if any(r.status != "unchanged" for r in results):
        response.status_code = status.HTTP_201_CREATED
    return [DeployResultOut(**r.__dict__) for r in results]


def _out(session: Session, row: DeploymentRow) -> dict[str, Any]:
    versions = session.execute(
        select(ProcessVersionRow.process_id, ProcessVersionRow.version)
        .where(ProcessVersionRow.deployment_id == row.id)
        .order_by(ProcessVersionRow.process_id)
    ).all()
    return {
        "id": row.id,
        "filename": row.filename,
        "content_hash": row.content_hash,
        "deployed_by": row.deployed_by,
        "deployed_at": row.deployed_at,
        "processes": [DeployedProcess(process_id=p, version=v) for p, v in versions],
    }


@router.get("", summary="Deployments, newest first")
def list_deployments(
    session: Tx, _who: Viewer, limit: Limit = 50, offset: Offset = 0
) -> DeploymentPage:
    total = session.scalar(select(func.count()).select_from(DeploymentRow)) or 0
    rows = session.scalars(
        select(DeploymentRow).order_by(DeploymentRow.id.desc()).limit(limit).offset(offset)
    )
    return DeploymentPage(
        items=[DeploymentOut(**_out(session, r)) for r in rows],
        total=total,
        limit=limit,
        offset=offset,
    )


@router.get("/{deployment_id}", summary="One deployment, with its BPMN file", responses=NOT_FOUND)
def get_deployment(
    deployment_id: Annotated[int, Path(ge=1, le=ID_MAX, description="The deployment's id.")],
    session: Tx,
    _who: Viewer,
) -> DeploymentDetail:
    row = session.get(DeploymentRow, deployment_id)
    if row is None:
        raise NotFound(
            f"deployment {deployment_id} does not exist (GET /api/deployments lists them)"
        )
    return DeploymentDetail(**_out(session, row), xml=row.xml)
