"""OAuth2 tokens: the authorization-code flow, and refreshing — one refresh at a time.

Access tokens are refreshed shortly before they expire, and once when a service
answers 401. Threads of one process queue on a lock per connection; processes
queue on the connection's row (SELECT ... FOR UPDATE on PostgreSQL, the write lock
on SQLite). Whoever gets the lock second finds the token already renewed (its
version moved on) and uses it instead of asking again. A refused grant
(``invalid_grant``) marks the connection broken, with the provider's message.
"""

from __future__ import annotations

import os
import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlparse

import requests
from oauthlib.oauth2 import OAuth2Error
from requests_oauthlib import OAuth2Session
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.components.outbound import OutboundPolicy, guard_session
from engine.errors import CatflowError
from engine.store import ConnectionRow, Database, utcnow

from ._crypto import SecretBox
from ._service import ConnectionView, client_secret, get_connection, read_token, store_token


class ConnectionBroken(CatflowError):
    """The provider refused the grant; the connection must be authorised again.

    An instance stopped by it gets an incident of kind "connection" naming the
    connection; authorising the connection again retries those instances.
    """

    kind = "connection"

    def __init__(self, name: str, message: str) -> None:
        super().__init__(
            f"connection {name!r} is broken: {message}; "
            f"authorise it again with `catflow connections authorize {name}`",
            details={"connection": name},
        )
        self.name = name


class NotAuthorized(CatflowError):
    """The connection has never been authorised; the instances wait for it like a broken one."""

    kind = "connection"

    def __init__(self, name: str) -> None:
        super().__init__(
            f"connection {name!r} is not authorised yet; "
            f"run `catflow connections authorize {name}`",
            details={"connection": name},
        )


def _oauth(row: ConnectionRow, policy: OutboundPolicy, **kwargs: Any) -> OAuth2Session:
    if urlparse(row.token_url).scheme == "http":
        # Only loopback URLs may be plain http (checked when the connection is
        # added): the local emulator. oauthlib asks for this switch to allow it.
        os.environ["OAUTHLIB_INSECURE_TRANSPORT"] = "1"
    session = OAuth2Session(client_id=row.client_id, scope=list(row.scopes), **kwargs)
    return guard_session(session, policy.for_connection(row.name, _hosts(row)))


def _hosts(row: ConnectionRow) -> list[str]:
    return sorted({urlparse(u).netloc for u in (row.auth_url, row.token_url, row.api_url) if u})


@dataclass(frozen=True)
class Authorization:
    url: str
    state: str


def start_authorization(
    db: Database,
    policy: OutboundPolicy,
    name: str,
    redirect_uri: str,
    login_hint: str | None = None,
) -> Authorization:
    """The consent URL to send a person to (offline access: a refresh token comes back).

    ``login_hint`` names the account to sign in with (Google pre-fills it; the
    emulator consents as that user).
    """
    extra = {"login_hint": login_hint} if login_hint else {}
    with db.session() as s:
        row = get_connection(s, name)
        oauth = _oauth(row, policy, redirect_uri=redirect_uri)
        url, state = oauth.authorization_url(
            row.auth_url, access_type="offline", prompt="consent", **extra
        )
    return Authorization(url=url, state=str(state))


def finish_authorization(
    db: Database,
    box: SecretBox,
    policy: OutboundPolicy,
    name: str,
    redirect_uri: str,
    code: str,
) -> ConnectionView:
    """Exchange the code the provider sent to the redirect for a token, and keep it."""
    with db.session() as s:
        row = _locked(s, name)
        oauth = _oauth(row, policy, redirect_uri=redirect_uri)
        try:
            token = oauth.fetch_token(
                row.token_url,
                code=code,
                client_secret=client_secret(box, row),
                include_client_id=True,
            )
        except OAuth2Error as exc:
            raise CatflowError(
                f"connection {name!r}: the provider refused the code: {exc.description or exc}"
            ) from None
        store_token(s, box, row, dict(token))
        return ConnectionView.of(row)


def authorize_by_auto_consent(
    db: Database,
    box: SecretBox,
    policy: OutboundPolicy,
    name: str,
    login_hint: str | None = None,
) -> ConnectionView:
    """Authorise against a provider that consents by itself (the local emulator).

    The consent URL is followed here; its redirect carries the code, read off the
    ``Location`` header (the redirect address is never visited). Google asks a person,
    so this refuses there: use ``catflow connections authorize``.
    """
    redirect_uri = "http://127.0.0.1:9/callback"
    consent = start_authorization(db, policy, name, redirect_uri, login_hint)
    with db.session() as s:
        hosts = _hosts(get_connection(s, name))
    session = guard_session(requests.Session(), policy.for_connection(name, hosts))
    with session:
        answer = session.get(consent.url, allow_redirects=False, timeout=30)
    location = answer.headers.get("Location", "")
    query = parse_qs(urlparse(location).query)
    if not location.startswith(redirect_uri) or "code" not in query:
        raise CatflowError(
            f"connection {name!r}: the consent page did not send a code back "
            f"(HTTP {answer.status_code}); automatic consent works with the local emulator only"
        )
    if query.get("state", [""])[0] != consent.state:
        raise CatflowError(f"connection {name!r}: the consent answer's state does not match")
    return finish_authorization(db, box, policy, name, redirect_uri, query["code"][0])


