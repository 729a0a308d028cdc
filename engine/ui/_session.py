"""Signing in with an API token, and out; the token travels only in a POST body and a cookie."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from engine.api._deps import project_of

from ._web import (
    UI,
    Act,
    Form,
    clear_session,
    field,
    identify,
    local_path,
    redirect,
    render,
    set_session,
)

router = APIRouter(include_in_schema=False)


@router.get("/")
@router.get(UI)
@router.get(f"{UI}/")
def home() -> Response:
    return redirect(f"{UI}/instances")


@router.get(f"{UI}/sign-in")
def sign_in_form(request: Request, next: Annotated[str | None, Query()] = None) -> Response:
    return render(request, "sign_in.html", {"next": local_path(next)})


@router.post(f"{UI}/sign-in")
def sign_in(request: Request, form: Form) -> Response:
    token = field(form, "token").strip()
    target = local_path(field(form, "next"))
    found = identify(project_of(request), token)
    if found is None:
        return render(
            request,
            "sign_in.html",
            {
                "next": target,
                "error": "that token is not valid (unknown or revoked); make one with "
                "`catflow tokens create --role viewer --name NAME`",
            },
            status=401,
        )
    response = redirect(target, f"signed in as {found.name} ({found.role})")
    set_session(response, request, token)
    return response


@router.post(f"{UI}/sign-out")
def sign_out(_who: Act) -> Response:
    response = redirect(f"{UI}/sign-in", "signed out")
    clear_session(response)
    return response
