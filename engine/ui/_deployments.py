"""Deployments: upload a BPMN file, the versions of each process, and a version's diagram."""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.responses import Response

from engine import runtime
from engine.api._deps import ProjectDep
from engine.errors import CatflowError, ValidationFailed

from . import _queries
from ._diagram import Diagram, problem_notes
from ._web import UI, Act, Form, Page, need, redirect, render

router = APIRouter(include_in_schema=False)
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


def _listing(project: Any) -> dict[str, Any]:
    with project.db.session() as session:
        processes = runtime.list_processes(session)
        all_versions = _queries.versions(session)
    by_process: dict[str, list[_queries.VersionView]] = {}
    for v in all_versions:
        by_process.setdefault(v.process_id, []).append(v)
    return {"processes": processes, "versions": by_process}


@router.get(f"{UI}/deployments")
def deployments_page(request: Request, who: Page, project: ProjectDep) -> Response:
    return render(
        request,
        "deployments.html",
        {**_listing(project), "can_deploy": who.may("designer")},
        who=who,
    )


def _source_lines(text: str, problems: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Lines around each problem's line, for readers without the diagram."""
    lines = text.splitlines()
    wanted: set[int] = set()
    marked: set[int] = set()
    for p in problems:
        line = p.get("line")
        if isinstance(line, int) and 0 < line <= len(lines):
            marked.add(line)
            wanted.update(range(max(1, line - 2), min(len(lines), line + 2) + 1))
    return [{"n": n, "text": lines[n - 1], "marked": n in marked} for n in sorted(wanted)]


@router.post(f"{UI}/deployments")
async def upload(request: Request, who: Act, form: Form, project: ProjectDep) -> Response:
    need(who, "designer", "Deploying a process")
    upload = form.get("file")
    if not isinstance(upload, UploadFile) or not upload.filename:
        return redirect(f"{UI}/deployments", "choose a .bpmn file to upload first", "error")
    limit = project.settings.max_bpmn_bytes
    data = await upload.read(limit + 1)
    filename = _SAFE_NAME.sub("_", upload.filename.rsplit("/", 1)[-1].rsplit("\\", 1)[-1])
    if len(data) > limit:
        return redirect(
            f"{UI}/deployments",
            f"{filename} is more than {limit:,} bytes, the limit (CATFLOW_MAX_BPMN_BYTES)",
            "error",
        )
    try:
        results = await run_in_threadpool(
            runtime.deploy,
            project.db,
            [(filename, data)],
            max_bytes=limit,
            deployed_by=who.actor,
        )
    except ValidationFailed as exc:
        problems = [p.to_dict() for p in exc.problems]
        notes = problem_notes(problems)
        text = data.decode("utf-8", errors="replace")
        listing = await run_in_threadpool(_listing, project)
        return render(
            request,
            "deployments.html",
            {
                **listing,
                "can_deploy": True,
                "refused": {
                    "filename": filename,
                    "message": exc.message,
                    "problems": problems,
                    "source": _source_lines(text, problems),
                    "diagram": Diagram(text, dict.fromkeys(notes, "problem"), notes),
                },
            },
            status=422,
            who=who,
        )
    except CatflowError as exc:
        return redirect(f"{UI}/deployments", str(exc), "error")
    done = "; ".join(f"{r.process_id} v{r.version} ({r.status})" for r in results)
    return redirect(f"{UI}/deployments", f"deployed {filename}: {done}")


@router.get(f"{UI}/processes/{{process_id}}")
def process_page(
    request: Request,
    who: Page,
    project: ProjectDep,
    process_id: str,
    version: Annotated[int | None, Query(ge=1)] = None,
) -> Response:
    with project.db.session() as session:
        found = _queries.versions(session, process_id)
        if not found:
            runtime.latest_version(session, process_id)  # raises NotFound, naming the known ones
        shown = version or found[0].version
        xml = _queries.version_xml(session, process_id, shown)
    return render(
        request,
        "process.html",
        {
            "process_id": process_id,
            "versions": found,
            "shown": shown,
            "diagram": Diagram(xml),
        },
        who=who,
    )
