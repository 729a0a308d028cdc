"""/api/tokens: API tokens (admin). A token is shown once, when it is made."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, status

from engine.api._deps import Admin
from engine.api.schemas import (
    AUTH_ERRORS,
    CONFLICT,
    NOT_FOUND,
    TokenCreated,
    TokenIn,
    TokenOut,
    Tx,
    refuse_nul,
)
from engine.api.tokens import TokenView, create_token, list_tokens, revoke_token

router = APIRouter(
    prefix="/api/tokens",
    tags=["tokens"],
    dependencies=[Depends(refuse_nul)],
    responses=AUTH_ERRORS,
)


def _out(view: TokenView) -> TokenOut:
    return TokenOut(**view.__dict__)


@router.get("", summary="Tokens by name, role and use (never the token itself)")
def list_all(session: Tx, _who: Admin) -> list[TokenOut]:
    return [_out(v) for v in list_tokens(session)]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Make a token; the answer holds it this once",
    responses=CONFLICT,
)
def create(body: TokenIn, session: Tx, who: Admin) -> TokenCreated:
    name = body.name
    if name is None:
        taken = {t.name for t in list_tokens(session)}
        name = next(
            f"{body.role}-{n}" for n in range(1, len(taken) + 2) if f"{body.role}-{n}" not in taken
        )
    token, view = create_token(session, body.role, name, created_by=f"token:{who.name}")
    return TokenCreated(**view.__dict__, token=token)


@router.delete(
    "/{name}",
    summary="Revoke a token: it stops working at once (the answer is its record)",
    responses=NOT_FOUND,
)
def revoke(
    name: Annotated[str, Path(min_length=1, max_length=100, description="The token's name.")],
    session: Tx,
    _who: Admin,
) -> TokenOut:
    return _out(revoke_token(session, name))
