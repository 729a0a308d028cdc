"""Operator and designer pages: server-rendered, a little JavaScript where it helps."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI

router = APIRouter(include_in_schema=False)


def mount(app: FastAPI) -> None:
    """Add the pages (and their static files) to the app."""
    app.include_router(router)
