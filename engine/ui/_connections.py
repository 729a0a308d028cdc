"""Connections: status and expiry, and authorising one through the provider's consent page.

The authorise button sends the browser to the consent URL with a redirect back to
``/ui/connections/callback``. That callback may arrive without the session cookie
(SameSite=Strict is not sent after a cross-site redirect, as from Google), so it is
trusted through the OAuth ``state`` instead: made here for an admin, kept in this
process for ten minutes, good once, and bound to the browser that asked for it by a
SameSite=Lax cookie (sent on the provider's top-level redirect back).
"""

from __future__ import annotations

import hmac
import threading
import time
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from engine.api._deps import ProjectDep
from engine.components.outbound import OutboundPolicy
from engine.connections import (
    finish_authorization,
    list_connections,
    load_box,
    start_authorization,
)
from engine.errors import CatflowError
from engine.runtime import Project, resume_after_authorization

from ._web import (
    UI,
    Act,
    Form,
    Page,
    current,
    field,
    need,
    redirect,
    render,
    set_flash,
)

router = APIRouter(include_in_schema=False)
STATE_COOKIE = "catflow_oauth_state"
CALLBACK = f"{UI}/connections/callback"
PENDING_SECONDS = 600.0


@dataclass(frozen=True)
class _Pending:
    connection: str
    redirect_uri: str
    actor: str
    started: float


class _PendingAuthorizations:
    """Consents asked for and not yet come back, by OAuth state."""

    def __init__(self) -> None:
        self._items: dict[str, _Pending] = {}
        self._lock = threading.Lock()

    def add(self, state: str, pending: _Pending) -> None:
        with self._lock:
            now = time.monotonic()
            self._items = {
                k: v for k, v in self._items.items() if now - v.started < PENDING_SECONDS
            }
            self._items[state] = pending

    def take(self, state: str) -> _Pending | None:
        with self._lock:
            found = self._items.pop(state, None)
        if found is None or time.monotonic() - found.started > PENDING_SECONDS:
            return None
        return found


_pending = _PendingAuthorizations()


@router.get(f"{UI}/connections")
def connections_page(request: Request, who: Page, project: ProjectDep) -> Response:
    with project.db.session() as session:
        views = list_connections(session)
    return render(
        request,
        "connections.html",
        {"connections": views, "can_authorize": who.may("admin")},
        who=who,
    )


@router.post(f"{UI}/connections/{{name}}/authorize")
def authorize(request: Request, who: Act, form: Form, project: ProjectDep, name: str) -> Response:
    need(who, "admin", "Authorising a connection")
    redirect_uri = str(request.url.replace(path=CALLBACK, query=""))
    login_hint = field(form, "login_hint").strip() or None
    policy = OutboundPolicy.from_settings(project.settings)
    try:
        consent = start_authorization(project.db, policy, name, redirect_uri, login_hint)
    except CatflowError as exc:
        return redirect(f"{UI}/connections", str(exc), "error")
    _pending.add(consent.state, _Pending(name, redirect_uri, who.actor, time.monotonic()))
    response = RedirectResponse(consent.url, status_code=303, headers={"Cache-Control": "no-store"})
    response.set_cookie(
        STATE_COOKIE,
        consent.state,
        max_age=int(PENDING_SECONDS),
        path=CALLBACK,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )
    return response


def _finish(project: Project, pending: _Pending, code: str) -> tuple[str, list[int]]:
    box = load_box(project.settings.secret_key_file)
    policy = OutboundPolicy.from_settings(project.settings)
    view = finish_authorization(
        project.db, box, policy, pending.connection, pending.redirect_uri, code
    )
    with project.db.session() as session:
        resumed = resume_after_authorization(session, pending.connection, pending.actor)
    return view.expires_at or "", resumed


@dataclass(frozen=True)
class _Outcome:
    ok: bool
    message: str = ""
    connection: str = ""
    expires_at: str = ""
    resumed: tuple[int, ...] = ()


async def _outcome(
    project: Project, pending: _Pending | None, code: str | None, error: str | None
) -> _Outcome:
    if pending is None:
        return _Outcome(
            False,
            "this authorisation answer is unknown, expired or was used already (or came to "
            "another browser); start again with the Authorise button",
        )
    name = pending.connection
    if code is None:
        return _Outcome(
            False,
            f"the provider did not authorise connection {name!r}: "
            f"{error or 'no code in its answer'}",
            name,
        )
    try:
        expires_at, resumed = await run_in_threadpool(_finish, project, pending, code)
    except CatflowError as exc:
        return _Outcome(False, exc.message, name)
    return _Outcome(True, "", name, expires_at, tuple(resumed))


@router.get(CALLBACK)
async def callback(
    request: Request,
    project: ProjectDep,
    state: Annotated[str, Query()] = "",
    code: Annotated[str | None, Query()] = None,
    error: Annotated[str | None, Query()] = None,
) -> Response:
    """The provider's redirect back: exchange the code, keep the token, resume instances."""
    bound = request.cookies.get(STATE_COOKIE, "")
    pending = _pending.take(state) if state else None
    if pending is not None and not hmac.compare_digest(bound, state):
        pending = None
    outcome = await _outcome(project, pending, code, error)
    # A page of ours, not a redirect: the way on (a refresh started here) is same-site,
    # so the Strict session cookie goes with it.
    who = await run_in_threadpool(current, request)
    response = render(
        request,
        "authorized.html",
        {"o": outcome},
        status=200 if outcome.ok else 400,
        who=who,
    )
    response.delete_cookie(STATE_COOKIE, path=CALLBACK)
    if outcome.ok:
        again = ", ".join(map(str, outcome.resumed))
        set_flash(
            response,
            f"connection {outcome.connection} authorised"
            + (f"; retrying instance(s) {again}" if again else ""),
        )
    return response
