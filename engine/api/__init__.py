"""The HTTP API (FastAPI) and the pages, served by `catflow serve` through uvicorn.

``create_app(project)`` builds the app; ``ThreadedServer`` runs it beside the workers.
OpenAPI at /docs; every route checks the role its caller's token has (see ``tokens``).
FastAPI is imported when an app is built, not by every `catflow` command that only
needs ``tokens``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from engine.serving import ThreadedServer

if TYPE_CHECKING:
    from fastapi import FastAPI

    from engine.runtime import Project


def create_app(project: Project) -> FastAPI:
    from ._app import create_app as build

    return build(project)


__all__ = ["ThreadedServer", "create_app"]
