"""The test rig the end-to-end cases share: the shipped meetings job, a store, the
Calendar emulator in its own process, a connection, employees — and load generators."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import requests
from sqlalchemy import Connection, bindparam, text

from engine.catalogs import Cause
from engine.components.outbound import OutboundPolicy
from engine.config import Settings, load_settings
from engine.connections import add_connection, authorize_by_auto_consent, load_box
from engine.emulators.calendar import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET
from engine.runtime import Project, Runner, open_project

REPO = Path(__file__).resolve().parents[1]
WHO = Cause.person("bench")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def latency_figures(prefix: str, seconds: list[float]) -> dict[str, float]:
    return {
        f"{prefix}_p50": statistics.median(seconds) * 1e3,
        f"{prefix}_p95": percentile(seconds, 0.95) * 1e3,
        f"{prefix}_p99": percentile(seconds, 0.99) * 1e3,
    }


def start_emulator(port: int, user_quota: int = 0) -> subprocess.Popen[bytes]:
    """The Calendar emulator as its own process, at zero latency."""
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "engine", "emulator", "calendar", "--port", str(port)),
            *("--user-quota", str(user_quota), "--token-lifetime", "3600"),
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


class Rig:
    """The meetings job on a store of its own, connected to an emulator process."""

    # How often the load generator looks for synced meetings. Each look is a query on
    # the same two cores as the engine; every 2 ms it cost the PostgreSQL runs about
    # 8 ms of CPU per meeting. Latencies are therefore known to within 5 ms.
    POLL_SECONDS = 0.005

    def __init__(
        self,
        database_url: str | None = None,
        user_quota: int = 0,
        rate_per_minute: int = 0,
        poll_seconds: float = POLL_SECONDS,
    ) -> None:
        """``rate_per_minute``: the connection's own pacing; off (0) unless a case measures
        it — Google's 600/min per user would otherwise cap every figure at ~10/s.
        ``poll_seconds``: how often the load generator looks (``POLL_SECONDS``)."""
        self.poll_seconds = poll_seconds
        self.port = free_port()
        self.emulator = start_emulator(self.port, user_quota)
        self.folder = Path(tempfile.mkdtemp(prefix="catflow-bench-"))
        for part in ("catalogs", "processes"):
            shutil.copytree(REPO / part, self.folder / part)
        base = load_settings(self.folder)
        self.settings: Settings = dataclasses.replace(
            base,
            outbound_allow=(f"127.0.0.1:{self.port}",),
            database_url=database_url or base.database_url,
            connection_rate_per_minute=rate_per_minute,
        )
        self.rate_per_minute = rate_per_minute
        self.project: Project = open_project(self.settings)
        self._connect()
        with self.project.db.session() as s:
            self.people = [
                self.project.records.create(
                    s, "employees", {"name": f"P{i}", "email": f"p{i}@example.com"}, WHO
                ).id
                for i in range(20)
            ]
        self._stop = threading.Event()
        self._serving: threading.Thread | None = None
        self._poll: Connection | None = None
        written = (
            "data->>'calendar_event_id'"
            if self.project.db.engine.dialect.name == "postgresql"
            else "json_extract(data, '$.calendar_event_id')"
        )
        self._synced_query = text(
            f"SELECT id FROM records WHERE id IN :ids AND {written} IS NOT NULL"
        ).bindparams(bindparam("ids", expanding=True))
        self.runner: Runner | None = None

    def _connect(self) -> None:
        box = load_box(self.settings.secret_key_file)
        with self.project.db.session() as s:
            add_connection(
                s,
                box,
                name="google",
                provider="google",
                client_id=DEFAULT_CLIENT_ID,
                client_secret=DEFAULT_CLIENT_SECRET,
                auth_url=f"http://127.0.0.1:{self.port}/o/oauth2/v2/auth",
                token_url=f"http://127.0.0.1:{self.port}/token",
                api_url=f"http://127.0.0.1:{self.port}",
            )
        policy = OutboundPolicy.from_settings(self.settings)
        authorize_by_auto_consent(self.project.db, box, policy, "google", "bench@example.com")

    def env(self) -> dict[str, str]:
        """Environment for catflow processes working on this rig's project."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("CATFLOW_")}
        env.update(
            CATFLOW_HOME=str(self.folder),
            CATFLOW_DATABASE_URL=self.settings.database_url,
            CATFLOW_OUTBOUND_ALLOW=f"127.0.0.1:{self.port}",
            CATFLOW_CONNECTION_RATE_PER_MINUTE=str(self.rate_per_minute),
        )
        return env

    def serve(self, workers: int | None = None, processes: int | None = None) -> None:
        """Run the engine as `catflow serve` would (the embedded runner); ``processes``
        worker processes with ``workers`` threads each, or threads here."""
        self.runner = Runner(self.project, workers=workers, processes=processes)
        self._serving = threading.Thread(target=self.runner.serve, args=(self._stop,), daemon=True)
        self._serving.start()

    def meeting(self, n: int) -> dict[str, Any]:
        return {
            "title": f"Bench {n}",
            "starts_at": "2030-01-01T10:00:00Z",
            "participants": self.people[n % 17 : n % 17 + 3],
        }

    def create(self, n: int) -> int:
        with self.project.db.session() as s:
            return self.project.records.create(s, "meetings", self.meeting(n), WHO).id

    def synced(self, record_ids: list[int]) -> set[int]:
        """Those of ``record_ids`` whose event id has been written back (one query).

        The load generator shares the machine with the engine, so a look costs it as
        little as it can: one connection kept open, only ids fetched (the database
        tests the field; no record is parsed here), the read ended at once so the
        next look sees newer commits (on PostgreSQL in autocommit: no BEGIN and
        ROLLBACK around it, which were two round trips of three).
        """
        if not record_ids:
            return set()
        if self._poll is None:
            options: dict[str, Any] = {"catflow_read_only": True}
            if self.project.db.engine.dialect.name == "postgresql":
                options["isolation_level"] = "AUTOCOMMIT"  # one round trip, not three
            self._poll = self.project.db.engine.execution_options(**options).connect()
        try:
            return set(self._poll.execute(self._synced_query, {"ids": record_ids}).scalars())
        finally:
            self._poll.rollback()

    def closed_loop(self, meetings: int, clients: int) -> tuple[float, list[float]]:
        """``clients`` meetings in flight: each one synced is replaced by a new one.

        One thread creates the meetings and polls for all of them with one query per
        tick, so the load generator costs the engine little (16 threads polling each
        on their own once cost it about half a core). Returns (seconds, latencies).
        """
        latencies: list[float] = []
        in_flight: dict[int, float] = {}
        created = 0
        started = time.perf_counter()
        while created < meetings or in_flight:
            while created < meetings and len(in_flight) < clients:
                at = time.perf_counter()
                in_flight[self.create(created)] = at
                created += 1
            time.sleep(self.poll_seconds)
            now = time.perf_counter()
            for rid in self.synced(list(in_flight)):
                latencies.append(now - in_flight.pop(rid))
        return time.perf_counter() - started, latencies

    def open_loop(self, rate: float, meetings: int, timeout: float = 600) -> list[float]:
        """Meetings offered at ``rate`` per second whatever happens; their latencies.

        Creating and polling take turns in one thread; a meeting is created when it
        is due, and its latency runs from its commit to the poll that sees it synced.
        After the last one is offered, the rest get ``timeout`` seconds to sync.
        """
        in_flight: dict[int, float] = {}
        latencies: list[float] = []
        created = 0
        started = time.perf_counter()
        deadline = float("inf")  # set once every meeting was offered
        while (created < meetings or in_flight) and time.monotonic() < deadline:
            if created == meetings and deadline == float("inf"):
                deadline = time.monotonic() + timeout
            while created < meetings and time.perf_counter() >= started + created / rate:
                in_flight[self.create(created)] = time.perf_counter()
                created += 1
            time.sleep(self.poll_seconds)
            now = time.perf_counter()
            for rid in self.synced(list(in_flight)):
                latencies.append(now - in_flight.pop(rid))
        return latencies

    def wait_idle(self, timeout: float = 600) -> None:
        from engine.store import InstanceRow

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.project.db.session() as s:
                busy = (
                    s.query(InstanceRow)
                    .filter(InstanceRow.state.in_(("queued", "running", "waiting")))
                    .count()
                )
            if not busy:
                return
            time.sleep(0.1)
        raise RuntimeError("instances still busy")

    def close(self) -> None:
        if self._poll is not None:
            self._poll.close()
        self._stop.set()
        if self._serving is not None:
            self._serving.join(timeout=60)
        self.project.close()
        self.emulator.terminate()
        self.emulator.wait(timeout=10)
        shutil.rmtree(self.folder, ignore_errors=True)


