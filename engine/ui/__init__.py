"""Operator and designer pages: server-rendered, a little JavaScript where it helps.

Every page is under ``/ui`` and reads and acts through the same services as the CLI
(records, runtime, connections); the REST API is not involved. Pages work without
JavaScript, except the BPMN diagram (bpmn-js, bundled into ``static/vendor`` by
``make ui-assets``) and the live sync status of a record.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, Response

from engine.errors import CatflowError, NotFound

from . import _connections, _deployments, _instances, _records, _session
from ._web import STATIC_DIR, UI, Refused, SignInNeeded, redirect, render, sign_in_url

router = APIRouter(include_in_schema=False)
for _module in (_session, _instances, _deployments, _records, _connections):
    router.include_router(_module.router, include_in_schema=False)

Handler = Callable[[Request, Any], Awaitable[Response] | Response]


def _is_page(request: Request) -> bool:
    path = request.url.path
    return path == UI or path.startswith(f"{UI}/")


def _error_page(request: Request, status: int, message: str, problems: list[str]) -> Response:
    # No session lookup here: the error may be that the database is unusable.
    return render(
        request,
        "error.html",
        {"status": status, "message": message, "problems": problems},
        status=status,
        who=getattr(request.state, "ui_who", None),
    )


def _install_errors(app: FastAPI) -> None:
    """Errors on pages as pages; elsewhere (the API) as the API's JSON, unchanged."""
    api_handlers: dict[Any, Handler] = dict(app.exception_handlers)

    async def delegate(request: Request, exc: Exception, kind: Any) -> Response:
        handler = api_handlers.get(kind)
        if handler is None:
            raise exc
        result = handler(request, exc)
        return await result if isinstance(result, Awaitable) else result

    async def sign_in_needed(request: Request, _exc: Exception) -> Response:
        if request.url.path.endswith(".json"):
            return JSONResponse({"error": {"message": "sign in again"}}, status_code=401)
        return redirect(sign_in_url(request))

    async def refused(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, Refused)
        return _error_page(request, exc.status, exc.message, [])

    async def catflow_error(request: Request, exc: Exception) -> Response:
        if not _is_page(request):
            return await delegate(request, exc, CatflowError)
        assert isinstance(exc, CatflowError)
        status = 404 if isinstance(exc, NotFound) else 400
        return _error_page(request, status, exc.message, [str(p) for p in exc.problems])

    async def http_error(request: Request, exc: Exception) -> Response:
        if not _is_page(request):
            return await delegate(request, exc, StarletteHTTPException)
        assert isinstance(exc, StarletteHTTPException)
        message = "no such page" if exc.status_code == 404 else str(exc.detail)
        return _error_page(request, exc.status_code, message, [])

    async def invalid_request(request: Request, exc: Exception) -> Response:
        if not _is_page(request):
            return await delegate(request, exc, RequestValidationError)
        assert isinstance(exc, RequestValidationError)
        problems = [
            f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', '')}"
            for e in exc.errors()
        ]
        return _error_page(request, 400, "the address or form was not understood", problems)

    app.add_exception_handler(SignInNeeded, sign_in_needed)
    app.add_exception_handler(Refused, refused)
    app.add_exception_handler(CatflowError, catflow_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, invalid_request)


def mount(app: FastAPI) -> None:
    """Add the pages (and their static files) to the app."""
    _install_errors(app)
    app.include_router(router)
    app.mount(f"{UI}/static", StaticFiles(directory=STATIC_DIR), name="ui-static")
