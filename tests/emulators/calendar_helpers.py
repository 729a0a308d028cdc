"""Helpers for the Calendar emulator tests."""

from __future__ import annotations

from typing import Any

import requests

from engine.emulators.calendar import CalendarEmulator


class Api:
    """A requests session that talks to the emulator's Calendar API as one user."""

    def __init__(self, emu: CalendarEmulator, user: str) -> None:
        self.emu = emu
        self.user = user
        self.token = emu.issue_token(user)
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {self.token}"

    def call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return self.session.request(method, self.emu.api_url + path, timeout=10, **kwargs)

    def insert(self, calendar: str = "primary", **event: Any) -> dict[str, Any]:
        body = {
            "summary": "Meeting",
            "start": {"dateTime": "2030-01-01T10:00:00Z"},
            "end": {"dateTime": "2030-01-01T11:00:00Z"},
            **event,
        }
        response = self.call("POST", f"/calendars/{calendar}/events", json=body)
        assert response.status_code == 200, response.text
        data: dict[str, Any] = response.json()
        return data

    def close(self) -> None:
        self.session.close()


def reason(response: requests.Response) -> str:
    value: str = response.json()["error"]["errors"][0]["reason"]
    return value
