"""The emulator as a server on loopback, run from a background thread (tests, the CLI)."""

from __future__ import annotations

import time
from pathlib import Path
from types import TracebackType
from typing import Any, TypedDict

from engine.serving import ThreadedServer

from . import _oauth
from ._app import DEFAULT_TOKEN_LIFETIME_S, Core, create_app
from ._faults import FaultInjector, Faults
from ._state import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_USER, Clock, State
from ._validate import discovery_document


class ConnectionSettings(TypedDict):
    client_id: str
    client_secret: str
    auth_url: str
    token_url: str
    api_url: str


class CalendarEmulator:
    """A Google Calendar API v3 + OAuth2 server on loopback.

    >>> with CalendarEmulator() as emu:  # doctest: +SKIP
    ...     token = emu.issue_token("ann@example.com")
    ...     requests.get(emu.api_url + "/users/me/calendarList", headers=...)

    ``port=0`` picks a free port. ``state_file`` is loaded at start and written after
    every change and at stop. ``clock`` (seconds since the epoch) drives token expiry,
    quotas and timestamps; tests may inject one.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        state_file: str | Path | None = None,
        faults: Faults | None = None,
        token_lifetime: int = DEFAULT_TOKEN_LIFETIME_S,
        clock: Clock = time.time,
    ) -> None:
        self.host = host
        self._requested_port = port
        self.port: int | None = None
        self.state = State(clock=clock, path=Path(state_file) if state_file else None)
        self.state.load()
        self.core = Core(self.state, FaultInjector(faults or Faults(), clock), token_lifetime)
        self.app = create_app(self.core)
        self._http: ThreadedServer | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self, timeout: float = 10.0) -> CalendarEmulator:
        if self._http is not None:
            raise RuntimeError("the emulator is already running")
        self._http = ThreadedServer(self.app, self.host, self._requested_port)
        try:
            self._http.start(timeout)
        except RuntimeError:
            self._http = None
            raise RuntimeError("the calendar emulator did not start") from None
        except OSError:
            self._http = None
            raise
        self.port = self._http.port
        return self

    def stop(self) -> None:
        """Stop serving (idempotent) and write the state file, if any."""
        if self._http is not None:
            self._http.stop()
        self._http = None
        self.state.save()

    @property
    def running(self) -> bool:
        return self._http is not None and self._http.running

    def __enter__(self) -> CalendarEmulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- addresses and shortcuts -------------------------------------------------------------

    @property
    def base_url(self) -> str:
        if self.port is None:
            raise RuntimeError("the emulator is not started")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def api_url(self) -> str:
        return self.base_url + "/calendar/v3"

    @property
    def auth_url(self) -> str:
        return self.base_url + "/o/oauth2/v2/auth"

    @property
    def token_url(self) -> str:
        return self.base_url + "/token"

    @property
    def revoke_url(self) -> str:
        return self.base_url + "/revoke"

    @property
    def faults(self) -> Faults:
        return self.core.faults

    def connection_settings(self) -> ConnectionSettings:
        """What a Catflow connection needs to use this emulator (its built-in client)."""
        return {
            "client_id": DEFAULT_CLIENT_ID,
            "client_secret": DEFAULT_CLIENT_SECRET,
            "auth_url": self.auth_url,
            "token_url": self.token_url,
            "api_url": self.base_url,
        }

    def discovery_document(self) -> dict[str, Any]:
        """Google's calendar.v3 discovery document, pointed at this emulator."""
        doc = discovery_document()
        doc.update(rootUrl=self.base_url + "/", baseUrl=self.api_url + "/")
        return doc

    def issue_token(self, user: str = DEFAULT_USER, lifetime: int | None = None) -> str:
        """An access token for ``user`` without the consent flow."""
        return _oauth.issue_token(self.state, user, lifetime or self.core.token_lifetime)

    def add_client(self, client_id: str, client_secret: str) -> None:
        with self.state.lock:
            self.state.clients[client_id] = client_secret
        self.state.save()

    def expire_tokens(self) -> int:
        """Forced token expiry: every current access token stops working now."""
        return _oauth.expire_all(self.state)

    def requests(self) -> list[dict[str, Any]]:
        """The request log (OAuth and API requests, oldest first, with ``time``)."""
        return self.core.injector.requests()
