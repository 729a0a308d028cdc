"""The shipped meetings job (catalogs/ and processes/ of the repository) against the emulator."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests
from calendar_flow import connect, http_settings
from flow_helpers import USER

from engine.emulators.calendar import CalendarEmulator
from engine.runtime import Project, Runner
from engine.store import InstanceRow, OutboxEvent

REPO = Path(__file__).resolve().parents[1]
OWNER = "ann@example.com"  # whose Google account the connection uses


def open_meetings(
    open_test_project: Any, project_dir: Path, emulator: CalendarEmulator, **settings: Any
) -> Project:
    """A project with the shipped catalogs and processes, connected to the emulator."""
    for folder in ("catalogs", "processes"):
        shutil.rmtree(project_dir / folder)
        shutil.copytree(REPO / folder, project_dir / folder)
    project: Project = open_test_project(**http_settings(emulator, **settings))
    connect(project, emulator, user=OWNER)
    return project


def delete(project: Project, catalog: str, record_id: int) -> None:
    with project.db.session() as s:
        project.records.delete(s, catalog, record_id, USER)


def instance_states(project: Project) -> dict[int, str]:
    with project.db.session() as s:
        return {row.id: row.state for row in s.query(InstanceRow).order_by(InstanceRow.id)}


def settle(project: Project, timeout: float = 60.0, workers: int = 1) -> dict[int, str]:
    """Serve until no instance is queued, running or waiting; the states then."""
    stop = threading.Event()
    runner = Runner(project, workers=workers)
    thread = threading.Thread(target=runner.serve, args=(stop,), daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    busy: list[int] = []
    try:
        while time.monotonic() < deadline:
            time.sleep(0.1)
            with project.db.session() as s:
                undispatched = s.query(OutboxEvent).filter(OutboxEvent.dispatched_at.is_(None))
                if undispatched.count():
                    continue
            states = instance_states(project)
            busy = [i for i, st in states.items() if st in ("queued", "running", "waiting")]
            if not busy:
                return states
        raise AssertionError(f"instances still busy after {timeout} s: {busy}")
    finally:
        stop.set()
        thread.join(timeout=30)


def events(
    emulator: CalendarEmulator, calendar: str = "primary", user: str = OWNER
) -> dict[str, dict[str, Any]]:
    """Every event of a calendar, cancelled ones too, by id (read beside the engine)."""
    token = emulator.issue_token(user)
    found: dict[str, dict[str, Any]] = {}
    page: str | None = None
    while True:
        params = {
            "showDeleted": "true",
            "maxResults": "250",
            **({"pageToken": page} if page else {}),
        }
        url = f"{emulator.api_url}/calendars/{requests.utils.quote(calendar, safe='')}/events"
        headers = {"Authorization": f"Bearer {token}"}
        answer = requests.get(url, params=params, headers=headers, timeout=10)
        while answer.status_code in (401, 429, 503):  # the test's own look is faulted too
            if answer.status_code == 401:  # tokens are being expired under it
                headers = {"Authorization": f"Bearer {emulator.issue_token(user)}"}
            answer = requests.get(url, params=params, headers=headers, timeout=10)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        found.update({e["id"]: e for e in body["items"]})
        page = body.get("nextPageToken")
        if not page:
            return found


def live(found: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in found.items() if v["status"] != "cancelled"}


def every(seconds: float, action: Callable[[], object]) -> Callable[[], None]:
    """Run ``action`` every ``seconds`` in a thread; call the result to stop it."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(seconds):
            action()

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()

    def halt() -> None:
        stop.set()
        thread.join(timeout=10)

    return halt
