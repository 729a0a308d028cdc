"""What every page shares: who is signed in, the CSRF guard, rendering, redirects, errors.

The session is the API token itself, in an HttpOnly, SameSite=Strict cookie (the API's
dependencies read the same cookie). A form that changes something must come from a
page of ours: its ``Origin`` (or, lacking one, its ``Referer``) must be this server,
and it must carry the CSRF value of the session, an HMAC keyed by the token, which a
page of another site can neither read nor compute.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlsplit

from fastapi import Depends, Request
from fastapi.templating import Jinja2Templates
from starlette.datastructures import FormData
from starlette.responses import RedirectResponse, Response

from engine.api._deps import SESSION_COOKIE, bearer_token, project_of
from engine.api.tokens import ROLES, Principal, authenticate
from engine.runtime import Project

HERE = Path(__file__).resolve().parent
STATIC_DIR = HERE / "static"
TEMPLATES = Jinja2Templates(directory=HERE / "templates")
FLASH_COOKIE = "catflow_flash"
UI = "/ui"

# Pages are ours alone: no framing, scripts only from here; inline styles are set by
# the diagram viewer on its SVG.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


class SignInNeeded(Exception):
    """The request has no valid session: the page sends the browser to the sign-in form."""


class Refused(Exception):
    """A request the signed-in role may not make, or a form that is not ours."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Who:
    """The person signed in to the pages: their token's name and role, and the CSRF value."""

    name: str
    role: str
    csrf: str

    def may(self, role: str) -> bool:
        return ROLES.index(self.role) >= ROLES.index(role)

    @property
    def actor(self) -> str:
        """How instance notes and step logs name a person acting from the pages."""
        return f"user:{self.name}"


def csrf_value(token: str) -> str:
    return hmac.new(token.encode(), b"catflow-ui-csrf", hashlib.sha256).hexdigest()


def identify(project: Project, token: str | None) -> Principal | None:
    if not token:
        return None
    with project.db.session() as session:
        return authenticate(session, token)


def current(request: Request) -> Who | None:
    """Who sent the request, or None (no cookie, or a revoked or unknown token)."""
    if hasattr(request.state, "ui_who"):
        cached: Who | None = request.state.ui_who
        return cached
    token = bearer_token(request)
    found = identify(project_of(request), token)
    who = Who(found.name, found.role, csrf_value(token)) if found and token else None
    request.state.ui_who = who
    return who


def signed_in(request: Request) -> Who:
    who = current(request)
    if who is None:
        raise SignInNeeded()
    return who


def need(who: Who, role: str, what: str) -> None:
    """Refuse (403) unless ``who`` has ``role`` or above."""
    if not who.may(role):
        raise Refused(403, f"{what} needs the {role} role; {who.name!r} is signed in as {who.role}")


def same_origin(request: Request) -> bool:
    """Whether a form was sent by a page of this server (Origin, else Referer)."""
    host = request.headers.get("host", "")
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        origin = request.headers.get("referer")
    if not origin or not host:
        return False
    parts = urlsplit(origin)
    return parts.scheme in ("http", "https") and parts.netloc == host


async def posted_form(request: Request) -> AsyncIterator[FormData]:
    """The form of a POST that came from one of our pages; refused otherwise."""
    if not same_origin(request):
        raise Refused(
            403,
            "this form did not come from a Catflow page (its Origin is not this server); "
            "open the page and send it again",
        )
    form = await request.form()
    try:
        yield form
    finally:
        await form.close()  # uploads are spooled to temporary files


def acting(request: Request, form: Annotated[FormData, Depends(posted_form)]) -> Who:
    """The signed-in person sending a form, checked against the form's CSRF value."""
    who = signed_in(request)
    sent = form.get("csrf")
    if not isinstance(sent, str) or not hmac.compare_digest(sent, who.csrf):
        raise Refused(
            403, "this form is out of date (or not from a Catflow page); reload and try again"
        )
    return who


Page = Annotated[Who, Depends(signed_in)]
Act = Annotated[Who, Depends(acting)]
Form = Annotated[FormData, Depends(posted_form)]


