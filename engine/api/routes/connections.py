"""/api/connections: OAuth2 connections — list, add, and authorise through the browser.

``GET /api/connections/{name}/authorize`` sends the browser to the provider's consent
page with this server's ``/api/connections/{name}/callback`` as the redirect; the
callback exchanges the code for a token, retries the instances the connection had
stopped, and sends the browser to the connections page. The callback needs no API
token: the provider's redirect carries none. What lets it in is the ``state`` the
authorize call issued — random, for one connection, usable once, for ten minutes,
kept in the database so the answer may reach any API process of the store.

No answer ever holds a client secret or a token.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated

import requests
from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse

from engine.api._deps import Admin, ProjectDep, Viewer
from engine.api.schemas import (
    CONFLICT,
    NOT_FOUND,
    REQUEST_ERRORS,
    TOKEN_ERRORS,
    ConnectionIn,
    ConnectionOut,
    Tx,
    error_response,
    refuse_nul,
)
from engine.components.outbound import OutboundPolicy
from engine.connections import (
    ConnectionView,
    PendingConsent,
    add_connection,
    finish_authorization,
    get_connection,
    list_connections,
    load_box,
    remember_consent,
    start_authorization,
    take_consent,
)
from engine.errors import CatflowError, NotFound, ValidationFailed
from engine.runtime import Project, resume_after_authorization

router = APIRouter(
    prefix="/api/connections",
    tags=["connections"],
    dependencies=[Depends(refuse_nul)],
    responses=REQUEST_ERRORS,  # and TOKEN_ERRORS on each route but the callback
)

CONNECTIONS_PAGE = "/ui/connections"
_FIELD = {
    "NAME": "name",
    "--provider": "provider",
    "--client-id": "client_id",
    "--client-secret": "client_secret",
    "--auth-url": "auth_url",
    "--token-url": "token_url",
    "--api-url": "api_url",
}
Name = Annotated[str, Path(min_length=1, max_length=100, description="The connection's name.")]


def _out(view: ConnectionView) -> ConnectionOut:
    return ConnectionOut(**view.__dict__)


@router.get(
    "",
    summary="Connections with their status and token expiry (never a secret)",
    responses=TOKEN_ERRORS,
)
def list_all(session: Tx, _who: Viewer) -> list[ConnectionOut]:
    return [_out(v) for v in list_connections(session)]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Add a connection; then authorise it (GET .../authorize in a browser)",
    responses={**TOKEN_ERRORS, **CONFLICT},
)
def create(body: ConnectionIn, project: ProjectDep, session: Tx, _who: Admin) -> ConnectionOut:
    box = load_box(project.settings.secret_key_file)
    try:
        view = add_connection(
            session,
            box,
            name=body.name,
            provider=body.provider,
            client_id=body.client_id,
            client_secret=body.client_secret.get_secret_value(),
            scopes=list(body.scopes) if body.scopes else None,
            auth_url=body.auth_url,
            token_url=body.token_url,
            api_url=body.api_url,
        )
    except ValidationFailed as exc:
        # The service names the CLI's arguments (NAME, --token-url); say the body's fields.
        problems = [replace(p, where=_FIELD.get(p.where, p.where)) for p in exc.problems]
        raise ValidationFailed(exc.message, problems) from None
    return _out(view)


@router.get(
    "/{name}",
    summary="One connection (never a secret)",
    responses={**TOKEN_ERRORS, **NOT_FOUND},
)
def get_one(name: Name, session: Tx, _who: Viewer) -> ConnectionOut:
    return _out(ConnectionView.of(get_connection(session, name)))


@router.get(
    "/{name}/authorize",
    summary="Open in a browser: redirects to the provider's consent page",
    response_class=RedirectResponse,
    status_code=status.HTTP_302_FOUND,
    responses={
        302: {"description": "To the provider's consent page"},
        **TOKEN_ERRORS,
        **NOT_FOUND,
    },
)
def authorize(
    name: Name,
    request: Request,
    project: ProjectDep,
    who: Admin,
    login_hint: Annotated[
        str | None,
        Query(max_length=320, description="The account to sign in with (e-mail address)."),
    ] = None,
) -> RedirectResponse:
    redirect_uri = str(request.url_for("connection_callback", name=name))
    policy = OutboundPolicy.from_settings(project.settings)
    consent = start_authorization(project.db, policy, name, redirect_uri, login_hint or None)
    remember_consent(project.db, consent.state, PendingConsent(name, redirect_uri, who.name))
    return RedirectResponse(
        consent.url, status.HTTP_302_FOUND, headers={"Cache-Control": "no-store"}
    )


def _finish(project: Project, consent: PendingConsent, code: str) -> list[int]:
    box = load_box(project.settings.secret_key_file)
    policy = OutboundPolicy.from_settings(project.settings)
    name = consent.connection
    try:
        finish_authorization(project.db, box, policy, name, consent.redirect_uri, code)
    except requests.RequestException as exc:
        raise HTTPException(
            status.HTTP_502_BAD_GATEWAY,
            f"connection {name!r}: the provider's token endpoint could not be reached "
            f"({type(exc).__name__}); try again with GET /api/connections/{name}/authorize",
        ) from None
    with project.db.session() as session:
        return resume_after_authorization(session, name, f"token:{consent.started_by}")


@router.get(
    "/{name}/callback",
    name="connection_callback",
    summary="Where the provider sends the browser back (no token: the state admits it)",
    response_class=RedirectResponse,
    status_code=status.HTTP_302_FOUND,
    responses={
        302: {"description": "Authorised: to the connections page"},
        400: error_response("The provider refused, or sent no code"),
        404: error_response("No consent under way has this state (unknown, used or expired)"),
        502: error_response("The provider's token endpoint could not be reached"),
    },
)
async def callback(
    name: Name,
    project: ProjectDep,
    state: Annotated[
        str, Query(min_length=1, max_length=500, description="As issued by .../authorize.")
    ],
    code: Annotated[str | None, Query(max_length=4096)] = None,
    error: Annotated[str | None, Query(max_length=500)] = None,
) -> RedirectResponse:
    again = f"start again with GET /api/connections/{name}/authorize"
    consent = await run_in_threadpool(take_consent, project.db, state)
    if consent is None or consent.connection != name:
        raise NotFound(
            f"connection {name!r}: this consent answer is unknown, used or expired; {again}"
        )
    if error is not None or not code:
        raise CatflowError(
            f"the provider did not authorise connection {name!r}: "
            f"{error or 'no code in the redirect'}; {again}"
        )
    await run_in_threadpool(_finish, project, consent, code)
    return RedirectResponse(
        CONNECTIONS_PAGE, status.HTTP_302_FOUND, headers={"Cache-Control": "no-store"}
    )
