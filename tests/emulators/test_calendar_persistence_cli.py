"""State files survive a restart; the `emulator calendar` command documents itself."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner
from emulators.calendar_helpers import Api

from engine.cli._emulator import emulator
from engine.emulators.calendar import CalendarEmulator


def test_state_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "calendar.json"
    with CalendarEmulator(state_file=path) as emu:
        api = Api(emu, "hal@example.com")
        event = api.insert(id="persist01", summary="Kept")
        sync = api.call("GET", "/calendars/primary/events").json()["nextSyncToken"]
        token = api.token
        api.close()
    assert json.loads(path.read_text())["events"]["hal@example.com"]["persist01"]
    with CalendarEmulator(state_file=path) as emu:
        headers = {"Authorization": f"Bearer {token}"}
        got = requests.get(
            f"{emu.api_url}/calendars/primary/events/persist01", headers=headers, timeout=5
        )
        assert got.status_code == 200 and got.json()["etag"] == event["etag"]
        changes = requests.get(
            f"{emu.api_url}/calendars/primary/events",
            headers=headers,
            params={"syncToken": sync},
            timeout=5,
        )
        assert changes.status_code == 200 and changes.json()["items"] == []


def test_cli_help() -> None:
    result = CliRunner().invoke(emulator, ["calendar", "--help"])
    assert result.exit_code == 0
    for option in ("--port", "--state", "--host", "--error-rate", "--user-quota"):
        assert option in result.output
    top = CliRunner().invoke(emulator, ["--help"])
    assert top.exit_code == 0 and "calendar" in top.output


def test_cli_rejects_bad_error_rate() -> None:
    result = CliRunner().invoke(emulator, ["calendar", "--error-rate", "418=2"])
    assert result.exit_code == 2 and "STATUS=SHARE" in result.output


@pytest.mark.slow
def test_cli_serves_until_interrupted(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    script = "from engine.cli._emulator import emulator; emulator()"
    process = subprocess.Popen(
        [sys.executable, "-c", script, "calendar", "--port", "0", "--state", str(state)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert first.startswith("Calendar API v3:"), first
        api_url = first.split()[-1]
        token = requests.post(
            api_url.replace("/calendar/v3", "/_emulator/tokens"),
            json={"user": "cli@example.com"},
            timeout=5,
        ).json()["access_token"]
        created = requests.post(
            f"{api_url}/calendars",
            json={"summary": "From CLI"},
            headers={"Authorization": f"Bearer {token}"},
            timeout=5,
        )
        assert created.status_code == 200
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, err
    assert "Stopping." in out
    assert "From CLI" in state.read_text()