def field(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


# -- responses ---------------------------------------------------------------------


def _flash_of(request: Request) -> dict[str, str] | None:
    raw = request.cookies.get(FLASH_COOKIE)
    if not raw:
        return None
    try:
        value = json.loads(base64.urlsafe_b64decode(raw.encode()))
    except ValueError:
        return None
    if isinstance(value, dict) and isinstance(value.get("text"), str):
        return {"kind": str(value.get("kind", "info")), "text": value["text"]}
    return None


def render(
    request: Request,
    template: str,
    context: Mapping[str, Any] | None = None,
    *,
    status: int = 200,
    who: Who | None = None,
) -> Response:
    who = who or current(request)
    flash = _flash_of(request)
    response = TEMPLATES.TemplateResponse(
        request,
        template,
        {"who": who, "flash": flash, "path": request.url.path, **(context or {})},
        status_code=status,
        headers=SECURITY_HEADERS,
    )
    if flash is not None:
        response.delete_cookie(FLASH_COOKIE, path=UI)
    return response


def redirect(url: str, flash: str | None = None, kind: str = "info") -> Response:
    """A 303 to ``url`` (a path of ours), with a message for the next page."""
    response = RedirectResponse(url, status_code=303, headers={"Cache-Control": "no-store"})
    if flash:
        set_flash(response, flash, kind)
    return response


def set_flash(response: Response, text: str, kind: str = "info") -> None:
    """A message for the next page shown (a cookie: never in the URL)."""
    value = base64.urlsafe_b64encode(json.dumps({"kind": kind, "text": text}).encode())
    response.set_cookie(
        FLASH_COOKIE, value.decode(), max_age=60, path=UI, httponly=True, samesite="strict"
    )


def local_path(raw: str | None, default: str = f"{UI}/instances") -> str:
    """``raw`` when it is a path of the pages (no open redirects), else ``default``."""
    if raw and raw.startswith(f"{UI}/") and not raw.startswith("//") and "\\" not in raw:
        return raw
    return default


def sign_in_url(request: Request) -> str:
    back = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    if request.method != "GET":
        referer = urlsplit(request.headers.get("referer", ""))
        back = referer.path + (f"?{referer.query}" if referer.query else "")
    return f"{UI}/sign-in?next={quote(local_path(back), safe='/')}"


def set_session(response: Response, request: Request, token: str) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        token,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def clear_session(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/")


# -- template helpers ------------------------------------------------------------


def when(value: str | datetime | None) -> str:
    """An ISO timestamp as people read it: to the second, in the server's zone."""
    if value is None or value == "":
        return ""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    if moment.tzinfo is not None:
        moment = moment.astimezone()
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def clock(value: str | None) -> str:
    """The time of day of an ISO timestamp, to the millisecond (step logs)."""
    if not value:
        return ""
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is not None:
        moment = moment.astimezone()
    return moment.strftime("%H:%M:%S.%f")[:-3]


def duration(ms: float | int | None) -> str:
    if ms is None:
        return ""
    if ms < 1:
        return f"{ms:.2f} ms"
    if ms < 1000:
        return f"{ms:.0f} ms" if ms >= 100 else f"{ms:.1f} ms"
    return f"{ms / 1000:.2f} s"


def as_json(value: Any, indent: int | None = 2) -> str:
    return json.dumps(value, indent=indent, ensure_ascii=False, default=str, sort_keys=False)


def body(value: Any) -> str:
    """An exchange's body: JSON laid out for reading, anything else as it came."""
    if not isinstance(value, str):
        return as_json(value)
    try:
        return as_json(json.loads(value))
    except ValueError:
        return value


def shown(value: Any) -> str:
    """A field value in a table cell."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(shown(v) for v in value)
    if isinstance(value, dict):
        return as_json(value, None)
    return str(value)


TEMPLATES.env.filters.update(
    when=when, clock=clock, duration=duration, body=body, as_json=as_json, shown=shown
)
TEMPLATES.env.globals.update(ROLES=ROLES, UI=UI)
