"""Crash safety under fire: 1,000 meetings in a burst while workers are SIGKILLed every few
seconds and restarted, and the Calendar answers 10% of requests with 503 or 429.

Afterwards every meeting has exactly one event with the right fields and its id written
back: nothing lost, nothing duplicated. On SQLite the workers are threads of `catflow
serve` processes (two, killed in turn); on PostgreSQL they are Celery workers behind
`catflow serve --no-workers`.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import redis
from cryptography.fernet import Fernet
from flow_helpers import USER
from meetings_flow import events, live
from process_helpers import catflow_env, connect_by_cli, shipped_project

from engine.components.google_calendar import event_id
from engine.config import load_settings, normalise_database_url
from engine.emulators.calendar import CalendarEmulator
from engine.runtime import Project, open_project

MEETINGS = 1000
BROKER = "redis://127.0.0.1:6379/12"
OWNER = "fire@example.com"


class _Fleet:
    """Processes that are started, SIGKILLed (with their children) and started again."""

    def __init__(self, env: dict[str, str], commands: list[list[str]], log: Path) -> None:
        self.env, self.commands, self.log = env, commands, log
        self.running: list[subprocess.Popen[bytes] | None] = [None] * len(commands)
        self.kills = 0

    def start(self, i: int) -> None:
        with self.log.open("ab") as out:
            self.running[i] = subprocess.Popen(
                [sys.executable, "-m", "engine", *self.commands[i]],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own group: a kill takes its children too
            )

    def kill(self, i: int) -> None:
        process = self.running[i]
        if process is not None and process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            self.kills += 1

    def kill_in_turn(self, stop: threading.Event, every: float) -> None:
        turn = 0
        while not stop.wait(every):
            i = turn % len(self.commands)
            self.kill(i)
            self.start(i)
            turn += 1

    def stop_all(self) -> None:
        for i, process in enumerate(self.running):
            if process is not None and process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    self.kill(i)


def _project_env(home: Path, db_url: str, emulator: CalendarEmulator) -> dict[str, str]:
    env = catflow_env(
        shipped_project(home),
        CATFLOW_DATABASE_URL=db_url,
        CATFLOW_BROKER_URL=BROKER,
        CATFLOW_SECRET_KEY=Fernet.generate_key().decode(),
        CATFLOW_OUTBOUND_ALLOW=f"127.0.0.1:{emulator.port}",
        CATFLOW_LEASE_SECONDS="3",  # a killed worker's instances are taken over soon
        CATFLOW_HTTP_BACKOFF_BASE="0.1",
        CATFLOW_HTTP_MAX_INLINE_WAIT="2",
        CATFLOW_POLL_INTERVAL="0.1",
    )
    connect_by_cli(env, emulator, "--login-hint", OWNER)
    return env


def _burst(project: Project) -> list[int]:
    with project.db.session() as s:
        ann = project.records.create(
            s, "employees", {"name": "Ann", "email": "ann@example.com"}, USER
        ).id
    ids = []
    for n in range(MEETINGS):
        with project.db.session() as s:
            data: dict[str, Any] = {
                "title": f"Fire {n}",
                "starts_at": f"2030-04-{n % 28 + 1:02d}T{n % 10 + 8:02d}:00:00Z",
                "participants": [ann],
            }
            ids.append(project.records.create(s, "meetings", data, USER).id)
    return ids


def _synced(project: Project, ids: list[int]) -> int:
    with project.db.session() as s:
        page = project.records.find(s, "meetings", {"sync_status": "synced"}, limit=MEETINGS)
    return len({r.id for r in page.items} & set(ids))


def _run_under_fire(
    env: dict[str, str],
    emulator: CalendarEmulator,
    commands: list[list[str]],
    log: Path,
) -> None:
    settings = load_settings(env["CATFLOW_HOME"])
    url = normalise_database_url(env["CATFLOW_DATABASE_URL"])
    project = open_project(dataclasses.replace(settings, database_url=url))
    fleet = _Fleet(env, commands, log)
    stop = threading.Event()
    killer = threading.Thread(target=fleet.kill_in_turn, args=(stop, 3.0), daemon=True)
    try:
        for i in range(len(commands)):
            fleet.start(i)
        emulator.faults.update({"error_rates": {503: 0.05, 429: 0.05}, "retry_after_s": 1})
        killer.start()
        ids = _burst(project)
        deadline = time.monotonic() + 600
        while _synced(project, ids) < MEETINGS:
            assert time.monotonic() < deadline, (
                f"{_synced(project, ids)} of {MEETINGS} synced after 600 s; log: {log}"
            )
            time.sleep(1)
        stop.set()
        killer.join()
    finally:
        stop.set()
        fleet.stop_all()
    assert fleet.kills >= 3, "the workers were not killed while they worked"
    statuses = [r["status"] for r in emulator.requests() if "/calendar/v3" in r["path"]]
    assert statuses.count(503) + statuses.count(429) >= 20  # the faults did happen

    calendar = events(emulator, user=OWNER)
    expected = {event_id("meetings", rid): rid for rid in ids}
    assert set(calendar) == set(expected)  # nothing lost, nothing extra
    assert set(live(calendar)) == set(expected)
    with project.db.session() as s:
        for rid in ids:
            record = project.records.get(s, "meetings", rid).as_dict()
            event = calendar[event_id("meetings", rid)]
            assert record["calendar_event_id"] == event["id"]
            assert event["summary"] == record["title"]
            assert event["attendees"] == [
                {"email": "ann@example.com", "responseStatus": "needsAction"}
            ]
    project.close()


def test_sqlite_with_serve_processes_killed_in_turn(
    tmp_path: Path, emulator: CalendarEmulator
) -> None:
    emulator.faults.update({"user_quota_per_minute": None})
    home = tmp_path / "catflow"
    env = _project_env(home, f"sqlite:///{home / 'catflow.db'}", emulator)
    serve = ["serve", "--no-http", "--workers", "4"]
    _run_under_fire(env, emulator, [serve, serve], tmp_path / "fleet.log")


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_postgresql_with_celery_workers_killed_in_turn(
    db_url: str, tmp_path: Path, emulator: CalendarEmulator
) -> None:
    try:
        redis.Redis.from_url(BROKER, socket_timeout=2).ping()
    except redis.RedisError as exc:
        pytest.skip(f"LOUD SKIP: Redis at {BROKER} unavailable: {exc}")
    emulator.faults.update({"user_quota_per_minute": None})
    env = _project_env(tmp_path / "catflow", db_url, emulator)
    commands = [
        ["serve", "--no-workers", "--no-http"],
        ["worker", "--concurrency", "2"],
        ["worker", "--concurrency", "2"],
    ]
    _run_under_fire(env, emulator, commands, tmp_path / "fleet.log")
