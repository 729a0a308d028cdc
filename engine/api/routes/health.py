"""/healthz: the process answers and its database does."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text

from engine.api._deps import ProjectDep
from engine.store import head_revision

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Liveness and database check (no token needed)")
def healthz(project: ProjectDep) -> JSONResponse:
    try:
        with project.db.session() as session:
            session.execute(text("SELECT 1"))
    except Exception as exc:  # the database is down: say so, do not crash
        return JSONResponse({"status": "unavailable", "database": type(exc).__name__}, 503)
    return JSONResponse({"status": "ok", "schema": head_revision(project.db)})
