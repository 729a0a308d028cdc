"""Errors as JSON: ``{"error": {"message", "problems": [{where, message, hint, ...}]}}``."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import InterfaceError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from engine.errors import CatflowError, Conflict, NotFound, ValidationFailed

log = logging.getLogger("catflow.api")


def error_body(message: str, problems: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"message": message}
    if problems:
        body["problems"] = problems
    return {"error": body}


def status_of(exc: CatflowError) -> int:
    if isinstance(exc, NotFound):
        return 404
    if isinstance(exc, Conflict):
        return 409
    if isinstance(exc, ValidationFailed):
        return 422
    return 400


def install(app: FastAPI) -> None:
    @app.exception_handler(CatflowError)
    async def catflow_error(_request: Request, exc: CatflowError) -> JSONResponse:
        problems = [p.to_dict() for p in exc.problems]
        return JSONResponse(error_body(exc.message, problems), status_code=status_of(exc))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse(
            error_body(str(exc.detail)), status_code=exc.status_code, headers=exc.headers
        )

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            {
                "where": ".".join(str(part) for part in err.get("loc", ())),
                "message": str(err.get("msg", "")),
                "hint": "",
            }
            for err in exc.errors()
        ]
        return JSONResponse(error_body("the request was refused", problems), status_code=422)

    async def store_trouble(request: Request, exc: Exception) -> JSONResponse:
        # The database restarted, is down, or a lock or statement timed out: not a
        # bug, and a retry a moment later mostly succeeds (a dead connection has
        # invalidated the pool by now). The driver's message stays in the log.
        log.warning(
            "database unreachable or busy",
            # The first line only: the rest is the statement and its parameters,
            # which may hold a record's data.
            extra={"path": request.url.path, "error": (str(exc).splitlines() or [""])[0][:300]},
        )
        return JSONResponse(
            error_body("the database could not be reached or was busy; try again in a moment"),
            status_code=503,
            headers={"Retry-After": "1"},
        )

    app.add_exception_handler(OperationalError, store_trouble)
    app.add_exception_handler(InterfaceError, store_trouble)

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> JSONResponse:
        log.exception("internal error", extra={"path": request.url.path})
        return JSONResponse(
            error_body(
                f"internal error: {type(exc).__name__}; "
                "this is a Catflow bug, the log has the details"
            ),
            status_code=500,
        )
