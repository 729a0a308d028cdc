"""The README's scale-out section, followed as written: PostgreSQL, Redis, one
`catflow serve --no-workers` and two `catflow worker` processes, meetings through them."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import redis
import requests
from cryptography.fernet import Fernet
from process_helpers import catflow, catflow_env, connect_by_cli, free_port, shipped_project

from engine.emulators.calendar import CalendarEmulator

BROKER = "redis://127.0.0.1:6379/11"


def _redis_or_skip() -> None:
    try:
        redis.Redis.from_url(BROKER, socket_timeout=2).ping()
    except redis.RedisError as exc:
        pytest.skip(f"LOUD SKIP: Redis at {BROKER} unavailable: {exc}")


def _start(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "engine", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_serve_without_workers_and_two_celery_workers_run_the_meetings(
    db_url: str, tmp_path: Path, emulator: CalendarEmulator
) -> None:
    _redis_or_skip()
    home = shipped_project(tmp_path / "catflow")
    env = catflow_env(
        home,
        CATFLOW_DATABASE_URL=db_url,
        CATFLOW_BROKER_URL=BROKER,
        CATFLOW_SECRET_KEY=Fernet.generate_key().decode(),
        CATFLOW_OUTBOUND_ALLOW=f"127.0.0.1:{emulator.port}",
    )
    connect_by_cli(env, emulator)
    token = catflow(env, "tokens", "create", "--role", "editor").strip()
    port = free_port()
    processes = [
        _start(env, "serve", "--no-workers", "--port", str(port)),
        _start(env, "worker", "--concurrency", "2"),
        _start(env, "worker", "--concurrency", "2"),
    ]
    base = f"http://127.0.0.1:{port}"
    api = requests.Session()
    api.headers["Authorization"] = f"Bearer {token}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                api.get(base + "/healthz", timeout=1)
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline, "serve --no-workers did not start"
                time.sleep(0.2)

        def post(catalog: str, data: dict[str, Any]) -> int:
            made = api.post(f"{base}/api/catalogs/{catalog}/records", json=data, timeout=10)
            assert made.status_code == 201, made.text
            return int(made.json()["id"])

        ann = post("employees", {"name": "Ann", "email": "ann@example.com"})
        meetings = [
            post(
                "meetings",
                {
                    "title": f"Scaled {n}",
                    "starts_at": f"2030-02-{n + 1:02d}T10:00:00Z",
                    "participants": [ann],
                },
            )
            for n in range(20)
        ]
        deadline = time.monotonic() + 120
        pending = set(meetings)
        while pending:
            assert time.monotonic() < deadline, f"meetings not synced: {sorted(pending)}"
            for rid in list(pending):
                record = api.get(f"{base}/api/catalogs/meetings/records/{rid}", timeout=10).json()
                if record["data"]["sync_status"] == "synced":
                    pending.discard(rid)
            time.sleep(0.3)
        runs = api.get(f"{base}/api/instances", params={"limit": 100}, timeout=10).json()
        workers = set()
        for item in runs["items"]:
            detail = api.get(f"{base}/api/instances/{item['id']}", timeout=10).json()
            workers |= {s["worker"] for s in detail["steps"] if s["worker"]}
        assert runs["counts"].get("completed") == len(meetings)
        assert len(workers) >= 2, workers  # the work was shared out, not run by the server
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        logs = []
        for process in processes:
            try:
                out, _ = process.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                out, _ = process.communicate()
            logs.append(out)
        api.close()
    assert all("Traceback" not in log for log in logs), logs
