"""What routes share: the project, a transaction, the caller and the role it needs."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from sqlalchemy.orm import Session

from engine.runtime import Project

from .tokens import ROLES, Principal, authenticate

SESSION_COOKIE = "catflow_token"


def project_of(request: Request) -> Project:
    project: Project = request.app.state.project
    return project


def db_session(project: Annotated[Project, Depends(project_of)]) -> Iterator[Session]:
    """One transaction per request: committed when the route returns, else rolled back.

    Used with function scope (``Db``): FastAPI ends request-scoped dependencies only
    after the response is sent, so a client could read before the write it was told
    about commits, and a failing commit would follow a 2xx.
    """
    with project.db.session() as session:
        yield session


def bearer_token(request: Request) -> str | None:
    """The token of a request: an ``Authorization: Bearer`` header, else the page cookie."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return request.cookies.get(SESSION_COOKIE)


def principal(request: Request, project: Annotated[Project, Depends(project_of)]) -> Principal:
    token = bearer_token(request)
    found = None
    if token:
        with project.db.session() as session:
            found = authenticate(session, token)
    if found is None:
        raise HTTPException(
            status_code=401,
            detail="a valid API token is needed: send 'Authorization: Bearer <token>' "
            "(make one with `catflow tokens create --role viewer`)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    request.state.principal = found
    return found


def require(role: str) -> Callable[..., Principal]:
    """A dependency that lets through callers whose role is ``role`` or above."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}")

    def check(who: Annotated[Principal, Depends(principal)]) -> Principal:
        if not who.may(role):
            raise HTTPException(
                status_code=403,
                detail=f"this needs the {role} role; token {who.name!r} has {who.role}",
            )
        return who

    check.__name__ = f"require_{role}"
    return check


Viewer = Annotated[Principal, Depends(require("viewer"))]
Editor = Annotated[Principal, Depends(require("editor"))]
Designer = Annotated[Principal, Depends(require("designer"))]
Operator = Annotated[Principal, Depends(require("operator"))]
Admin = Annotated[Principal, Depends(require("admin"))]
Db = Annotated[Session, Depends(db_session, scope="function")]
ProjectDep = Annotated[Project, Depends(project_of)]
