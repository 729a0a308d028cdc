"""`catflow demo` (what `make run` starts): the tour, run twice, and a clean Ctrl-C."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests
from process_helpers import catflow_env, free_port, shipped_project


def _project(tmp_path: Path) -> Path:
    return shipped_project(tmp_path / "tour")


def _demo(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "engine", "demo", *args],
        env=catflow_env(root),
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_the_tour_runs_on_a_fresh_project_and_again(tmp_path: Path) -> None:
    root, port = _project(tmp_path), str(free_port())
    first = _demo(root, "--exit-after-tour", "--port", port, "--http-port", "0")
    assert first.returncode == 0, first.stdout + first.stderr
    out = first.stdout
    assert "connection 'google': authorised as you@example.com" in out
    assert "employees: seeded 4" in out
    assert "attendees  ada@example.com, GRACE@example.com, guest@example.org" in out
    assert "Meet link  https://meet.google.com/" in out
    assert "sync_status=synced" in out
    assert "event now: 'Catflow tour (extended)'" in out and "(sequence 1:" in out
    assert "is now cancelled in the calendar" in out
    assert "Traceback" not in first.stderr
    assert (root / "catflow.db").exists() and (
        root / ".catflow" / "calendar-emulator.json"
    ).exists()

    second = _demo(root, "--exit-after-tour", "--port", port, "--http-port", "0")
    assert second.returncode == 0, second.stdout + second.stderr
    assert "authorised (kept from the last run)" in second.stdout
    assert "employees: already there" in second.stdout
    assert "is now cancelled in the calendar" in second.stdout
    # A new meeting, with a new id and so a new event: nothing from the first run reused.
    ids = [
        line.split()[4]
        for line in (first.stdout + second.stdout).splitlines()
        if line.startswith("== 1.")
    ]
    assert len(set(ids)) == 2


def test_ctrl_c_stops_everything_cleanly(tmp_path: Path) -> None:
    root, port = _project(tmp_path), free_port()
    demo = subprocess.Popen(
        [
            *(sys.executable, "-m", "engine", "demo", "--no-tour"),
            *("--port", str(port), "--http-port", "0"),
        ],
        env=catflow_env(root),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert demo.stdout is not None
        seen = []
        deadline = time.monotonic() + 120
        for line in demo.stdout:
            seen.append(line)
            if "Ctrl-C stops everything" in line or time.monotonic() > deadline:
                break
        assert any("Ctrl-C stops everything" in line for line in seen), "".join(seen)
        pages = next(line.split()[1] for line in seen if line.startswith("pages:"))
        for line in demo.stdout:  # the sign-in token comes right after
            seen.append(line)
            if line.strip().startswith("cf_"):
                token = line.strip()
                break
        answer = requests.get(
            pages.rstrip("/") + "/api/catalogs",
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )
        assert answer.status_code == 200
        assert {c["name"] for c in answer.json()} == {"employees", "meetings", "team_calendars"}
        demo.send_signal(signal.SIGINT)
        rest, _ = demo.communicate(timeout=30)
    finally:
        if demo.poll() is None:
            demo.kill()
    assert demo.returncode == 0, rest
    assert "stopped." in rest and "Traceback" not in rest
    with socket.socket() as s:  # the emulator's port is free again
        s.bind(("127.0.0.1", port))
