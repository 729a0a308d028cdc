"""The emulator's in-memory state, with optional JSON persistence."""

from __future__ import annotations

import json
import os
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

Clock = Callable[[], float]

DEFAULT_CLIENT_ID = "catflow-emulator.apps.googleusercontent.com"
DEFAULT_CLIENT_SECRET = "catflow-emulator-secret"
DEFAULT_USER = "user@example.com"


def rfc3339(moment: float) -> str:
    """``2024-05-01T10:00:00.000Z``, as Google writes timestamps."""
    stamp = datetime.fromtimestamp(moment, UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"


@dataclass
class State:
    """Everything the emulator remembers. Guard every access with ``lock``."""

    clock: Clock = time.time
    path: Path | None = None
    clients: dict[str, str] = field(default_factory=dict)
    codes: dict[str, dict[str, Any]] = field(default_factory=dict)
    access_tokens: dict[str, dict[str, Any]] = field(default_factory=dict)
    refresh_tokens: dict[str, dict[str, Any]] = field(default_factory=dict)
    calendars: dict[str, dict[str, Any]] = field(default_factory=dict)
    # calendar id -> event id -> event (internal keys start with "_")
    events: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    # calendar list per user: user -> [calendar ids]
    calendar_lists: dict[str, list[str]] = field(default_factory=dict)
    sync_tokens: dict[str, dict[str, Any]] = field(default_factory=dict)
    channels: dict[str, dict[str, Any]] = field(default_factory=dict)
    counter: int = 0
    lock: threading.RLock = field(default_factory=threading.RLock)

    _PERSISTED = (
        "clients",
        "codes",
        "access_tokens",
        "refresh_tokens",
        "calendars",
        "events",
        "calendar_lists",
        "sync_tokens",
        "channels",
        "counter",
    )

    def __post_init__(self) -> None:
        self.clients.setdefault(DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET)

    # -- persistence -------------------------------------------------------------------------

    def load(self) -> None:
        """Read ``path`` if it exists (a missing file is an empty state)."""
        if self.path is None or not self.path.exists():
            return
        data = json.loads(self.path.read_text("utf-8"))
        with self.lock:
            for name in self._PERSISTED:
                if name in data:
                    setattr(self, name, data[name])
            self.clients.setdefault(DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET)

    def save(self) -> None:
        """Write the state to ``path`` atomically (no-op without a path)."""
        if self.path is None:
            return
        with self.lock:
            data = {name: getattr(self, name) for name in self._PERSISTED}
            text = json.dumps(data, indent=1, sort_keys=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(text, "utf-8")
        os.replace(tmp, self.path)

    # -- helpers -----------------------------------------------------------------------------

    def tick(self) -> int:
        """The next value of the change counter (orders changes for sync tokens)."""
        self.counter += 1
        return self.counter

    def now(self) -> float:
        return self.clock()

    def ensure_user(self, user: str) -> str:
        """Create the user's primary calendar on first use; return its id (the e-mail)."""
        if user not in self.calendars:
            self.calendars[user] = {
                "kind": "calendar#calendar",
                "id": user,
                "summary": user,
                "timeZone": "UTC",
                "etag": f'"{self.tick()}"',
                "conferenceProperties": {"allowedConferenceSolutionTypes": ["hangoutsMeet"]},
                "_owner": user,
                "_primary": True,
                "_updated": self.now(),
            }
            self.events.setdefault(user, {})
        entries = self.calendar_lists.setdefault(user, [])
        if user not in entries:
            entries.insert(0, user)
        return user


def new_token(prefix: str) -> str:
    return prefix + secrets.token_urlsafe(32)