def cpu_seconds() -> float:
    """CPU time of this process and its children (the sandbox processes)."""
    me = psutil.Process()
    total = sum(me.cpu_times()[:2])
    for child in me.children(recursive=True):
        with contextlib.suppress(psutil.Error):
            total += sum(child.cpu_times()[:2])
    return total


def machine_busy_seconds() -> float:
    """CPU seconds every process on the machine has used so far (all cores): the
    engine, the database, the broker, the emulator, the load generator. Nothing else
    should run beside a benchmark; this counts it if it does."""
    t = psutil.cpu_times()
    return float(t.user + t.nice + t.system + t.irq + t.softirq)


class MachineLoad:
    """How busy the whole machine was over a stretch: in cores, and CPU per item.

    On a machine the engine shares with its database, broker and emulator, this is
    what bounds throughput: at ``ms_per(n)`` of CPU per meeting, all the cores
    together finish at most ``cores / ms_per(n) * 1000`` meetings a second.
    """

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.busy = machine_busy_seconds()

    def seconds(self) -> float:
        """CPU seconds the machine spent since this began."""
        return machine_busy_seconds() - self.busy

    def cores(self) -> float:
        """Cores busy on average since this began (2.0: both cores of two)."""
        return self.seconds() / (time.perf_counter() - self.started)

    def ms_per(self, items: int) -> float:
        """Machine CPU per item since this began, in ms."""
        return self.seconds() / max(1, items) * 1e3


def measure(call: Callable[[], object]) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started
