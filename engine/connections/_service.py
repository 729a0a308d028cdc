"""Connections: adding and listing them; secrets go in sealed and never come out in views."""

from __future__ import annotations

import ipaddress
import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlparse

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from engine.errors import Conflict, NotFound, Problem, ValidationFailed
from engine.store import ConnectionRow, utcnow

from ._crypto import SecretBox

NAME = re.compile(r"^[a-z][a-z0-9_-]{0,99}$")


@dataclass(frozen=True)
class ProviderDefaults:
    auth_url: str
    token_url: str
    api_url: str
    scopes: tuple[str, ...]


PROVIDERS = {
    "google": ProviderDefaults(
        auth_url="https://accounts.google.com/o/oauth2/v2/auth",
        token_url="https://oauth2.googleapis.com/token",
        api_url="https://www.googleapis.com",
        scopes=("https://www.googleapis.com/auth/calendar",),
    ),
}


@dataclass(frozen=True)
class ConnectionView:
    """A connection as people and the API see it: never a secret, never a token."""

    name: str
    provider: str
    client_id: str
    scopes: list[str]
    auth_url: str
    token_url: str
    api_url: str
    status: str
    status_message: str | None
    expires_at: str | None
    authorized: bool

    @classmethod
    def of(cls, row: ConnectionRow) -> ConnectionView:
        return cls(
            name=row.name,
            provider=row.provider,
            client_id=row.client_id,
            scopes=list(row.scopes),
            auth_url=row.auth_url,
            token_url=row.token_url,
            api_url=row.api_url,
            status=row.status,
            status_message=row.status_message,
            expires_at=row.expires_at.isoformat() if row.expires_at else None,
            authorized=row.token is not None,
        )


def _url(value: str, option: str, problems: list[Problem]) -> str:
    parsed = urlparse(value)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        problems.append(Problem(f"{value!r} is not an http(s) URL", where=option))
    elif parsed.scheme == "http" and not _loopback(parsed.hostname or ""):
        problems.append(
            Problem(
                f"{value!r} is plain http; tokens and secrets travel only over https",
                where=option,
                hint="use https (plain http is allowed for a local emulator on 127.0.0.1)",
            )
        )
    return value.rstrip("/")


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def add_connection(
    session: Session,
    box: SecretBox,
    *,
    name: str,
    provider: str,
    client_id: str,
    client_secret: str,
    scopes: list[str] | None = None,
    auth_url: str | None = None,
    token_url: str | None = None,
    api_url: str | None = None,
) -> ConnectionView:
    problems: list[Problem] = []
    if not NAME.match(name):
        problems.append(
            Problem(
                f"{name!r} is not a valid connection name",
                where="NAME",
                hint="lower-case letters, digits, '-' and '_', starting with a letter",
            )
        )
    defaults = PROVIDERS.get(provider)
    if defaults is None:
        problems.append(
            Problem(
                f"unknown provider {provider!r}", "--provider", f"one of: {', '.join(PROVIDERS)}"
            )
        )
    if not client_id.strip():
        problems.append(Problem("the client id is empty", where="--client-id"))
    if not client_secret.strip():
        problems.append(Problem("the client secret is empty", where="--client-secret"))
    if problems or defaults is None:
        raise ValidationFailed("the connection was refused", problems)
    row = ConnectionRow(
        name=name,
        provider=provider,
        client_id=client_id.strip(),
        client_secret=box.seal(client_secret.strip()),
        scopes=list(scopes or defaults.scopes),
        auth_url=_url(auth_url or defaults.auth_url, "--auth-url", problems),
        token_url=_url(token_url or defaults.token_url, "--token-url", problems),
        api_url=_url(api_url or defaults.api_url, "--api-url", problems),
        status="new",
        token_version=0,
    )
    if problems:
        raise ValidationFailed("the connection was refused", problems)
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError:
        raise Conflict(f"a connection named {name!r} exists already; choose another name") from None
    return ConnectionView.of(row)


def get_connection(session: Session, name: str) -> ConnectionRow:
    row = session.scalar(select(ConnectionRow).where(ConnectionRow.name == name))
    if row is None:
        known = ", ".join(session.scalars(select(ConnectionRow.name))) or "none"
        raise NotFound(f"no connection named {name!r} (connections: {known})")
    return row


def list_connections(session: Session) -> list[ConnectionView]:
    rows = session.scalars(select(ConnectionRow).order_by(ConnectionRow.name))
    return [ConnectionView.of(row) for row in rows]


def store_token(
    session: Session, box: SecretBox, row: ConnectionRow, token: dict[str, Any]
) -> None:
    """Seal and save a token answer; the row version says a refresh happened."""
    expires_at = token.get("expires_at")
    row.token = box.seal(json.dumps(token))
    row.expires_at = (
        datetime.fromtimestamp(float(expires_at)).astimezone()
        if isinstance(expires_at, int | float)
        else None
    )
    row.status = "authorized"
    row.status_message = None
    row.token_version += 1
    row.updated_at = utcnow()


def read_token(box: SecretBox, row: ConnectionRow) -> dict[str, Any] | None:
    if row.token is None:
        return None
    token: dict[str, Any] = json.loads(box.open(row.token, f"the token of connection {row.name!r}"))
    return token


def client_secret(box: SecretBox, row: ConnectionRow) -> str:
    return box.open(row.client_secret, f"the client secret of connection {row.name!r}")
