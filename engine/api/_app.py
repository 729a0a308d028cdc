"""Building the FastAPI app: the routers, the error handlers and the pages."""

from __future__ import annotations

from fastapi import FastAPI

from engine import __version__
from engine.runtime import Project

from . import _errors
from .routes import (
    catalogs,
    connections,
    deployments,
    health,
    incidents,
    instances,
    metrics,
    processes,
    records,
    tokens,
)


def create_app(project: Project) -> FastAPI:
    app = FastAPI(
        title="Catflow",
        version=__version__,
        description="BPMN processes started by changes to catalog records. Every call "
        "needs `Authorization: Bearer <token>` (`catflow tokens create --role R`).",
    )
    app.state.project = project
    _errors.install(app)
    for module in (
        health,
        metrics,
        catalogs,
        records,
        deployments,
        processes,
        instances,
        incidents,
        connections,
        tokens,
    ):
        app.include_router(module.router)
    from engine import ui  # the pages build on the API's dependencies

    ui.mount(app)
    return app