def _locked(session: Session, name: str) -> ConnectionRow:
    row = session.scalar(select(ConnectionRow).where(ConnectionRow.name == name).with_for_update())
    if row is None:
        get_connection(session, name)  # raises NotFound naming the known ones
    assert row is not None
    return row


_TRUST_SECONDS = 30.0  # how long a token read from the store is used without reading again


class Tokens:
    """Access tokens for connections, renewed as needed; safe across threads and processes."""

    def __init__(
        self, db: Database, box: SecretBox, policy: OutboundPolicy, margin_seconds: float = 60
    ) -> None:
        self.db = db
        self.box = box
        self.policy = policy
        self.margin = margin_seconds
        self._locks: defaultdict[str, threading.Lock] = defaultdict(threading.Lock)
        # name -> (access token, its expiry, until when to trust this copy)
        self._cached: dict[str, tuple[str, float | None, float]] = {}
        self.refreshes = 0  # token requests this object made (for operators and tests)

    def api_base(self, name: str) -> str:
        """The connection's API base URL: its token is sent there and nowhere else."""
        with self.db.read_session() as s:
            return get_connection(s, name).api_url

    def allowed_hosts(self, name: str) -> list[str]:
        with self.db.read_session() as s:
            return _hosts(get_connection(s, name))

    def access_token(self, name: str) -> str:
        """A token valid for at least the margin; refreshed first if it is not.

        A token read from the store is used again for up to ``_TRUST_SECONDS`` (each
        call read and decrypted it before); a token that another process renewed
        meanwhile is still valid until it expires, and a 401 drops the copy.
        """
        cached = self._cached.get(name)
        if cached is not None and cached[2] > time.monotonic():
            access, expires_at, _ = cached
            if not self._expiring({"expires_at": expires_at}):
                return access
        with self.db.read_session() as s:
            row = get_connection(s, name)
            self._check_usable(row)
            token = read_token(self.box, row)
        assert token is not None
        if not self._expiring(token):
            access = str(token["access_token"])
            expires = token.get("expires_at")
            self._cached[name] = (
                access,
                float(expires) if isinstance(expires, int | float) else None,
                time.monotonic() + _TRUST_SECONDS,
            )
            return access
        return self._refresh(name, rejected=None)

    def after_unauthorized(self, name: str, rejected: str) -> str:
        """A service said 401 to ``rejected``: refresh once (unless someone already did)."""
        self._cached.pop(name, None)
        return self._refresh(name, rejected=rejected)

    def _expiring(self, token: dict[str, Any]) -> bool:
        expires_at = token.get("expires_at")
        return isinstance(expires_at, int | float) and expires_at - time.time() < self.margin

    def _check_usable(self, row: ConnectionRow) -> None:
        if row.status == "broken":
            raise ConnectionBroken(row.name, row.status_message or "the grant was refused")
        if row.token is None:
            raise NotAuthorized(row.name)

    def _refresh(self, name: str, rejected: str | None) -> str:
        with self._locks[name]:
            broken: str | None = None
            with self.db.session() as s:
                row = _locked(s, name)
                self._check_usable(row)
                token = read_token(self.box, row)
                assert token is not None
                current = str(token["access_token"])
                renewed_meanwhile = current != rejected if rejected else not self._expiring(token)
                if renewed_meanwhile:
                    return current
                refresh_token = token.get("refresh_token")
                if not refresh_token:
                    broken = "there is no refresh token (authorise with offline access)"
                else:
                    try:
                        fresh = dict(
                            _oauth(row, self.policy).refresh_token(
                                row.token_url,
                                refresh_token=refresh_token,
                                client_id=row.client_id,
                                client_secret=client_secret(self.box, row),
                            )
                        )
                    except OAuth2Error as exc:
                        if exc.error != "invalid_grant":
                            raise CatflowError(
                                f"connection {name!r}: refreshing the token failed: "
                                f"{exc.error}: {exc.description or ''}"
                            ) from None
                        broken = f"invalid_grant: {exc.description or 'the grant was refused'}"
                    else:
                        self.refreshes += 1
                        fresh.setdefault("refresh_token", refresh_token)
                        store_token(s, self.box, row, fresh)
                        return str(fresh["access_token"])
                row.status = "broken"
                row.status_message = broken
                row.updated_at = utcnow()
            raise ConnectionBroken(name, broken)
