"""API tokens and roles: who may do what over HTTP and in the pages.

A token is shown once, when it is made; only its SHA-256 is stored (tokens are 256
random bits, so a fast hash is enough, as for GitHub's). Roles are ranked, each one
allowed what the ones below it are:

* ``viewer``   — read everything (never a secret);
* ``editor``   — and create, change and delete records;
* ``designer`` — and deploy processes;
* ``operator`` — and act on instances (retry, skip, cancel, suspend, resume, complete);
* ``admin``    — and manage connections and tokens.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from engine.errors import Conflict, NotFound, Problem, ValidationFailed
from engine.store import ApiTokenRow, utcnow

ROLES = ("viewer", "editor", "designer", "operator", "admin")
PREFIX = "cf_"
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,99}$")


def rank(role: str) -> int:
    return ROLES.index(role)


def allows(held: str, needed: str) -> bool:
    return rank(held) >= rank(needed)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Principal:
    """Who a request comes from: the token's name and role."""

    name: str
    role: str

    def may(self, role: str) -> bool:
        return allows(self.role, role)


@dataclass(frozen=True)
class TokenView:
    """A token as people see it: never the token itself."""

    name: str
    role: str
    prefix: str
    created_at: datetime
    created_by: str | None
    last_used_at: datetime | None
    revoked_at: datetime | None

    @classmethod
    def of(cls, row: ApiTokenRow) -> TokenView:
        return cls(
            name=row.name,
            role=row.role,
            prefix=row.prefix,
            created_at=row.created_at,
            created_by=row.created_by,
            last_used_at=row.last_used_at,
            revoked_at=row.revoked_at,
        )


def create_token(
    session: Session, role: str, name: str, created_by: str | None = None
) -> tuple[str, TokenView]:
    """A new token (returned once, in full) and its view."""
    problems: list[Problem] = []
    if role not in ROLES:
        problems.append(Problem(f"unknown role {role!r}", "role", f"one of: {', '.join(ROLES)}"))
    if not NAME.match(name):
        problems.append(
            Problem(
                f"{name!r} is not a valid token name",
                "name",
                "letters, digits and . _ @ -, starting with a letter or digit",
            )
        )
    if problems:
        raise ValidationFailed("the token was refused", problems)
    token = PREFIX + secrets.token_urlsafe(32)
    row = ApiTokenRow(
        name=name,
        role=role,
        token_hash=_hash(token),
        prefix=token[:10],
        created_at=utcnow(),
        created_by=created_by,
    )
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError:
        raise Conflict(f"a token named {name!r} exists already; choose another name") from None
    return token, TokenView.of(row)


def list_tokens(session: Session) -> list[TokenView]:
    rows = session.scalars(select(ApiTokenRow).order_by(ApiTokenRow.name))
    return [TokenView.of(row) for row in rows]


def revoke_token(session: Session, name: str) -> TokenView:
    row = session.scalar(select(ApiTokenRow).where(ApiTokenRow.name == name))
    if row is None:
        raise NotFound(f"no token named {name!r}")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
    return TokenView.of(row)


def rotate_token(
    session: Session, role: str, name: str, created_by: str | None = None
) -> tuple[str, TokenView]:
    """A fresh token under ``name``: the one held before (if any) stops working."""
    old = session.scalar(select(ApiTokenRow).where(ApiTokenRow.name == name))
    if old is not None:
        session.delete(old)
        session.flush()
    return create_token(session, role, name, created_by)


def authenticate(session: Session, token: str) -> Principal | None:
    """The principal a token stands for; None for an unknown or revoked token."""
    if not token.startswith(PREFIX):
        return None
    row = session.scalar(select(ApiTokenRow).where(ApiTokenRow.token_hash == _hash(token)))
    if row is None or row.revoked_at is not None:
        return None
    now = utcnow()
    if row.last_used_at is None or (now - row.last_used_at).total_seconds() > 60:
        row.last_used_at = now  # at most once a minute: reads stay reads
    return Principal(name=row.name, role=row.role)
