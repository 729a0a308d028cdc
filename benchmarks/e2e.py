"""End to end on SQLite: the shipped meetings job against the emulator in its own process.

A meeting is a record write, its trigger, an instance, the employee look-up, one
Calendar call and the write-back. Clients run a closed loop: each creates a meeting,
waits until its event id is written back, and creates the next.
"""

from __future__ import annotations

import dataclasses
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import requests

from engine.catalogs import Cause
from engine.components.outbound import OutboundPolicy
from engine.config import load_settings
from engine.connections import add_connection, authorize_by_auto_consent, load_box
from engine.emulators.calendar import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET
from engine.runtime import Runner, open_project

REPO = Path(__file__).resolve().parents[1]
WHO = Cause.person("bench")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _emulator(port: int) -> subprocess.Popen[bytes]:
    """The Calendar emulator as its own process, at zero latency, without quotas."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "engine",
            "emulator",
            "calendar",
            "--port",
            str(port),
            "--user-quota",
            "0",
            "--token-lifetime",
            "3600",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            requests.get(f"http://127.0.0.1:{port}/_emulator/faults", timeout=1)
            return process
        except requests.ConnectionError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("the emulator did not start")


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def bench_e2e_sqlite(quick: bool) -> dict[str, float]:
    meetings = 12 if quick else 400
    clients = 4 if quick else 16
    port = _free_port()
    emulator = _emulator(port)
    folder = Path(tempfile.mkdtemp(prefix="catflow-bench-"))
    try:
        for part in ("catalogs", "processes"):
            shutil.copytree(REPO / part, folder / part)
        base = load_settings(folder)
        settings = dataclasses.replace(base, outbound_allow=(f"127.0.0.1:{port}",))
        project = open_project(settings)
        box = load_box(settings.secret_key_file)
        with project.db.session() as s:
            add_connection(
                s,
                box,
                name="google",
                provider="google",
                client_id=DEFAULT_CLIENT_ID,
                client_secret=DEFAULT_CLIENT_SECRET,
                auth_url=f"http://127.0.0.1:{port}/o/oauth2/v2/auth",
                token_url=f"http://127.0.0.1:{port}/token",
                api_url=f"http://127.0.0.1:{port}",
            )
        authorize_by_auto_consent(
            project.db, box, OutboundPolicy.from_settings(settings), "google", "bench@example.com"
        )
        with project.db.session() as s:
            people = [
                project.records.create(
                    s, "employees", {"name": f"P{i}", "email": f"p{i}@example.com"}, WHO
                ).id
                for i in range(20)
            ]
        stop = threading.Event()
        runner = Runner(project)
        serving = threading.Thread(target=runner.serve, args=(stop,), daemon=True)
        serving.start()
        latencies: list[float] = []
        lock = threading.Lock()
        remaining = [meetings]

        def client(n: int) -> None:
            while True:
                with lock:
                    if remaining[0] <= 0:
                        return
                    remaining[0] -= 1
                data: dict[str, Any] = {
                    "title": f"Bench {n}",
                    "starts_at": "2030-01-01T10:00:00Z",
                    "participants": people[n % 17 : n % 17 + 3],
                }
                committed = time.perf_counter()
                with project.db.session() as s:
                    rid = project.records.create(s, "meetings", data, WHO).id
                while True:
                    with project.db.session() as s:
                        if project.records.get(s, "meetings", rid).data.get("calendar_event_id"):
                            break
                    time.sleep(0.002)
                with lock:
                    latencies.append(time.perf_counter() - committed)

        started = time.perf_counter()
        threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - started
        stop.set()
        serving.join(timeout=30)
        project.close()
        return {
            "e2e_sqlite_meetings_per_s": meetings / elapsed,
            "e2e_sqlite_latency_ms_p50": statistics.median(latencies) * 1e3,
            "e2e_sqlite_latency_ms_p95": _percentile(latencies, 0.95) * 1e3,
            "e2e_sqlite_latency_ms_p99": _percentile(latencies, 0.99) * 1e3,
        }
    finally:
        emulator.terminate()
        emulator.wait(timeout=10)
        shutil.rmtree(folder, ignore_errors=True)
