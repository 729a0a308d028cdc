"""The ASGI app: Calendar API v3, OAuth2 endpoints and the ``/_emulator`` admin API."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from . import _calendars, _events, _fields, _oauth
from ._call import Call, Reply
from ._errors import ApiError, OAuthError
from ._faults import FaultInjector, Faults
from ._state import State
from ._validate import discovery_document, route, validate_body, validate_query

log = logging.getLogger(__name__)
API_PREFIX = "/calendar/v3/"
DEFAULT_TOKEN_LIFETIME_S = 3600

Handler = Callable[[Call], Reply]
HANDLERS: dict[str, Handler] = {
    "calendar.calendars.insert": _calendars.calendars_insert,
    "calendar.calendars.get": _calendars.calendars_get,
    "calendar.calendars.patch": _calendars.calendars_patch,
    "calendar.calendars.update": _calendars.calendars_update,
    "calendar.calendars.delete": _calendars.calendars_delete,
    "calendar.calendarList.list": _calendars.calendar_list_list,
    "calendar.calendarList.get": _calendars.calendar_list_get,
    "calendar.events.insert": _events.events_insert,
    "calendar.events.get": _events.events_get,
    "calendar.events.list": _events.events_list,
    "calendar.events.patch": _events.events_patch,
    "calendar.events.update": _events.events_update,
    "calendar.events.delete": _events.events_delete,
    "calendar.events.watch": _events.events_watch,
    "calendar.channels.stop": _events.channels_stop,
}


@dataclass
class Core:
    """What the app serves from: state, faults and settings."""

    state: State
    injector: FaultInjector
    token_lifetime: int = DEFAULT_TOKEN_LIFETIME_S

    @property
    def faults(self) -> Faults:
        return self.injector.faults


def _error(exc: ApiError) -> JSONResponse:
    return JSONResponse(exc.body(), status_code=exc.code, headers=exc.headers)


def _oauth_error(exc: OAuthError) -> JSONResponse:
    return JSONResponse(exc.body(), status_code=exc.status)


async def _form(request: Request) -> dict[str, str]:
    raw = (await request.body()).decode("utf-8", "replace")
    pairs = parse_qsl(raw, keep_blank_values=True) + list(request.query_params.items())
    return dict(pairs)


class _RequestLog:
    """Each API and OAuth request into the request log (``/_emulator/requests``).

    Plain ASGI, not ``@app.middleware("http")``: that one streams every response
    through a task group of its own, about a third of the emulator's CPU per request.
    """

    def __init__(self, app: ASGIApp, core: Core) -> None:
        self.app = app
        self.core = core

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] != "http" or path.startswith("/_emulator"):
            await self.app(scope, receive, send)
            return
        started = time.time()
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        await self.app(scope, receive, sending)
        self.core.injector.record(
            {
                "time": started,
                "method": scope["method"],
                "path": path,
                "query": _redacted(scope.get("query_string", b"").decode()),
                "status": status,
                "user": scope.get("emulator.user"),
                "duration_ms": round((time.time() - started) * 1000, 3),
            }
        )


def create_app(core: Core) -> FastAPI:
    app = FastAPI(
        title="Catflow Google Calendar emulator", openapi_url=None, docs_url=None, redoc_url=None
    )

    app.add_middleware(_RequestLog, core=core)

    # -- OAuth2 ------------------------------------------------------------------------------

    @app.api_route("/o/oauth2/v2/auth", methods=["GET", "POST"])
    @app.api_route("/o/oauth2/auth", methods=["GET", "POST"])
    async def authorize(request: Request) -> Response:
        try:
            location = _oauth.authorize(core.state, await _form(request))
        except OAuthError as exc:
            return _oauth_error(exc)
        return RedirectResponse(location, status_code=302)

    @app.post("/token")
    @app.post("/o/oauth2/token")
    async def token(request: Request) -> Response:
        try:
            form = await _form(request)
            answer = _oauth.token(
                core.state, form, request.headers.get("authorization"), core.token_lifetime
            )
        except OAuthError as exc:
            return _oauth_error(exc)
        return JSONResponse(answer, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})

    @app.api_route("/revoke", methods=["GET", "POST"])
    @app.api_route("/o/oauth2/revoke", methods=["GET", "POST"])
    async def revoke(request: Request) -> Response:
        try:
            _oauth.revoke(core.state, (await _form(request)).get("token"))
        except OAuthError as exc:
            return _oauth_error(exc)
        return JSONResponse({})

    # -- Calendar API v3 ---------------------------------------------------------------------

    @app.api_route("/calendar/v3/{rest:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
    async def api(request: Request) -> Response:
        try:
            reply = await _serve(core, request)
        except ApiError as exc:
            return _error(exc)
        except Exception:  # the emulator must answer like Google even when it has a bug
            log.exception("calendar emulator failure")
            return _error(ApiError(500, "backendError", "Backend Error"))
        if reply.body is None:
            return Response(status_code=reply.status, headers=reply.headers)
        return JSONResponse(reply.body, status_code=reply.status, headers=reply.headers)

    _admin(app, core)
    return app


async def _serve(core: Core, request: Request) -> Reply:
    if core.faults.latency_ms > 0:
        await asyncio.sleep(core.faults.latency_ms / 1000)
    raw_path: bytes = request.scope.get("raw_path") or request.url.path.encode()
    relative = raw_path.decode("latin-1")[len(API_PREFIX) :]
    method, path_params = route(request.method, relative)
    query = parse_qsl(request.url.query, keep_blank_values=True)
    token_param = dict(query).get("oauth_token") or dict(query).get("access_token")
    user = _oauth.authenticate(core.state, request.headers.get("authorization"), token_param)
    request.scope["emulator.user"] = user
    core.injector.check(user)
    params = validate_query(method, query)
    selection = _fields.requested(params, method)  # before the method runs: a bad one does nothing
    params.update(path_params)
    body: Any = None
    if method.request_schema is not None:
        raw = await request.body()
        if not raw.strip():
            body = {}
        else:
            try:
                body = json.loads(raw)
            except ValueError:
                raise ApiError(400, "parseError", "Parse Error") from None
        validate_body(method, body, partial=method.id.endswith(".patch"))
    handler = HANDLERS.get(method.id)
    if handler is None:
        raise ApiError(501, "notImplemented", f"{method.id} is not implemented by the emulator.")
    call = Call(
        state=core.state,
        user=user,
        params=params,
        body=body,
        headers={k.lower(): v for k, v in request.headers.items()},
        base_url=str(request.base_url).rstrip("/"),
    )
    reply = handler(call)
    if selection is not None and reply.body is not None:
        reply.body = _fields.apply(selection, reply.body)
    return reply


def _admin(app: FastAPI, core: Core) -> None:
    @app.get("/_emulator/requests")
    async def requests_log() -> Response:
        return JSONResponse({"requests": core.injector.requests()})

    @app.delete("/_emulator/requests")
    async def clear_requests() -> Response:
        core.injector.clear_log()
        return Response(status_code=204)

    @app.get("/_emulator/faults")
    async def get_faults() -> Response:
        return JSONResponse(core.faults.to_json())

    @app.api_route("/_emulator/faults", methods=["PUT", "PATCH", "POST"])
    async def set_faults(request: Request) -> Response:
        try:
            data = json.loads(await request.body() or b"{}")
            if not isinstance(data, dict):
                raise ValueError("expected a JSON object")
            core.faults.update(data)
        except (ValueError, TypeError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        if "seed" in data:
            core.injector.reseed()
        return JSONResponse(core.faults.to_json())

    @app.post("/_emulator/quotas/reset")
    async def reset_quotas() -> Response:
        core.injector.reset_quotas()
        return Response(status_code=204)

    @app.post("/_emulator/expire-tokens")
    async def expire_tokens() -> Response:
        return JSONResponse({"expired": _oauth.expire_all(core.state)})

    @app.post("/_emulator/expire-sync-tokens")
    async def expire_sync_tokens() -> Response:
        with core.state.lock:
            count = len(core.state.sync_tokens)
            core.state.sync_tokens.clear()
        core.state.save()
        return JSONResponse({"expired": count})

    @app.post("/_emulator/tokens")
    async def mint_token(request: Request) -> Response:
        data = json.loads(await request.body() or b"{}")
        user = str(data.get("user") or "user@example.com")
        lifetime = int(data.get("expires_in") or core.token_lifetime)
        access = _oauth.issue_token(core.state, user, lifetime)
        return JSONResponse({"access_token": access, "expires_in": lifetime, "user": user})

    @app.post("/_emulator/clients")
    async def add_client(request: Request) -> Response:
        data = json.loads(await request.body() or b"{}")
        if not data.get("client_id") or not data.get("client_secret"):
            return JSONResponse({"error": "client_id and client_secret required"}, 400)
        with core.state.lock:
            core.state.clients[str(data["client_id"])] = str(data["client_secret"])
        core.state.save()
        return JSONResponse({"client_id": data["client_id"]})

    @app.get("/_emulator/discovery")
    async def discovery(request: Request) -> Response:
        doc = discovery_document()
        base = str(request.base_url)
        doc.update(rootUrl=base, baseUrl=base + "calendar/v3/")
        return JSONResponse(doc)


_SECRET_PARAMS = {"access_token", "oauth_token", "token", "code", "client_secret", "refresh_token"}


def _redacted(query: str) -> str:
    """The query string for the request log, with tokens, codes and secrets blanked."""
    pairs = parse_qsl(query, keep_blank_values=True)
    return urlencode([(k, "[redacted]" if k in _SECRET_PARAMS else v) for k, v in pairs])
