"""/api/catalogs: the catalog definitions (fields and trigger rules)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from engine.api._deps import ProjectDep, Viewer
from engine.api.schemas import NOT_FOUND, TOKEN_ERRORS
from engine.errors import NotFound

router = APIRouter(prefix="/api/catalogs", tags=["catalogs"])


@router.get("", summary="Every catalog with its fields and triggers", responses=TOKEN_ERRORS)
def list_catalogs(project: ProjectDep, _who: Viewer) -> list[dict[str, Any]]:
    return [{"name": name, **definition.to_dict()} for name, definition in project.catalogs.items()]


@router.get(
    "/{catalog}", summary="One catalog's definition", responses={**TOKEN_ERRORS, **NOT_FOUND}
)
def get_catalog(catalog: str, project: ProjectDep, _who: Viewer) -> dict[str, Any]:
    definition = project.catalogs.get(catalog)
    if definition is None:
        raise NotFound(f"no catalog named {catalog!r} (catalogs: {', '.join(project.catalogs)})")
    return {"name": catalog, **definition.to_dict()}
